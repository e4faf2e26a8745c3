"""Writes the OpenAPI fixtures ``OASnnn.bad.yaml`` / ``OASnnn.good.yaml`` next to this file.

Run once after changing a fixture (``python tests/core/api_fixtures/make_openapi_fixtures.py``); the
output is committed and the tests read the files, not this script. Each *good* file is the clean
base document (or the base with the feature the rule asks for); each *bad* file is the base with
exactly the flaw the rule names. GraphQL and protobuf fixtures are written by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def base() -> dict[str, Any]:
    """A small orders API that passes every OpenAPI rule at the strict profile."""
    ok_headers = {h: {"$ref": f"#/components/headers/{h}"} for h in ("ETag", "Cache-Control", "RateLimit")}
    errors = {
        "400": {"$ref": "#/components/responses/Problem"},
        "429": {"$ref": "#/components/responses/TooManyRequests"},
        "500": {"$ref": "#/components/responses/Problem"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Orders API", "version": "1.0.0", "description": "Fixture."},
        "servers": [{"url": "https://api.example.com/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/orders": {
                "get": {
                    "operationId": "listOrders",
                    "summary": "List orders",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 256}},
                    ],
                    "responses": {
                        "200": {
                            "description": "A page.",
                            "headers": ok_headers,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/OrderPage"}}
                            },
                        },
                        **errors,
                    },
                },
                "post": {
                    "operationId": "createOrder",
                    "summary": "Create an order",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}},
                    },
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {"RateLimit": {"$ref": "#/components/headers/RateLimit"}},
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Order"}}
                            },
                        },
                        **errors,
                    },
                },
            },
            "/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "summary": "Get an order",
                    "parameters": [
                        {
                            "name": "order_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "maxLength": 64},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The order.",
                            "headers": ok_headers,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Order"}}
                            },
                        },
                        **errors,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "headers": {
                "ETag": {"schema": {"type": "string", "maxLength": 128}},
                "Cache-Control": {"schema": {"type": "string", "maxLength": 128}},
                "RateLimit": {"schema": {"type": "string", "maxLength": 128}},
                "Retry-After": {"schema": {"type": "integer", "minimum": 1, "maximum": 3600}},
            },
            "responses": {
                "Problem": {"description": "Problem details.", "content": PROBLEM},
                "TooManyRequests": {
                    "description": "Slow down.",
                    "content": PROBLEM,
                    "headers": {"Retry-After": {"$ref": "#/components/headers/Retry-After"}},
                },
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "maxLength": 512},
                        "title": {"type": "string", "maxLength": 256},
                        "status": {"type": "integer", "minimum": 100, "maximum": 599},
                        "detail": {"type": "string", "maxLength": 2048},
                    },
                },
                "Order": {
                    "type": "object",
                    "required": ["order_id"],
                    "example": {"order_id": "o-1", "line_items": []},
                    "properties": {
                        "order_id": {"type": "string", "maxLength": 64},
                        "status": {"type": "string", "enum": ["open", "paid"]},
                        "quantity": {"type": "integer", "minimum": 0, "maximum": 10000},
                        "line_items": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"type": "string", "maxLength": 64},
                        },
                    },
                },
                "OrderPage": {
                    "type": "object",
                    "example": {"data": [], "next_cursor": None},
                    "properties": {
                        "data": {
                            "type": "array",
                            "maxItems": 100,
                            "items": {"$ref": "#/components/schemas/Order"},
                        },
                        "next_cursor": {"type": ["string", "null"], "maxLength": 256},
                    },
                },
            },
        },
    }


def op(d: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    result: dict[str, Any] = d["paths"][path][method]
    return result


def _bad_001(d: dict[str, Any]) -> None:
    del d["info"]["version"]


def _bad_002(d: dict[str, Any]) -> None:
    op(d, "/orders", "get")["parameters"] = []


def _bad_003(d: dict[str, Any]) -> None:
    d["servers"] = [{"url": "https://api.example.com"}]


def _bad_004(d: dict[str, Any]) -> None:
    op(d, "/orders/{order_id}", "get")["responses"]["404"] = {
        "description": "Not found.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"message": {"type": "string", "maxLength": 100}}}
            }
        },
    }


def _bad_005(d: dict[str, Any]) -> None:
    del d["security"]


def _bad_006(d: dict[str, Any]) -> None:
    op(d, "/orders", "post")["security"] = [{"apiKeyAuth": []}]


def _bad_007(d: dict[str, Any]) -> None:
    op(d, "/orders", "post")["parameters"] = []


def _bad_008(d: dict[str, Any]) -> None:
    del op(d, "/orders", "get")["responses"]["429"]


def _bad_009(d: dict[str, Any]) -> None:
    del op(d, "/orders", "post")["responses"]["201"]["headers"]


def _bad_010(d: dict[str, Any]) -> None:
    op(d, "/orders/{order_id}", "get")["responses"]["200"]["headers"] = {
        "RateLimit": {"$ref": "#/components/headers/RateLimit"}
    }


def _bad_011(d: dict[str, Any]) -> None:
    del d["components"]["schemas"]["Order"]["properties"]["line_items"]["maxItems"]


def _bad_012(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Order"]["properties"]["note"] = {"type": "string"}


def _bad_013(d: dict[str, Any]) -> None:
    d["paths"]["/orderHistory"] = d["paths"].pop("/orders/{order_id}")


def _bad_014(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Order"]["properties"]["createdAt"] = {"type": "string", "format": "date-time"}


def _bad_015(d: dict[str, Any]) -> None:
    del op(d, "/orders/{order_id}", "get")["summary"]


def _bad_016(d: dict[str, Any]) -> None:
    del d["components"]["schemas"]["Order"]["example"]


def _bad_017(d: dict[str, Any]) -> None:
    del op(d, "/orders/{order_id}", "get")["operationId"]


def _bad_018(d: dict[str, Any]) -> None:
    op(d, "/orders/{order_id}", "get")["operationId"] = "listOrders"


def _bad_019(d: dict[str, Any]) -> None:
    d["paths"]["/get-orders/{order_id}"] = d["paths"].pop("/orders/{order_id}")


def _bad_020(d: dict[str, Any]) -> None:
    op(d, "/orders/{order_id}", "get")["parameters"].append(
        {"name": "api_key", "in": "query", "schema": {"type": "string", "maxLength": 64}}
    )


def _bad_021(d: dict[str, Any]) -> None:
    d["servers"] = [{"url": "http://api.example.com/v1"}]


def _bad_022(d: dict[str, Any]) -> None:
    del d["components"]["schemas"]["Order"]["properties"]["quantity"]["maximum"]


def _bad_023(d: dict[str, Any]) -> None:
    del op(d, "/orders", "post")["responses"]["400"]


BAD: dict[str, Callable[[dict[str, Any]], None]] = {
    f"OAS{name[5:8]}": fn for name, fn in globals().items() if name.startswith("_bad_") and callable(fn)
}


def main() -> None:
    header = "# generated by make_openapi_fixtures.py: {what}\n"
    for rule_id, mutate in sorted(BAD.items()):
        good = base()
        bad = copy.deepcopy(good)
        mutate(bad)
        for kind, doc in (("good", good), ("bad", bad)):
            text = header.format(what=f"{rule_id} {kind}") + yaml.safe_dump(doc, sort_keys=False, width=110)
            (HERE / f"{rule_id}.{kind}.yaml").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
