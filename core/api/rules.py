"""The API contract rule catalogue: id, title, category, default severity, rationale and fix per rule.

The checks live in ``openapi_checks``, ``graphql_checks`` and ``proto_checks``; this module is the one
source of the text that findings, ``dataeng api rules`` and the SARIF report show. Coverage was chosen
against Spectral's ``oas`` ruleset and its OWASP API security ruleset, vacuum, buf lint and the Google
API improvement proposals (AIP-158 pagination, AIP-180 compatibility); the texts are our own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dataeng_agents.core.review.models import Severity

ApiCategory = Literal[
    "design", "reliability", "performance", "security", "documentation", "naming", "compatibility"
]
ApiTarget = Literal["openapi", "graphql", "proto"]


@dataclass(frozen=True)
class ApiRule:
    """One contract rule (the same fields the pipeline reviewer's ``Rule`` has, for the shared SARIF writer)."""

    id: str
    title: str
    category: ApiCategory
    severity: Severity
    targets: tuple[ApiTarget, ...]
    rationale: str
    fix: str
    #: production-hygiene rules that the ``examples`` profile switches off
    production_only: bool = False
    references: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        refs = "".join(f"- {r}\n" for r in self.references)
        comment = "//" if self.targets == ("proto",) else "#"
        return (
            f"# {self.id}: {self.title}\n\n"
            f"| | |\n|---|---|\n| Category | {self.category} |\n| Default severity | {self.severity.value} |\n"
            f"| Applies to | {', '.join(self.targets)} |\n"
            f"| Off in the `examples` profile | {'yes' if self.production_only else 'no'} |\n\n"
            f"## Why\n\n{self.rationale}\n\n## How to fix\n\n{self.fix}\n\n"
            f"## Suppress\n\nAdd `{comment} dataeng: ignore[{self.id}]` on the reported line (or the line above it), "
            f'list the file in the exceptions file (`<glob> {self.id}`), or set `{self.id} = "off"` under '
            "`[tool.dataeng.api.severity]` in pyproject.toml.\n"
            + (f"\n## References\n\n{refs}" if refs else "")
        )


E, W, INFO = Severity.error, Severity.warn, Severity.info
OAS: tuple[ApiTarget, ...] = ("openapi",)
GQL: tuple[ApiTarget, ...] = ("graphql",)
PB: tuple[ApiTarget, ...] = ("proto",)

_RULES: list[ApiRule] = [
    # ------------------------------------------------------------------------------------ OpenAPI
    ApiRule(
        "OAS001",
        "Not a valid OpenAPI document",
        "compatibility",
        E,
        OAS,
        "The document fails the OpenAPI 3.0/3.1 schema (openapi-spec-validator): code generators, gateways "
        "and documentation tools reject it or guess.",
        "Fix the reported schema error; run `openapi-spec-validator` in CI.",
        references=("OpenAPI Specification 3.1.0",),
    ),
    ApiRule(
        "OAS002",
        "List endpoint without pagination",
        "performance",
        W,
        OAS,
        "A GET on a collection that returns an array (or an object wrapping one) with no page size and no "
        "cursor/page parameter returns the whole table: response time and memory grow with the data.",
        "Add a bounded `limit`/`page_size` query parameter and a cursor (`cursor`/`page_token`) and return the "
        "next cursor in the response (cursor pagination keeps pages stable under inserts).",
        references=("Google AIP-158 Pagination", "Spectral OWASP ruleset: api4 resource consumption"),
    ),
    ApiRule(
        "OAS003",
        "No versioning scheme",
        "design",
        W,
        OAS,
        "Neither the server URLs nor the paths carry a major version (`/v1`), and no version header or "
        "media-type parameter is declared: the first breaking change has nowhere to go.",
        "Put the major version in the base path (`https://api.example.com/v1`) or declare a required version "
        "header (e.g. `API-Version`) on every operation.",
    ),
    ApiRule(
        "OAS004",
        "Errors without a common problem-details model",
        "design",
        W,
        OAS,
        "4xx/5xx responses without `application/problem+json` (RFC 9457) or a schema with `type`, `title`, "
        "`status` and `detail` give every client a different error format to parse.",
        "Declare a `Problem` schema (type, title, status, detail, instance) under components and answer every "
        "error with it as `application/problem+json` (a shared `default` response works).",
        references=("RFC 9457 Problem Details for HTTP APIs",),
    ),
    ApiRule(
        "OAS005",
        "Operation without a security requirement",
        "security",
        E,
        OAS,
        "The operation has no effective `security` (none on it, none at the root, or an explicit `[]`): it is "
        "public to anyone who can reach the server.",
        "Declare `security` at the root (and override per operation only with stricter schemes); document "
        "intentionally public operations with a suppression.",
        references=("Spectral OWASP ruleset: api2 broken authentication",),
    ),
    ApiRule(
        "OAS006",
        "Security requirement names an undefined scheme",
        "security",
        E,
        OAS,
        "A `security` entry refers to a scheme that `components.securitySchemes` does not define: tools drop "
        "it and the operation is effectively unauthenticated.",
        "Define the scheme under `components.securitySchemes` or fix the name.",
    ),
    ApiRule(
        "OAS007",
        "Resource-creating POST without an idempotency key",
        "reliability",
        W,
        OAS,
        "A POST that creates a resource (201, or a POST on a collection) without an `Idempotency-Key` header "
        "creates duplicates when a client retries after a timeout.",
        "Accept an `Idempotency-Key` request header and replay the stored response for a repeated key.",
        references=("IETF draft-ietf-httpapi-idempotency-key-header",),
    ),
    ApiRule(
        "OAS008",
        "No 429 Too Many Requests response",
        "reliability",
        W,
        OAS,
        "Without a documented 429 (with `Retry-After`) clients cannot tell throttling from failure and retry "
        "immediately, which amplifies overload.",
        "Declare a `429` response with `Retry-After` and the problem-details body on every operation.",
        references=("Spectral OWASP ruleset: api4 rate limit",),
    ),
    ApiRule(
        "OAS009",
        "Success responses without rate-limit headers",
        "reliability",
        INFO,
        OAS,
        "Clients that cannot see their remaining quota (`RateLimit`/`RateLimit-Policy`, or "
        "`X-RateLimit-*`) cannot pace themselves before they are throttled.",
        "Return `RateLimit` and `RateLimit-Policy` headers (IETF draft) on 2xx responses.",
        production_only=True,
        references=("IETF draft-ietf-httpapi-ratelimit-headers",),
    ),
    ApiRule(
        "OAS010",
        "GET without caching headers",
        "performance",
        INFO,
        OAS,
        "A GET whose 200 response declares neither `ETag`, `Last-Modified` nor `Cache-Control` cannot be "
        "revalidated or cached: every poll transfers and recomputes the full response.",
        "Return `ETag` (and honour `If-None-Match` with 304) and a `Cache-Control` max-age sized to the "
        "data's freshness.",
    ),
    ApiRule(
        "OAS011",
        "Unbounded array",
        "performance",
        W,
        OAS,
        "An array schema without `maxItems` lets one request or response carry any number of items.",
        "Set `maxItems` (and paginate responses that can exceed it).",
        references=("Spectral OWASP ruleset: array-limit",),
    ),
    ApiRule(
        "OAS012",
        "Unbounded string",
        "security",
        W,
        OAS,
        "A string without `maxLength`, `enum`, `const` or a bounded `format` accepts arbitrarily large "
        "payloads (resource exhaustion, log and storage abuse).",
        "Set `maxLength` (or use an enum / a bounded format such as `date-time` or `uuid`).",
        references=("Spectral OWASP ruleset: string-limit",),
    ),
    ApiRule(
        "OAS013",
        "Path segment not kebab-case",
        "naming",
        INFO,
        OAS,
        "Mixed path styles (`/userAccounts`, `/user_accounts`) make URLs hard to guess and to route "
        "consistently.",
        "Use lower-case kebab-case literal segments (`/user-accounts/{accountId}`).",
    ),
    ApiRule(
        "OAS014",
        "Inconsistent property casing",
        "naming",
        W,
        OAS,
        "The document mixes camelCase and snake_case property names: clients need per-field mapping and "
        "generated models look inconsistent.",
        "Pick one casing for all properties (and parameters) and rename the minority.",
    ),
    ApiRule(
        "OAS015",
        "Operation without summary or description",
        "documentation",
        INFO,
        OAS,
        "Undocumented operations are guessed at by clients and show up blank in API portals.",
        "Add a one-line `summary` and a `description` stating behaviour and side effects.",
    ),
    ApiRule(
        "OAS016",
        "Success response without an example",
        "documentation",
        INFO,
        OAS,
        "A 2xx JSON response without `example`/`examples` (on the media type or its schema) leaves mocks and "
        "docs empty.",
        "Add an `example` on the media type or the schema.",
        production_only=True,
    ),
    ApiRule(
        "OAS017",
        "Operation without operationId",
        "documentation",
        W,
        OAS,
        "SDK generators derive method names from `operationId`; without it they invent unstable names.",
        "Give every operation a unique camelCase `operationId`.",
    ),
    ApiRule(
        "OAS018",
        "Duplicate operationId",
        "design",
        E,
        OAS,
        "Two operations share an `operationId`: generated clients fail to compile or silently drop one.",
        "Make every `operationId` unique.",
    ),
    ApiRule(
        "OAS019",
        "Verb in path",
        "design",
        W,
        OAS,
        "Paths like `/getUsers` or `/orders/create` encode the action the HTTP method already names, and grow "
        "one path per action.",
        "Name resources with nouns and let the method carry the action (`POST /orders`).",
    ),
    ApiRule(
        "OAS020",
        "Credential in the query string",
        "security",
        E,
        OAS,
        "An API key or token passed as a query parameter ends up in access logs, proxies and browser "
        "history.",
        "Send credentials in a header (`Authorization`, or an `apiKey` scheme with `in: header`).",
        references=("Spectral OWASP ruleset: no-api-keys-in-url",),
    ),
    ApiRule(
        "OAS021",
        "Server URL without HTTPS",
        "security",
        E,
        OAS,
        "A server URL with `http://` sends credentials and data in clear text.",
        "Serve the API over `https://` only (localhost URLs are exempt).",
    ),
    ApiRule(
        "OAS022",
        "Integer without bounds",
        "security",
        INFO,
        OAS,
        "An integer input without `minimum`/`maximum` accepts values the backend may not handle (negative "
        "page sizes, overflow).",
        "Set `minimum` and `maximum` on integer parameters and request fields.",
        references=("Spectral OWASP ruleset: integer-limit",),
    ),
    ApiRule(
        "OAS023",
        "Write operation without a validation error response",
        "design",
        INFO,
        OAS,
        "A POST/PUT/PATCH with a request body that documents neither 400 nor 422 hides how invalid input is "
        "reported.",
        "Declare `400` (malformed) and/or `422` (semantically invalid) with the problem-details body.",
    ),
    # ------------------------------------------------------------------------------------ GraphQL
    ApiRule(
        "GQL001",
        "Not a valid GraphQL schema",
        "compatibility",
        E,
        GQL,
        "The SDL does not build into a schema (graphql-core): undefined types, duplicate fields or invalid "
        "directives.",
        "Fix the reported error; validate the SDL in CI.",
    ),
    ApiRule(
        "GQL002",
        "Cyclic schema without a depth or complexity limit",
        "security",
        W,
        GQL,
        "Object types reference each other in a cycle, so a client can nest a query arbitrarily deep; without "
        "cost directives (`@cost`, `@listSize`) or a declared depth limit one request can fan out to millions "
        "of resolver calls.",
        "Enforce a max query depth and complexity in the server and declare it (`graphql_max_depth` in "
        "`[tool.dataeng.api]`), or annotate the schema with `@cost`/`@listSize`.",
        references=("IBM GraphQL Cost Directive specification",),
    ),
    ApiRule(
        "GQL003",
        "List field without connection-style pagination",
        "performance",
        W,
        GQL,
        "A field returning a list of objects with no `first`/`after` (or `last`/`before`) arguments returns "
        "every item in one response.",
        "Return a `...Connection` type with `edges { cursor node }` and `pageInfo`, taking `first`/`after`.",
        references=("Relay Cursor Connections Specification",),
    ),
    ApiRule(
        "GQL004",
        "Connection type not Relay-compliant",
        "design",
        W,
        GQL,
        "A `...Connection` type without `edges` and `pageInfo`, or a `PageInfo` without `hasNextPage` and "
        "`endCursor`, breaks generic pagination clients.",
        "Give connections `edges: [Edge!]!` and `pageInfo: PageInfo!`, and `PageInfo` the four Relay fields.",
    ),
    ApiRule(
        "GQL005",
        "Questionable nullability",
        "design",
        W,
        GQL,
        "An `id` field that may be null, or a list whose items may be null, forces every client to handle "
        "nulls that cannot happen (or hides partial failures inside lists).",
        "Declare `id: ID!` and `[Item!]` item types; keep nullability only where a null has a meaning.",
    ),
    ApiRule(
        "GQL006",
        "Type or field without a description",
        "documentation",
        INFO,
        GQL,
        "Schema descriptions are the API documentation (GraphiQL, generated docs); undocumented types are "
        "guessed at.",
        'Add a `"""description"""` to every type and to the fields of the root types.',
    ),
    ApiRule(
        "GQL007",
        "Naming convention violated",
        "naming",
        INFO,
        GQL,
        "Type names should be PascalCase, fields and arguments camelCase, enum values UPPER_CASE: mixed styles "
        "break generated client code conventions.",
        "Rename to PascalCase types, camelCase fields/arguments and UPPER_CASE enum values.",
    ),
    ApiRule(
        "GQL008",
        "Deprecation without a reason",
        "documentation",
        INFO,
        GQL,
        "`@deprecated` without `reason` tells clients to migrate but not to what.",
        'Add `reason: "Use newField instead; removal after YYYY-MM-DD."`.',
    ),
    # ------------------------------------------------------------------------------------ protobuf
    ApiRule(
        "PB001",
        "Field number used twice",
        "compatibility",
        E,
        PB,
        "Two fields of a message share a number: protoc rejects the file, and older binaries decode one "
        "field's bytes as the other.",
        "Give every field a unique number; never renumber a published field.",
    ),
    ApiRule(
        "PB002",
        "Reserved field number or name in use",
        "compatibility",
        E,
        PB,
        "A field uses a number or name that was reserved because an earlier field was removed: old clients "
        "decode it with the removed field's type.",
        "Pick an unused number and name; keep the reservation.",
    ),
    ApiRule(
        "PB003",
        "Field numbers skipped without `reserved`",
        "compatibility",
        W,
        PB,
        "Gaps in the field numbers usually mean removed fields; without `reserved` a later field can reuse the "
        "number and corrupt data for old clients.",
        "Add `reserved <numbers>;` (and the removed names) for every number no longer used.",
        references=(
            "Protocol Buffers language guide: Reserved fields",
            "buf breaking FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
        ),
    ),
    ApiRule(
        "PB004",
        "Enum without an UNSPECIFIED zero value",
        "design",
        W,
        PB,
        "The zero value is what an unset enum field decodes to; if it is a real value (`ACTIVE = 0`) unset and "
        "'active' cannot be told apart. proto3 also requires the first value to be 0.",
        "Start every enum with `<ENUM_NAME>_UNSPECIFIED = 0;`.",
        references=("buf lint ENUM_ZERO_VALUE_SUFFIX, ENUM_FIRST_VALUE_ZERO",),
    ),
    ApiRule(
        "PB005",
        "Package without a version suffix",
        "design",
        W,
        PB,
        "A package like `acme.billing` (or no package) leaves no room for a v2 next to v1: breaking changes "
        "have to be made in place.",
        "Use a versioned package (`acme.billing.v1`).",
        references=("buf lint PACKAGE_VERSION_SUFFIX",),
    ),
    ApiRule(
        "PB006",
        "Field name not lower_snake_case",
        "naming",
        W,
        PB,
        "protoc derives JSON names and accessor names from field names; camelCase field names give "
        "inconsistent JSON mappings across languages.",
        "Rename to lower_snake_case (reserve the old name if the message is published).",
        references=("buf lint FIELD_LOWER_SNAKE_CASE",),
    ),
    ApiRule(
        "PB007",
        "Message, enum, service or enum-value naming",
        "naming",
        INFO,
        PB,
        "Messages, enums and services should be PascalCase and enum values UPPER_SNAKE_CASE prefixed with the "
        "enum name (values share the enclosing scope in C++).",
        "Rename (`OrderStatus { ORDER_STATUS_PAID = 1; }`).",
    ),
    ApiRule(
        "PB008",
        "List RPC without pagination",
        "performance",
        W,
        PB,
        "A `List...` RPC whose request has no `page_size` and `page_token` (and response no "
        "`next_page_token`) returns every item in one message.",
        "Add `int32 page_size`, `string page_token` to the request and `string next_page_token` to the response.",
        references=("Google AIP-158 Pagination",),
    ),
    ApiRule(
        "PB009",
        "RPC request/response message not unique or not standard",
        "design",
        INFO,
        PB,
        "RPCs sharing one request or response message (or using `google.protobuf.Empty`, or a domain message "
        "such as `Location` as the request) cannot evolve independently: adding a field for one changes all.",
        "Give every RPC its own `<Rpc>Request` and `<Rpc>Response` messages.",
        references=(
            "buf lint RPC_REQUEST_RESPONSE_UNIQUE, RPC_REQUEST_STANDARD_NAME, RPC_RESPONSE_STANDARD_NAME",
        ),
    ),
]

API_RULES: dict[str, ApiRule] = {r.id: r for r in _RULES}
assert len(API_RULES) == len(_RULES), "duplicate rule id"


def api_rules_for(target: ApiTarget) -> list[ApiRule]:
    return [r for r in _RULES if target in r.targets]


def all_api_rules() -> list[ApiRule]:
    return list(_RULES)
