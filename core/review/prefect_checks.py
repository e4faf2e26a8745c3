"""The Prefect rules, evaluated statically on a flow file (``@flow`` / ``@task`` functions)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from dataeng_agents.core.review.airflow_checks import (
    IDEMPOTENT_RE,
    INSERT_RE,
    READ_CALLS,
    SQL_SHAPE,
    SQL_WORDS,
    WRITE_CALLS,
    _swallows,
    check_hardcoded_secrets,
    check_logged_secrets,
    check_sql_formatting,
)
from dataeng_agents.core.review.context import CheckContext
from dataeng_agents.core.review.pyast import (
    ATTR_OR_CALL,
    FUNC_DEFS,
    Index,
    calls_under,
    contains_clock_call,
    dotted,
    import_map,
    is_clock_call,
    kwargs_of,
    qualify,
    string_parts,
)


@dataclass
class PrefectFn:
    kind: str  # "flow" | "task"
    func: ast.FunctionDef | ast.AsyncFunctionDef
    kwargs: dict[str, ast.expr]
    #: ``@task(**options)``: arguments not written may still be set
    splat: bool = False

    @property
    def name(self) -> str:
        return self.func.name


def is_prefect_module(imports: dict[str, str]) -> bool:
    return any(v == "prefect" or v.startswith("prefect.") for v in imports.values())


def collect(tree: ast.Module, imports: dict[str, str]) -> list[PrefectFn]:
    out: list[PrefectFn] = []
    for node in ast.walk(tree):
        if not isinstance(node, FUNC_DEFS):
            continue
        for dec in node.decorator_list:
            name = qualify(dotted(dec), imports)
            if name in {"prefect.flow", "prefect.task", "prefect.flows.flow", "prefect.tasks.task"}:
                kw, splat = kwargs_of(dec) if isinstance(dec, ast.Call) else ({}, False)
                out.append(PrefectFn(name.rsplit(".", 1)[-1], node, kw, splat))
                break
    return out


def _number(node: ast.expr | None) -> float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    return None


def _caches(f: PrefectFn) -> bool:
    """Whether the function caches its result: ``cache_policy=NO_CACHE`` (or ``None``) and
    ``cache_key_fn=None`` switch caching off; Prefect 3 code spells "no cache" so to silence its
    warning about unhashable inputs, and that is no cache to persist or to reuse on a retry."""
    for key in ("cache_policy", "cache_key_fn"):
        value = f.kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, ast.Constant) and value.value is None:
            continue
        if dotted(value).rsplit(".", 1)[-1] == "NO_CACHE":
            continue
        return True
    return False


def _task_like_names(idx: Index, tree: ast.Module, imports: dict[str, str]) -> tuple[set[str], set[str]]:
    """Names that may hold a Prefect task defined in another module, and the plain ``import x`` modules.

    A name imported with ``from ... import name`` (any level: ``from .tasks import load``) may be a task
    of another module; so may a name bound to ``task(fn)`` or ``<task>.with_options(...)``. Local
    variables are not: ``df.map(...)`` is pandas, ``executor.submit(...)`` a thread pool."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in idx.of(ast.ImportFrom):
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names if a.name != "*")
    for node in idx.of(ast.Import):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name.partition(".")[0] for a in node.names)
    for node in idx.of(ast.Assign):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and (
                qualify(dotted(node.value.func), imports) in _TASK_DECORATORS
                or (isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "with_options")
            )
        ):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names, modules


