"""Small helpers over Python's ``ast`` shared by the Airflow and Prefect analysers (no code is executed)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for Name/Attribute chains, ``a.b()`` -> ``a.b``; "" when not a plain chain."""
    parts: list[str] = []
    cur: ast.AST = node
    while True:
        if isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        elif isinstance(cur, ast.Name):
            parts.append(cur.id)
            break
        elif isinstance(cur, ast.Call):
            cur = cur.func
        else:
            return ""
    return ".".join(reversed(parts))


def import_map(tree: ast.Module) -> dict[str, str]:
    """Local name -> fully qualified name for every import anywhere in the module."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def qualify(name: str, imports: dict[str, str]) -> str:
    """Resolve the first segment of a dotted name through the imports."""
    if not name:
        return name
    head, _, rest = name.partition(".")
    base = imports.get(head, head)
    return f"{base}.{rest}" if rest else base


def const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def string_parts(node: ast.AST | None) -> str | None:
    """The literal text of a str constant, an f-string (placeholders as ``{}``) or a concatenation."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}" for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = string_parts(node.left), string_parts(node.right)
        if left is not None or right is not None:
            return (left or "") + (right or "")
    return None


def kwargs_of(call: ast.Call) -> tuple[dict[str, ast.expr], bool]:
    """Keyword arguments of a call and whether it has a ``**splat`` (unknown extra keys)."""
    out: dict[str, ast.expr] = {}
    splat = False
    for kw in call.keywords:
        if kw.arg is None:
            splat = True
        else:
            out[kw.arg] = kw.value
    return out, splat


def walk_no_defs(node: ast.AST) -> Iterator[ast.AST]:
    """Like ``ast.walk`` but does not descend into function/class/lambda bodies (parse-time code only)."""
    stack: list[ast.AST] = [node]
    while stack:
        cur = stack.pop()
        yield cur
        for child in ast.iter_child_nodes(cur):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                # decorators and default values do run at parse time
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    stack.extend(child.decorator_list)
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    stack.extend(d for d in child.args.defaults if d is not None)
                    stack.extend(d for d in child.args.kw_defaults if d is not None)
                continue
            stack.append(child)


def is_clock_call(node: ast.AST, imports: dict[str, str]) -> bool:
    """``datetime.now()``, ``date.today()``, ``pendulum.now()``, ``days_ago(...)``, ``time.time()`` ..."""
    if not isinstance(node, ast.Call):
        return False
    name = qualify(dotted(node.func), imports)
    last = name.rsplit(".", 1)[-1]
    if last in {"now", "today", "utcnow"} and (
        "datetime" in name or "date" in name or "pendulum" in name or "timezone" in name
    ):
        return True
    return last == "days_ago" or name in {"time.time", "airflow.utils.timezone.utcnow"}


def contains_clock_call(node: ast.AST, imports: dict[str, str]) -> ast.Call | None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and is_clock_call(sub, imports):
            return sub
    return None


@dataclass
class Span:
    start: int
    end: int

    def contains(self, line: int) -> bool:
        return self.start <= line <= self.end


def span(node: ast.AST) -> Span:
    start = getattr(node, "lineno", 1)
    return Span(start, getattr(node, "end_lineno", None) or start)
