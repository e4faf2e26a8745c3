"""Small helpers over Python's ``ast`` shared by the Airflow and Prefect analysers (no code is executed)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# isinstance with a prebuilt tuple: ``isinstance(x, A | B)`` builds a union object on every call (~4x slower)
FUNC_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
ATTR_OR_CALL = (ast.Attribute, ast.Call)
LIST_TUPLE = (ast.List, ast.Tuple)
LIST_TUPLE_SET = (ast.List, ast.Tuple, ast.Set)
WITHS = (ast.With, ast.AsyncWith)
SHIFTS = (ast.RShift, ast.LShift)
IMPORTS = (ast.Import, ast.ImportFrom)
TRY_OR_WITH = (ast.Try, ast.With)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_DECORATED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LINENO = operator.attrgetter("lineno")


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for Name/Attribute chains, ``a.b()`` -> ``a.b``; "" when not a plain chain."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
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


def import_map(tree: ast.Module, index: Index | None = None) -> dict[str, str]:
    """Local name -> fully qualified name for every import anywhere in the module."""
    out: dict[str, str] = {}
    if index is not None:
        # every import node has a line: a C-level sort key instead of a lambda call per node
        nodes = sorted(index.of(ast.Import, ast.ImportFrom), key=_LINENO)
    else:
        nodes = sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0))
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    head = a.name.partition(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = node.module
            for a in node.names:
                out[a.asname or a.name] = f"{module}.{a.name}"
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
            if isinstance(child, _DEFS):
                # decorators and default values do run at parse time
                if isinstance(child, _DECORATED):
                    stack.extend(child.decorator_list)
                if isinstance(child, FUNC_DEFS):
                    stack.extend(d for d in child.args.defaults if d is not None)
                    stack.extend(d for d in child.args.kw_defaults if d is not None)
                continue
            stack.append(child)


def _in_walk_order(node: ast.AST, wanted: frozenset[type]) -> list[ast.AST]:
    """The nodes under ``node`` (itself included) whose type is in ``wanted``, in ``ast.walk`` order.

    ``ast.walk`` is breadth-first, so its order is the order nodes enter its queue: this walk records
    the wanted nodes as they are queued and does not queue leaves (names, constants, contexts)."""
    out: list[ast.AST] = [node] if node.__class__ in wanted else []
    leaves = _QUEUE_LEAVES
    if node.__class__ in leaves:
        return out
    queue: list[ast.AST] = [node]
    push = queue.append
    child_fields = _CHILD_FIELDS
    for cur in queue:  # the list grows while it is iterated: a FIFO queue without pops
        cls = cur.__class__
        fields = child_fields.get(cls)
        if fields is None:
            fields = _child_fields(cls)
        for name in fields:
            value = getattr(cur, name, None)
            if value is None:
                continue
            for item in value if value.__class__ is list else (value,):
                icls = item.__class__
                if icls in wanted:
                    out.append(item)
                if icls in leaves or not isinstance(item, ast.AST):
                    continue
                push(item)
    return out


_STRING_TYPES = frozenset({ast.Constant, ast.JoinedStr})
_CALL_TYPE = frozenset({ast.Call})


def string_nodes(node: ast.AST) -> list[ast.AST]:
    """The ``Constant`` and ``JoinedStr`` nodes under ``node`` (itself included), in ``ast.walk`` order."""
    return _in_walk_order(node, _STRING_TYPES)


_CLOCK_LAST = frozenset({"now", "today", "utcnow", "days_ago", "time"})


def is_clock_call(node: ast.AST, imports: dict[str, str]) -> bool:
    """``datetime.now()``, ``date.today()``, ``pendulum.now()``, ``days_ago(...)``, ``time.time()`` ..."""
    if not isinstance(node, ast.Call):
        return False
    # most calls are ruled out by the last name of the callee, without building the dotted name
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr not in _CLOCK_LAST:
            return False
    elif isinstance(func, ast.Name) and imports.get(func.id, func.id).rsplit(".", 1)[-1] not in _CLOCK_LAST:
        return False
    name = qualify(dotted(func), imports)
    last = name.rsplit(".", 1)[-1]
    if last in {"now", "today", "utcnow"} and (
        "datetime" in name or "date" in name or "pendulum" in name or "timezone" in name
    ):
        return True
    return last == "days_ago" or name in {"time.time", "airflow.utils.timezone.utcnow"}


def may_call_clock(index: Index, imports: dict[str, str]) -> bool:
    """False when no call of the module can pass :func:`is_clock_call`: its first test (the callee's
    last name, through the imports for a plain name) applied to the index's call names at once.

    ``""`` holds the calls of anything but a name or an attribute (``f()()``), which that test lets through."""
    names = index.call_by_name
    if "" in names or not _CLOCK_LAST.isdisjoint(names):
        return True
    return any(local in names and qual.rsplit(".", 1)[-1] in _CLOCK_LAST for local, qual in imports.items())


def contains_clock_call(node: ast.AST | Sequence[ast.AST], imports: dict[str, str]) -> ast.Call | None:
    """The first clock call in ``node`` (a sequence: its calls in order; a node: in ``ast.walk`` order)."""
    for sub in calls_under(node) if isinstance(node, ast.AST) else node:
        if isinstance(sub, ast.Call) and is_clock_call(sub, imports):
            return sub
    return None


def calls_under(node: ast.AST) -> list[ast.Call]:
    """The ``Call`` nodes under ``node`` (itself included), in ``ast.walk`` order."""
    return [n for n in _in_walk_order(node, _CALL_TYPE) if isinstance(n, ast.Call)]


SQL_WORDS_LOWER = ("select ", "insert ", "update ", "delete ", "merge ", "create ", "truncate ", "copy into")


def lines_mentioning(lowered: str, words: tuple[str, ...]) -> list[int]:
    """Sorted 1-based line numbers where any of ``words`` occurs (str.find, no per-line Python loop)."""
    offsets: list[int] = []
    for w in words:
        pos = lowered.find(w)
        while pos >= 0:
            offsets.append(pos)
            pos = lowered.find(w, pos + 1)
    if not offsets:
        return []
    offsets.sort()
    out: list[int] = []
    line, last = 1, 0
    for off in offsets:
        line += lowered.count("\n", last, off)
        last = off
        if not out or out[-1] != line:
            out.append(line)
    return out


def has_any(lowered: str, words: tuple[str, ...]) -> bool:
    """Substring pre-filter (much cheaper than a case-insensitive regex over the whole file)."""
    return any(w in lowered for w in words)


@dataclass(slots=True)
class Span:
    start: int
    end: int

    def contains(self, line: int) -> bool:
        return self.start <= line <= self.end


def span(node: ast.AST) -> Span:
    start = getattr(node, "lineno", 1)
    return Span(start, getattr(node, "end_lineno", None) or start)


#: fields that never hold a node the checks look at (contexts, operators) or hold no node at all
_SKIP_FIELDS = frozenset(
    {
        "ctx",
        "type_comment",
        "op",
        "ops",
        "attr",
        "id",
        "name",
        "arg",
        "module",
        "level",
        "asname",
        "kind",
        "conversion",
        "is_async",
        "simple",
        "type_ignores",
    }
)
#: node types nothing is recorded for and that have no children worth visiting
_SILENT_LEAVES = frozenset({ast.Name, ast.alias, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal})
#: what the ``ast.walk``-order walks do not queue: the silent leaves and constants (no child nodes)
_QUEUE_LEAVES = _SILENT_LEAVES | {ast.Constant}
#: node types the checks query: bucketed, with their owner; everything else is only traversed
#: (constants, attributes and keywords are numerous: the rare checks that need them walk lazily)
_RECORDED = frozenset(
    {
        ast.Call,
        ast.JoinedStr,
        ast.ExceptHandler,
        ast.Assign,
        ast.AnnAssign,
        ast.Return,
        ast.For,
        ast.With,
        ast.AsyncWith,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.ClassDef,
        ast.BinOp,
        ast.Dict,
        ast.Import,
        ast.ImportFrom,
        ast.Raise,
    }
)
_WITH_PARENT = frozenset({ast.Call, ast.Attribute})
#: what the index walk does not visit: constants are never recorded and have no children; the plain
#: values some fields hold (None for an absent node, a name, a flag) are not nodes
_NOT_VISITED = _SILENT_LEAVES | {ast.Constant, type(None), str, bool, int}
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        fields = (
            ()
            if cls in _SILENT_LEAVES or cls is ast.Constant
            else tuple(f for f in getattr(cls, "_fields", ()) if f not in _SKIP_FIELDS)
        )
        _CHILD_FIELDS[cls] = fields
    return fields


#: how a child field is visited: one node or a list of nodes, inside the node's own scope or outside it
#: (a def's decorators, defaults and annotations are evaluated where the def is)
_INSIDE, _OUTSIDE, _LIST, _LIST_OUTSIDE = 0, 1, 2, 3
_FIELD_SPECS: dict[type, tuple[tuple[str, int], ...]] = {}


def _field_spec(cls: type, node: ast.AST) -> tuple[tuple[str, int], ...]:
    """The child fields of ``cls`` worth visiting, each with how it is visited.

    A field is a list field when ``node`` (the first of its type seen) holds a list there: the parser
    builds a list for every sequence field, also an empty one, and never for a single-node field."""
    spec: list[tuple[str, int]] = []
    for name in _child_fields(cls):
        if getattr(node, name, None).__class__ is list:
            spec.append((name, _LIST_OUTSIDE if name == "decorator_list" else _LIST))
        else:
            spec.append(
                (name, _OUTSIDE if name in {"args", "returns"} and cls is not ast.Lambda else _INSIDE)
            )
    out = _FIELD_SPECS[cls] = tuple(spec)
    return out


#: keyword arguments whose literal value is never a secret (ids, names, scheduling): not recorded
NEVER_SECRET_ARGS = frozenset(
    {
        "task_id",
        "dag_id",
        "group_id",
        "description",
        "doc_md",
        "doc",
        "owner",
        "pool",
        "queue",
        "trigger_rule",
        "schedule",
        "schedule_interval",
        "mode",
        "python_callable",
        "namespace",
        "image",
        "name",
        "prefix",
        "bucket",
        "bucket_name",
        "bucket_key",
        "table",
        "database",
        "schema",
        "region_name",
        "filename",
        "external_dag_id",
        "external_task_id",
        "trigger_dag_id",
        "deploy_type",
        "deploy_target",
        "tags",
    }
)


class Index:
    """One pass over a module: the nodes the checks need, by type, with parent and enclosing function.

    The checks read these lists instead of walking the tree again: a full Python-level walk costs
    about as much as ``ast.parse`` itself, so this pass records only what is queried.
    """

    __slots__ = (
        "by_func",
        "by_type",
        "call_by_name",
        "calls_list",
        "literal_keyword_calls",
        "literal_keywords",
        "owner",
        "parent",
        "tree",
    )

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        # keyed by the node itself (identity hash): no int object per lookup, as id() would allocate
        self.parent: dict[ast.AST, ast.AST] = {}
        #: innermost enclosing def/lambda/class, by node (recorded types only); module-level nodes are
        #: left out (fewer stores: most DAG code is module level), so ``owner.get(node)`` is None for them
        self.owner: dict[ast.AST, ast.AST] = {}
        self.by_type: dict[type[ast.AST], list[ast.AST]] = {}
        #: the recorded nodes directly owned by each def (not by defs nested in it), by def
        self.by_func: dict[ast.AST, list[ast.AST]] = {}
        #: calls by the last name of the callee: ``a.b.c(...)`` under "c", ``f(...)`` under "f"
        self.call_by_name: dict[str, list[ast.Call]] = {}
        #: named call keywords whose value is a literal (the hard-coded secret check), and their calls
        #: (two parallel lists: no tuple per keyword)
        self.literal_keywords: list[ast.keyword] = []
        self.literal_keyword_calls: list[ast.Call] = []
        literal_keywords, literal_keyword_calls = self.literal_keywords, self.literal_keyword_calls
        parent, owner, by_type, by_func = self.parent, self.owner, self.by_type, self.by_func
        call_by_name = self.call_by_name
        #: every call, in walk order (kept apart from ``by_type``: typed as calls)
        calls: list[ast.Call] = []
        self.calls_list = calls
        recorded, with_parent, defs = _RECORDED, _WITH_PARENT, _DEFS
        with_parent_types = ATTR_OR_CALL
        skip = _NOT_VISITED
        field_specs = _FIELD_SPECS
        import_classes = (ast.Import, ast.ImportFrom)
        attribute_or_expr = (ast.Attribute, ast.Expr)
        stack: list[tuple[ast.AST, ast.AST | None]] = [(tree, None)]
        pop, push = stack.pop, stack.append
        while stack:
            node, own = pop()
            if isinstance(node, attribute_or_expr):
                # numerous, with a single child worth visiting: descend in place, which visits what
                # pushing the child and popping it at once would
                value = node.value
                while isinstance(value, ast.Attribute):
                    parent[value] = node
                    node = value
                    value = node.value
                if value.__class__ in skip:
                    continue
                if isinstance(value, ast.Call):
                    parent[value] = node
                node = value
            if isinstance(node, ast.Call):
                # the hottest node type: recorded, and its func, args and keyword values visited
                # without generic dispatch
                calls.append(node)
                if own is not None:
                    owner[node] = own
                    by_func[own].append(node)
                func = node.func
                fname = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else ""
                )
                named = call_by_name.get(fname)
                if named is None:
                    call_by_name[fname] = [node]
                else:
                    named.append(node)
                if func.__class__ not in skip:
                    if isinstance(func, with_parent_types):
                        parent[func] = node
                    # `name.method(...)` (318 of the 1,300 calls of the benchmark's files): the
                    # attribute's only child is a leaf, so visiting it would record nothing
                    if not (isinstance(func, ast.Attribute) and func.value.__class__ in skip):
                        push((func, own))
                for item in node.args:
                    if item.__class__ not in skip:
                        if isinstance(item, with_parent_types):
                            parent[item] = node
                        push((item, own))
                for kw in node.keywords:
                    value = kw.value
                    if isinstance(value, ast.Constant):
                        # string literals long enough to hold a secret (or be bound to a secret name)
                        if (
                            kw.arg is not None
                            and isinstance(value.value, str)
                            and len(value.value) >= 4
                            and kw.arg not in NEVER_SECRET_ARGS
                        ):
                            literal_keywords.append(kw)
                            literal_keyword_calls.append(node)
                        continue
                    if value.__class__ in skip:
                        continue
                    if isinstance(value, with_parent_types):
                        parent[value] = kw
                    push((value, own))
                continue
            cls = node.__class__
            inner = own
            if cls in recorded:
                bucket = by_type.get(cls)
                if bucket is None:
                    bucket = by_type[cls] = []
                bucket.append(node)
                if own is not None:
                    owner[node] = own
                    by_func[own].append(node)
                if cls in defs:
                    by_func[node] = []
                    inner = node
                elif cls in import_classes:
                    continue  # only aliases below
            spec = field_specs.get(cls)
            if spec is None:
                spec = _field_spec(cls, node)
            for name, mode in spec:
                value = getattr(node, name)  # every field is set on a parsed node
                if mode >= _LIST:
                    # decorators run where the def is, not inside it
                    item_owner = own if mode == _LIST_OUTSIDE else inner
                    for item in value:
                        icls = item.__class__
                        if icls in skip:
                            continue
                        if icls in with_parent:
                            parent[item] = node
                        push((item, item_owner))
                else:
                    vcls = value.__class__
                    if vcls in skip:
                        continue
                    if vcls in with_parent:
                        parent[value] = node
                    # a def's signature (defaults, annotations) is evaluated outside its body
                    push((value, own if mode == _OUTSIDE else inner))
        for nodes in by_func.values():
            nodes.reverse()

    def of(self, *types: type[ast.AST]) -> list[ast.AST]:
        out: list[ast.AST] = []
        for t in types:
            out.extend(self.by_type.get(t, ()))
        return out

    def calls_named(self, *names: str) -> list[ast.Call]:
        out: list[ast.Call] = []
        for n in names:
            out.extend(self.call_by_name.get(n, ()))
        return out

    def calls(self) -> list[ast.Call]:
        return self.calls_list

    def func_nodes(self, fn: ast.AST) -> list[ast.AST]:
        return self.by_func.get(fn, [])