def _fanned_task(
    node: ast.expr, tasks: dict[str, PrefectFn], task_like: set[str], modules: set[str]
) -> tuple[str, PrefectFn | None] | None:
    """What ``node.map(...)`` / ``node.submit(...)`` is called on when it may be a Prefect task:
    ``(its name, the task when defined in this file)``; ``None`` for anything else (a DataFrame, a
    Series ``df["c"]``, a thread pool, the result of a call)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "with_options"
    ):
        node = node.func.value  # load.with_options(name=...).map(...) fans out load
    if isinstance(node, ast.Name):
        if node.id in tasks:
            return node.id, tasks[node.id]
        return (node.id, None) if node.id in task_like else None
    # tasks.load.map(...) after `import tasks`: an attribute path of an imported module
    name = dotted(node)
    if name and name.partition(".")[0] in modules and "." in name:
        return name, None
    return None


_TASK_DECORATORS = frozenset({"prefect.task", "prefect.tasks.task"})


def review_prefect_module(
    ctx: CheckContext, tree: ast.Module, source: str, index: Index | None = None
) -> list[PrefectFn]:
    imports = import_map(tree)
    fns = collect(tree, imports)
    tasks = {f.name: f for f in fns if f.kind == "task"}
    idx = index if index is not None else Index(tree)
    task_like: set[str] | None = None
    modules: set[str] = set()
    for f in fns:
        label = f"{f.kind} '{f.name}'"
        # Prefect 1 spells them max_retries= and timeout=
        retries = f.kwargs.get("retries", f.kwargs.get("max_retries"))
        if (retries is None and not f.splat) or _number(retries) == 0:
            ctx.emit("PFT001", f.func, f.name, f"{label} has no retries")
        if "timeout_seconds" not in f.kwargs and "timeout" not in f.kwargs and not f.splat:
            ctx.emit("PFT002", f.func, f.name, f"{label} has no timeout_seconds")
        persist = f.kwargs.get("persist_result")
        if f.kind == "task" and _caches(f) and isinstance(persist, ast.Constant) and persist.value is False:
            ctx.emit(
                "PFT005",
                f.func,
                f.name,
                f"{label} caches but persist_result=False: the cache is never read back",
            )
        clock = contains_clock_call(f.func, imports) if f.kind == "task" else None
        if clock is not None:
            clock = _first_clock_not_timing(f.func, imports)
        if clock is not None:
            # a warning in Prefect: a flow run has no logical date to use instead, and the clock often only
            # stamps bookkeeping (last run date); in Airflow it is an error (the run's date exists)
            ctx.emit(
                "REL005",
                clock,
                f.name,
                f"'{dotted(clock.func)}()' inside {label}: results depend on run time",
                demoted=True,
            )
        for node in ast.walk(f.func):
            if isinstance(node, ast.ExceptHandler) and _swallows(node):
                ctx.emit("REL008", node, f.name, f"{label} catches a broad exception without re-raising")
        calls = {
            n.func.attr if isinstance(n.func, ast.Attribute) else dotted(n.func)
            for n in ast.walk(f.func)
            if isinstance(n, ast.Call)
        }
        if f.kind == "task" and calls & READ_CALLS and calls & WRITE_CALLS:
            ctx.emit("REL011", f.func, f.name, f"{label} both reads and writes data")
        if f.kind == "task":
            _check_plain_insert(ctx, f, label)
        if f.kind == "flow":
            if not any(k in f.kwargs for k in ("on_failure", "on_crashed")):
                ctx.emit("OBS001", f.func, f.name, f"{label} has no on_failure/on_crashed hook")
            called = [
                tasks[n.id]
                for c in ast.walk(f.func)
                if isinstance(c, ast.Call)
                for n in [_base_name(c.func)]
                if n is not None and n.id in tasks
            ]
            if _number(retries) and called and not any(_caches(t) for t in called):
                ctx.emit(
                    "PFT003",
                    f.func,
                    f.name,
                    f"{label} retries, but none of its tasks caches its result: a retry redoes all work",
                )
            limited = any(
                isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] in {"concurrency", "rate_limit"}
                for c in ast.walk(f.func)
            )
            if not limited:
                for c in ast.walk(f.func):
                    if not (
                        isinstance(c, ast.Call)
                        and isinstance(c.func, ast.Attribute)
                        and (c.func.attr == "map" or (c.func.attr == "submit" and _in_loop(f.func, c)))
                    ):
                        continue
                    if task_like is None:  # once per file, only when a flow calls .map/.submit
                        task_like, modules = _task_like_names(idx, tree, imports)
                    # only a task fans out: .map() of a DataFrame or a Series, .submit() of a thread pool
                    # do not run Prefect tasks
                    fanned = _fanned_task(c.func.value, tasks, task_like, modules)
                    if fanned is None:
                        continue
                    name, t = fanned
                    if t is None or "tags" not in t.kwargs:
                        ctx.emit(
                            "PFT004",
                            c,
                            f.name,
                            f"{label} fans out '{name}.{c.func.attr}' without a concurrency limit",
                        )
                        break
    check_hardcoded_secrets(ctx, idx, source)
    check_logged_secrets(ctx, idx)
    check_sql_formatting(ctx, idx, source)
    return fns


def _first_clock_not_timing(func: ast.AST, imports: dict[str, str]) -> ast.Call | None:
    """The first clock call of the function that does not only time something.

    ``start = time.time()`` ... ``time.time() - start`` measures a duration: no result depends on when
    the task runs. A clock value is timing when it is an operand of a subtraction whose other operand
    is a clock too, or is stored in names used only so (or copied into another such name:
    ``last = now``); ``now() - timedelta(days=1)`` is a window and stays reported."""
    calls = [c for c in calls_under(func) if is_clock_call(c, imports)]
    if not calls:
        return None
    clock_calls = set(calls)
    stored: dict[str, list[ast.expr]] = {}  # name -> every value assigned to it
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    stored.setdefault(t.id, []).append(node.value)
    clock_names = {
        n
        for n, values in stored.items()
        if all(v in clock_calls or (isinstance(v, ast.Name) and v.id in stored) for v in values)
        and any(v in clock_calls for v in values)
    }

    def clocky(e: ast.expr) -> bool:
        return e in clock_calls or (isinstance(e, ast.Name) and e.id in clock_names)

    timing: set[ast.AST] = set()  # operands of clock - clock, and the names copied into clock names
    for node in ast.walk(func):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Sub)
            and clocky(node.left)
            and clocky(node.right)
        ):
            timing.update((node.left, node.right))
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Name)
            and node.value.id in clock_names
            and all(isinstance(t, ast.Name) and t.id in clock_names for t in node.targets)
        ):
            timing.add(node.value)
    loads: dict[str, list[ast.Name]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in clock_names:
            loads.setdefault(node.id, []).append(node)
    timers = {n for n in clock_names if all(use in timing for use in loads.get(n, ()))}
    timer_values = {v for n in timers for v in stored[n]}
    for c in calls:
        if c not in timing and c not in timer_values:
            return c
    return None


def _check_plain_insert(ctx: CheckContext, f: PrefectFn, label: str) -> None:
    """REL006 for Prefect tasks: a plain INSERT INTO (no upsert/overwrite/delete of the partition) in the
    task's SQL strings appends the same rows again when the task is retried or the flow rerun."""
    statements = [
        (n, t)
        for n in ast.walk(f.func)
        if isinstance(n, ast.Constant | ast.JoinedStr) and (t := string_parts(n)) and SQL_WORDS.match(t)
    ]
    # every statement of the task counts for idempotence: a separate "DROP TABLE IF EXISTS {t}" or
    # "TRUNCATE {t}" before the INSERT makes it a full refresh (neither has the shape tested below)
    if not statements or any(IDEMPOTENT_RE.search(t) for _, t in statements):
        return
    for node, text in statements:
        if SQL_SHAPE.search(text) and INSERT_RE.search(text):
            ctx.emit(
                "REL006", node, f.name, f"{label} runs a plain INSERT INTO: a retry or rerun duplicates rows"
            )
            return


def _base_name(node: ast.AST) -> ast.Name | None:
    while isinstance(node, ATTR_OR_CALL):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node if isinstance(node, ast.Name) else None


def _in_loop(func: ast.AST, target: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, (ast.For, ast.While, ast.comprehension, ast.ListComp)) and any(
            sub is target for sub in ast.walk(node)
        ):
            return True
    return False
