"""Writes the GraphQL (``GQLnnn.*.graphql``) and protobuf (``PBnnn.*.proto``) fixtures next to this file.

Each fixture is the clean base schema with one edit: *bad* introduces the flaw the rule names,
*good* shows the fix (or is the base). Run once after changing a fixture; the output is committed.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

GQL_BASE = '''"""Order lookup API root."""
type Query {
  """Orders, newest first."""
  orders(first: Int!, after: String): OrderConnection!
  """One order by id."""
  order(id: ID!): Order
}

"""A customer order."""
type Order {
  id: ID!
  status: OrderStatus!
  tags: [String!]!
  #EXTRA_ORDER_FIELDS
}

"""Order lifecycle."""
enum OrderStatus {
  OPEN
  PAID
}

"""A page of orders."""
type OrderConnection {
  edges: [OrderEdge!]!
  pageInfo: PageInfo!
}

"""An order and its cursor."""
type OrderEdge {
  cursor: String!
  node: Order!
}

"""Relay page info."""
type PageInfo {
  hasNextPage: Boolean!
  endCursor: String
  hasPreviousPage: Boolean!
  startCursor: String
}
#EXTRA_TYPES
'''

CYCLE = ("#EXTRA_ORDER_FIELDS", "customer: Customer!")
CUSTOMER = (
    "#EXTRA_TYPES",
    '"""A customer."""\ntype Customer {\n  id: ID!\n  orders(first: Int!, after: String): OrderConnection!\n}\n',
)

GQL: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    # rule: (bad edits, good edits)
    "GQL001": ([("order(id: ID!): Order", "order(id: ID!): Missing")], []),
    "GQL002": (
        [CYCLE, CUSTOMER],
        [
            CYCLE,
            CUSTOMER,
            (
                '"""Order lookup API root."""',
                'directive @cost(weight: Int!) on FIELD_DEFINITION | OBJECT\n\n"""Order lookup API root."""',
            ),
        ],
    ),
    "GQL003": (
        [
            (
                '  """One order by id."""',
                '  """Every order."""\n  allOrders: [Order!]!\n  """One order by id."""',
            )
        ],
        [
            (
                '  """One order by id."""',
                '  """Every order."""\n  allOrders(first: Int!, after: String): OrderConnection!\n  """One order by id."""',
            )
        ],
    ),
    "GQL004": ([("  pageInfo: PageInfo!\n", "")], []),
    "GQL005": ([("  id: ID!\n  status", "  id: ID\n  status")], []),
    "GQL006": ([('"""A customer order."""\n', "")], []),
    "GQL007": ([("  status: OrderStatus!", "  order_status: OrderStatus!")], []),
    "GQL008": (
        [("#EXTRA_ORDER_FIELDS", "legacyStatus: String @deprecated")],
        [
            (
                "#EXTRA_ORDER_FIELDS",
                'legacyStatus: String @deprecated(reason: "Use status; removal after 2027-01-01.")',
            )
        ],
    ),
}

PB_BASE = """syntax = "proto3";

package acme.orders.v1;

// An order.
message Order {
  reserved 3;
  reserved "legacy_total";
  string order_id = 1;
  OrderStatus status = 2;
  int64 total_cents = 4;
  // EXTRA_ORDER_FIELDS
}

// Order lifecycle.
enum OrderStatus {
  ORDER_STATUS_UNSPECIFIED = 0;
  ORDER_STATUS_OPEN = 1;
}

message GetOrderRequest {
  string order_id = 1;
}

message GetOrderResponse {
  Order order = 1;
}

message ListOrdersRequest {
  int32 page_size = 1;
  string page_token = 2;
}

message ListOrdersResponse {
  repeated Order orders = 1;
  string next_page_token = 2;
}

service OrderService {
  rpc GetOrder(GetOrderRequest) returns (GetOrderResponse);
  rpc ListOrders(ListOrdersRequest) returns (ListOrdersResponse);
  // EXTRA_RPCS
}
"""

PB: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "PB001": (
        [("// EXTRA_ORDER_FIELDS", "string note = 2;")],
        [("// EXTRA_ORDER_FIELDS", "string note = 5;")],
    ),
    "PB002": (
        [("// EXTRA_ORDER_FIELDS", "string legacy_total = 5;")],
        [("// EXTRA_ORDER_FIELDS", "string total_text = 5;")],
    ),
    "PB003": ([("  reserved 3;\n", "")], []),
    "PB004": (
        [
            (
                "  ORDER_STATUS_UNSPECIFIED = 0;\n  ORDER_STATUS_OPEN = 1;",
                "  ORDER_STATUS_OPEN = 0;\n  ORDER_STATUS_PAID = 1;",
            )
        ],
        [],
    ),
    "PB005": ([("package acme.orders.v1;", "package acme.orders;")], []),
    "PB006": ([("string order_id = 1;\n  OrderStatus", "string orderId = 1;\n  OrderStatus")], []),
    "PB007": ([("  ORDER_STATUS_OPEN = 1;", "  OPEN = 1;")], []),
    "PB008": ([("  string page_token = 2;\n", "")], []),
    "PB009": ([("// EXTRA_RPCS", "rpc SearchOrders(ListOrdersRequest) returns (ListOrdersResponse);")], []),
}


def _apply(base: str, edits: list[tuple[str, str]]) -> str:
    out = base
    for old, new in edits:
        if old not in out:
            raise SystemExit(f"fixture edit does not apply: {old!r}")
        out = out.replace(old, new)
    return out


def main() -> None:
    for table, base, suffix in ((GQL, GQL_BASE, "graphql"), (PB, PB_BASE, "proto")):
        for rule_id, (bad, good) in table.items():
            (HERE / f"{rule_id}.bad.{suffix}").write_text(_apply(base, bad), encoding="utf-8")
            (HERE / f"{rule_id}.good.{suffix}").write_text(_apply(base, good), encoding="utf-8")


if __name__ == "__main__":
    main()
