"""GraphQL SDL checks (GQL001-GQL008) over a schema built by graphql-core."""

from __future__ import annotations

from typing import Any

from dataeng_agents.core.api.context import ApiCheckContext
from dataeng_agents.core.api.loader import GraphQLDocument

COST_DIRECTIVES = frozenset({"cost", "listsize", "complexity", "depthlimit", "maxdepth"})
PAGINATION_ARGS = (frozenset({"first", "after"}), frozenset({"last", "before"}))


def _user_types(schema: Any) -> list[Any]:
    from graphql import is_introspection_type, is_specified_scalar_type

    return [
        t
        for name, t in sorted(schema.type_map.items())
        if not is_introspection_type(t) and not is_specified_scalar_type(t) and not name.startswith("__")
    ]


def _line(node: Any) -> int:
    return GraphQLDocument.node_line(getattr(node, "ast_node", None) or node)


def check_graphql(ctx: ApiCheckContext, doc: GraphQLDocument) -> int:
    """Run every GraphQL rule; returns the number of root fields."""
    from graphql import validate_schema

    if doc.schema is None:
        ctx.emit("GQL001", 1, "schema", f"the SDL does not build a schema: {doc.schema_error}")
        return 0
    schema = doc.schema
    errors = validate_schema(schema)
    for err in errors[:20]:
        line = err.locations[0].line if err.locations else 1
        ctx.emit("GQL001", line, "schema", err.message)
    if errors:
        return 0
    roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t is not None]
    types = _user_types(schema)
    _depth_limit(ctx, doc, schema, types)
    for t in types:
        _naming_and_docs(ctx, t, roots)
        _fields(ctx, schema, t)
        _connection(ctx, schema, t)
    return sum(len(r.fields) for r in roots)


def _named(t: Any) -> Any:
    from graphql import get_named_type

    return get_named_type(t)


def _depth_limit(ctx: ApiCheckContext, doc: GraphQLDocument, schema: Any, types: list[Any]) -> None:
    from graphql import is_interface_type, is_object_type, is_union_type

    if not ctx.enabled("GQL002") or ctx.config.graphql_max_depth is not None:
        return
    if any(d.name.lower() in COST_DIRECTIVES for d in schema.directives):
        return
    graph: dict[str, set[str]] = {}
    for t in types:
        if is_object_type(t) or is_interface_type(t):
            graph[t.name] = set()
            for f in t.fields.values():
                target = _named(f.type)
                if is_union_type(target):
                    graph[t.name].update(m.name for m in target.types)
                elif is_object_type(target) or is_interface_type(target):
                    graph[t.name].add(target.name)
    cycle = _find_cycle(graph, schema.query_type.name if schema.query_type else None)
    if cycle:
        node = schema.query_type or types[0]
        ctx.emit(
            "GQL002",
            _line(node),
            "schema",
            f"types reference each other in a cycle ({' -> '.join(cycle)}) so query depth is unbounded, and "
            "the schema declares no cost directive and no depth limit is configured",
        )


def _find_cycle(graph: dict[str, set[str]], start: str | None) -> list[str] | None:
    """A cycle reachable from ``start`` (every type when ``None``), as a list of type names."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for s in [start] if start else sorted(graph):
        if s in graph and s not in state:
            found = visit(s)
            if found:
                return found
    return None


def _naming_and_docs(ctx: ApiCheckContext, t: Any, roots: list[Any]) -> None:
    from graphql import is_enum_type, is_input_object_type, is_interface_type, is_object_type

    if not t.description and t not in roots:
        ctx.emit("GQL006", _line(t), t.name, f"type {t.name} has no description")
    if not (t.name[:1].isupper() and "_" not in t.name):
        ctx.emit("GQL007", _line(t), t.name, f"type name {t.name} is not PascalCase")
    if is_enum_type(t):
        for vname, value in t.values.items():
            if vname != vname.upper():
                ctx.emit(
                    "GQL007",
                    _line(value),
                    f"{t.name}.{vname}",
                    f"enum value {t.name}.{vname} is not UPPER_CASE",
                )
            _deprecation(ctx, value, f"{t.name}.{vname}")
        return
    if is_object_type(t) or is_interface_type(t) or is_input_object_type(t):
        for fname, f in t.fields.items():
            subject = f"{t.name}.{fname}"
            if not (fname[:1].islower() and "_" not in fname.lstrip("_")):
                ctx.emit("GQL007", _line(f), subject, f"field {subject} is not camelCase")
            if t in roots and not f.description:
                ctx.emit("GQL006", _line(f), subject, f"root field {subject} has no description")
            for aname, arg in getattr(f, "args", {}).items():
                if not (aname[:1].islower() and "_" not in aname):
                    ctx.emit(
                        "GQL007",
                        _line(arg),
                        f"{subject}({aname})",
                        f"argument {aname} of {subject} is not camelCase",
                    )
            _deprecation(ctx, f, subject)


def _deprecation(ctx: ApiCheckContext, element: Any, subject: str) -> None:
    node = getattr(element, "ast_node", None)
    for d in getattr(node, "directives", None) or ():
        if d.name.value == "deprecated" and not any(a.name.value == "reason" for a in d.arguments or ()):
            ctx.emit("GQL008", _line(d), subject, f"{subject} is @deprecated without a reason")


def _fields(ctx: ApiCheckContext, schema: Any, t: Any) -> None:
    from graphql import (
        is_interface_type,
        is_list_type,
        is_non_null_type,
        is_object_type,
        is_union_type,
    )

    if not (is_object_type(t) or is_interface_type(t)):
        return
    is_connection_part = t.name.endswith(("Connection", "Edge"))
    for fname, f in t.fields.items():
        subject = f"{t.name}.{fname}"
        ftype = f.type
        if fname == "id" and not is_non_null_type(ftype):
            ctx.emit("GQL005", _line(f), subject, f"{subject} is nullable: declare it `{ftype}!`")
        inner = ftype.of_type if is_non_null_type(ftype) else ftype
        if is_list_type(inner):
            if not is_non_null_type(inner.of_type):
                ctx.emit("GQL005", _line(f), subject, f"{subject} is a list of nullable items ({ftype})")
            target = _named(inner)
            if (
                is_object_type(target) or is_interface_type(target) or is_union_type(target)
            ) and not is_connection_part:
                args = set(getattr(f, "args", {}))
                if not any(pair <= args for pair in PAGINATION_ARGS):
                    ctx.emit(
                        "GQL003",
                        _line(f),
                        subject,
                        f"{subject} returns a list of {target.name} without first/after pagination",
                    )


def _connection(ctx: ApiCheckContext, schema: Any, t: Any) -> None:
    from graphql import is_object_type

    if not is_object_type(t):
        return
    if t.name.endswith("Connection"):
        missing = [f for f in ("edges", "pageInfo") if f not in t.fields]
        if missing:
            ctx.emit(
                "GQL004", _line(t), t.name, f"connection {t.name} has no {' and no '.join(missing)} field"
            )
    if t.name == "PageInfo":
        forward = {"hasNextPage", "endCursor"} <= set(t.fields)
        backward = {"hasPreviousPage", "startCursor"} <= set(t.fields)
        if not (forward or backward):
            ctx.emit(
                "GQL004",
                _line(t),
                t.name,
                "PageInfo lacks hasNextPage/endCursor (and hasPreviousPage/startCursor)",
            )
