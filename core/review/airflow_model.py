"""A static model of an Airflow DAG file: DAGs, tasks, dependencies and effective task arguments.

Built from the AST only: the reviewed file is never imported or executed. Values that are built at
parse time by code (``default_args = make_args()``) resolve to :data:`UNKNOWN` instead of a guess.
"""

from __future__ import annotations

import ast
import functools
import itertools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from dataeng_agents.core.review.pyast import (
    ATTR_OR_CALL,
    FUNC_DEFS,
    LIST_TUPLE_SET,
    SHIFTS,
    SQL_WORDS_LOWER,
    WITHS,
    Index,
    Span,
    const_str,
    dotted,
    has_any,
    import_map,
    is_clock_call,
    kwargs_of,
    may_call_clock,
    qualify,
    span,
)

SENSOR_SUFFIXES = ("Sensor", "SensorAsync")
DEFAULT_TIMEOUT_SENSOR = 604800


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()

Source = Literal["task", "default_args", "dag", "config", "unknown"]


@dataclass(slots=True)
class Resolved:
    """The effective value of a task argument and where it came from."""

    source: Source
    node: ast.expr | None = None
    #: the config default when ``source == "config"``
    default: object = None

    @property
    def unknown(self) -> bool:
        return self.source == "unknown"

    @property
    def explicit(self) -> bool:
        return self.source in {"task", "default_args", "dag"}


@functools.lru_cache(maxsize=16)
def airflow_defaults(version: str) -> dict[str, object]:
    """Config defaults that differ between Airflow major versions (``[core]``, ``[scheduler]``, ``[sensors]``)."""
    major = _major(version)
    return {
        "retries": 0,
        "execution_timeout": None,
        "owner": "airflow",
        "catchup": major < 3,
        "schedule": "timedelta(days=1)" if major < 3 else None,
        "timeout": DEFAULT_TIMEOUT_SENSOR,
        "mode": "poke",
        "deferrable": False,
    }


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 3


@dataclass
class DagInfo:
    dag_id: str | None
    line: int
    style: Literal["ctor", "with", "decorator"]
    call: ast.Call | None
    kwargs: dict[str, ast.expr]
    span: Span
    var: str | None = None
    func: ast.FunctionDef | None = None
    default_args: dict[str, ast.expr] = field(default_factory=dict)
    default_args_dynamic: bool = False
    #: ``DAG(..., **kwargs)``: arguments not written in the call may still be set
    splat: bool = False
    #: the DAG is built inside a function (a DAG factory): arguments may come from its parameters
    factory: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    #: a stable name when there is no literal dag_id (no line numbers: finding ids must survive edits)
    fallback_name: str = ""
    tasks: list[TaskInfo] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    extra_spans: tuple[Span, ...] = ()
    # memo slots, not arguments
    _scheduled: bool | None = field(default=None, init=False, repr=False)
    #: what findings call the DAG: its dag_id, else its function, factory, variable or position (set
    #: once the DAGs are collected: the checks read it thousands of times)
    name: str = field(default="", init=False)

    @property
    def scheduled(self) -> bool:
        """True unless ``schedule=None`` (or an asset/dataset list) is explicit."""
        # a plain attribute cache: functools.cached_property takes a lock on every first access
        cached = self._scheduled
        if cached is None:
            sched = self.kwargs.get("schedule", self.kwargs.get("schedule_interval"))
            if sched is None:
                cached = True  # the version default applies; SCH001 reports it
            elif isinstance(sched, ast.Constant) and sched.value is None:
                cached = False
            else:
                cached = not isinstance(sched, (ast.List, ast.Tuple))
            self._scheduled = cached
        return cached

    def contains(self, line: int) -> bool:
        return self.span.contains(line) or any(s.contains(line) for s in self.extra_spans)

    def sets(self, key: str) -> bool:
        """Whether the DAG call may set ``key``: written in the call, or possibly in its ``**kwargs``."""
        return key in self.kwargs or self.splat

    def source_of(self, key: str) -> tuple[Source, ast.expr | None]:
        """Where a task of this DAG that does not set ``key`` itself takes it from (the DAG-level part of
        :meth:`TaskInfo.source_of`)."""
        node = self.default_args.get(key)
        if node is not None:
            return "default_args", node
        if self.default_args_dynamic:
            return "unknown", None
        node = self.kwargs.get(key)
        if node is not None:
            return "dag", node
        return "config", None


@dataclass(slots=True)
class TaskInfo:
    task_id: str | None
    operator: str  # qualified class name, or "@task", "@task.bash", ...
    line: int
    kwargs: dict[str, ast.expr]
    splat: bool
    node: ast.AST
    func: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    taskflow: bool = False
    mapped: bool = False
    dag: DagInfo | None = None
    var: str | None = None
    #: the nodes of the task's callable (from the module index); the empty defaults are shared tuples, not
    #: two new lists per task (most tasks have no callable, and a task with one gets its lists assigned)
    body: Sequence[ast.AST] = ()
    #: the calls among ``body`` (in the same order), shared by the checks that look at calls only
    calls: Sequence[ast.Call] = ()
    #: False when the file contains no SQL keyword at all (skips scanning the body for SQL)
    sql_possible: bool = True
    #: memo of the checks: the SQL texts of the task and whether it writes data
    sql_texts: list[tuple[ast.AST, str]] | None = field(default=None, init=False, repr=False)
    writes: bool | None = field(default=None, init=False, repr=False)

    short_operator: str = field(default="", init=False)
    #: a sensor class or ``@task.sensor`` (set once: the rules ask it of every task, some twice)
    is_sensor: bool = field(default=False, init=False)
    #: what findings call the task (task_id, else its callable, variable or operator) and ``dag.task``;
    #: set once the tasks are bound to their DAGs
    name: str = field(default="", init=False)
    subject: str = field(default="", init=False)

    def __post_init__(self) -> None:
        short = self.short_operator = self.operator.rsplit(".", 1)[-1] if not self.taskflow else self.operator
        self.is_sensor = short.endswith(SENSOR_SUFFIXES) or self.operator == "@task.sensor"

    def resolve(self, key: str, version: str) -> Resolved:
        """Task kwarg -> ``default_args`` -> DAG kwarg -> the target version's config default."""
        source, node = self.source_of(key)
        if source == "config":
            return Resolved("config", None, airflow_defaults(version).get(key))
        return Resolved(source, node)

    def source_of(self, key: str) -> tuple[Source, ast.expr | None]:
        """Where :meth:`resolve` takes ``key`` from, and the node ("config"/"unknown": None), without
        building a :class:`Resolved` (the per-task rules ask this for every task)."""
        # the argument maps hold AST nodes, never None: .get() is the membership test
        node = self.kwargs.get(key)
        if node is not None:
            return "task", node
        if self.splat:
            return "unknown", None
        dag = self.dag
        return dag.source_of(key) if dag is not None else ("config", None)


@dataclass
class ModuleInfo:
    path: str
    source: str
    tree: ast.Module
    imports: dict[str, str]
    #: the module's index (a plain field, not a property: the checks read it thousands of times a run)
    idx: Index
    dags: list[DagInfo] = field(default_factory=list)
    tasks: list[TaskInfo] = field(default_factory=list)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    module_assigns: dict[str, ast.expr] = field(default_factory=dict)
    dag_funcs: frozenset[ast.AST] = frozenset()
    task_by_node: dict[ast.AST, TaskInfo] = field(default_factory=dict)
    _clock: bool | None = None
    _clock_lines: list[int] | None = None
    #: every def of the module, by line
    defs_by_line: list[ast.AST] = field(default_factory=list)
    #: the first TaskFlow task (in line order) of each function name: what a call of that name refers to
    #: (set with the tasks; its keys are the module's TaskFlow function names)
    taskflow_by_name: dict[str, TaskInfo] = field(default_factory=dict)
    #: the first task (in line order) of each distinct callable, with that callable (set with the tasks)
    _task_funcs: list[tuple[TaskInfo, ast.FunctionDef | ast.AsyncFunctionDef]] = field(default_factory=list)
    #: ``(line, subject, reason)`` of DAGs or tasks built where static analysis cannot see them (a DAG
    #: factory imported from elsewhere, gusty, dag-factory, cosmos' DbtTaskGroup): the file is reported
    #: as not fully resolved instead of clean
    opaque: list[tuple[int, str, str]] = field(default_factory=list)

    def clock_inside(self, node: ast.AST) -> bool:
        """Is there a clock call (now/today/days_ago...) within ``node``'s lines? (cheap pre-check)"""
        if not self.may_use_clock:
            return False
        if self._clock_lines is None:
            self._clock_lines = sorted(c.lineno for c in self.idx.calls() if is_clock_call(c, self.imports))
        start = getattr(node, "lineno", 0)
        end = getattr(node, "end_lineno", None) or start
        return any(start <= line <= end for line in self._clock_lines)

    def parse_time(self, node: ast.AST) -> bool:
        """Does ``node`` run when the file is parsed (module level or the body of a ``@dag`` function)?"""
        owner = self.idx.owner.get(node)
        return owner is None or owner in self.dag_funcs

    def parse_time_of(self, *types: type[ast.AST]) -> list[ast.AST]:
        return [n for n in self.idx.of(*types) if self.parse_time(n)]

    @property
    def may_use_clock(self) -> bool:
        """Cheap pre-filter for the clock checks: a call that may be a clock call, and its text."""
        cached = self._clock
        if cached is None:
            # the call-name test first: a few dict lookups instead of four scans of the whole text. When
            # it fails, no call of the module is a clock call (every call is in the index), so every
            # clock check that this filter gates would find nothing anyway
            src = self.source
            cached = self._clock = may_call_clock(self.idx, self.imports) and (
                "now(" in src or "today(" in src or "days_ago" in src or "time()" in src
            )
        return cached

    @property
    def is_airflow(self) -> bool:
        return any(v == "airflow" or v.startswith("airflow.") for v in self.imports.values())

    def release(self) -> None:
        """Break the DAG <-> task reference cycles so reference counting frees the model at once
        (otherwise the cyclic GC has to find them, which costs more than the analysis of a file)."""
        for dag in self.dags:
            dag.tasks = []
        for task in self.tasks:
            task.dag = None
        self.tasks, self.dags, self.task_by_node, self.taskflow_by_name = [], [], {}, {}
        self._task_funcs = []

    def task_funcs(self) -> list[tuple[TaskInfo, ast.FunctionDef | ast.AsyncFunctionDef]]:
        """The first task of each distinct callable, with that callable."""
        return self._task_funcs

    def task_by_var(self) -> dict[str, TaskInfo]:
        return {t.var: t for t in self.tasks if t.var}


#: sort keys: C-level attribute reads instead of a Python call per item (every def has a line)
_LINENO = operator.attrgetter("lineno")
_LINE = operator.attrgetter("line")


def _last_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


#: DAG subclasses of other packages that build their tasks themselves (astronomer-cosmos from a dbt project)
DAG_SUBCLASSES = ("cosmos.DbtDag", "cosmos.airflow.dag.DbtDag")
#: task groups whose tasks are built at parse time from outside the file
GENERATED_TASK_GROUPS = ("cosmos.DbtTaskGroup", "cosmos.airflow.task_group.DbtTaskGroup")
DAG_CTOR_NAMES = frozenset({"DAG", "DbtDag"})


def _is_dag_ctor(call: ast.Call, imports: dict[str, str]) -> bool:
    last = _last_name(call.func)
    if last not in DAG_CTOR_NAMES:
        return False
    name = qualify(dotted(call.func), imports)
    if last == "DbtDag":
        return name in DAG_SUBCLASSES
    return (name.endswith(".DAG") and name.startswith("airflow")) or name == "DAG"


def _is_dag_decorator(dec: ast.expr, imports: dict[str, str]) -> bool:
    # an attribute chain keeps its last name through qualify(): "x.y.dag" is the only shape that can
    # end with ".dag", so the common `@task.bash(...)` is ruled out without building the dotted name
    callee = dec
    while isinstance(callee, ast.Call):
        callee = callee.func
    if isinstance(callee, ast.Attribute) and callee.attr != "dag":
        return False
    name = qualify(dotted(dec), imports)
    return name.startswith("airflow") and name.endswith(".dag")


def task_decorator_kind(dec: ast.expr, imports: dict[str, str]) -> str | None:
    """``@task`` -> "@task", ``@task.bash(...)`` -> "@task.bash", ``@setup`` -> "@setup"."""
    return _task_kind_of(qualify(dotted(dec), imports))


@functools.lru_cache(maxsize=1024)
def _task_kind_of(name: str) -> str | None:
    # a pure function of the qualified decorator name; DAG files repeat a handful of them
    if not name.startswith("airflow"):
        return None
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part == "task" and i > 0 and parts[i - 1] in {"sdk", "decorators"}:
            rest = parts[i + 1 :]
            return "@task" + ("." + ".".join(rest) if rest else "")
    if parts[-1] in {"setup", "teardown"}:
        return "@" + parts[-1]
    return None


@functools.lru_cache(maxsize=1024)
def _is_operator_name(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return (last.endswith(("Operator", "Sensor", "SensorAsync")) and last[:1].isupper()) and last not in {
        "BaseOperator",
        "BaseSensorOperator",
    }


def _dag_id(
    call: ast.Call | None, kwargs: dict[str, ast.expr], assigns: dict[str, ast.expr] | None = None
) -> str | None:
    node = kwargs.get("dag_id")
    if node is None and call is not None and call.args:
        node = call.args[0]
    if isinstance(node, ast.Name) and assigns and node.id in assigns:
        node = assigns[node.id]  # DAG_ID = "orders" at module level
    return const_str(node)


def resolve_dict(
    node: ast.expr | None, assigns: dict[str, ast.expr], depth: int = 0
) -> tuple[dict[str, ast.expr], bool]:
    """Keys of a dict literal / ``dict(...)`` / a module-level name bound to one; (keys, dynamic?)."""
    if node is None or depth > 5:
        return {}, node is not None
    if isinstance(node, ast.Name) and node.id in assigns:
        return resolve_dict(assigns[node.id], assigns, depth + 1)
    if isinstance(node, ast.Dict):
        out: dict[str, ast.expr] = {}
        dynamic = False
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # {**base, ...}
                sub, dyn = resolve_dict(v, assigns, depth + 1)
                out.update(sub)
                dynamic = dynamic or dyn
            elif (key := const_str(k)) is not None:
                out[key] = v
            else:
                dynamic = True
        return out, dynamic
    if isinstance(node, ast.Call) and dotted(node.func) == "dict" and not node.args:
        kw, splat = kwargs_of(node)
        return kw, splat
    return {}, True


def build_module(
    path: str,
    source: str,
    tree: ast.Module,
    index: Index | None = None,
    imports: dict[str, str] | None = None,
) -> ModuleInfo:
    idx = index if index is not None else Index(tree)
    imports = imports if imports is not None else import_map(tree, idx)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    module_assigns: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, FUNC_DEFS):
            functions[stmt.name] = stmt
        elif (
            isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        ):
            module_assigns[stmt.targets[0].id] = stmt.value
    # nested function defs (inside @dag bodies / with blocks) are callables too
    defs_by_line = sorted(idx.of(ast.FunctionDef, ast.AsyncFunctionDef), key=_LINENO)
    for node in defs_by_line:
        if isinstance(node, FUNC_DEFS):
            functions.setdefault(node.name, node)
    mod = ModuleInfo(
        path=path,
        source=source,
        tree=tree,
        imports=imports,
        idx=idx,
        functions=functions,
        module_assigns=module_assigns,
        defs_by_line=defs_by_line,
    )

    _collect_dags(mod)
    mod.dag_funcs = frozenset(d.func for d in mod.dags if d.func is not None)
    _collect_tasks(mod)
    _collect_edges(mod)
    _collect_opaque(mod)
    return mod


#: callee names (last part, lower case) that build DAGs from configuration or other modules
_FACTORY_WORDS = ("dag", "workflow", "pipeline")
_DAG_CALL_NAMES = frozenset({"DAG", "dag", "DbtDag", "DbtTaskGroup"})
_FACTORY_WORD = re.compile(r"dag|workflow|pipeline")
_GENERATOR_MODULES = ("gusty", "dagfactory", "dag_factory", "airflow_dag_factory", "dagger", "boundary_layer")


def _collect_opaque(mod: ModuleInfo) -> None:
    """Record what builds DAGs or tasks out of the reviewer's sight (see :attr:`ModuleInfo.opaque`)."""
    imports = mod.imports
    for call in mod.idx.calls_named("DbtTaskGroup", "DbtDag"):
        name = qualify(dotted(call.func), imports)
        if name.startswith("cosmos"):
            mod.opaque.append(
                (
                    call.lineno,
                    _last_name(call.func),
                    f"{_last_name(call.func)} builds its tasks from a dbt project at parse time: "
                    "they are not reviewed statically (run with --runtime)",
                )
            )
    if mod.dags:
        return  # the file's DAGs were found: a factory call next to them is rare and not searched for
    local_factories: set[str] | None = None
    # module-level calls only (the index leaves their owner unset); a name test first: most calls are
    # operators and helpers, not factories
    owner = mod.idx.owner
    imported = "\n".join(imports.values())
    generated = (
        [local for local, qual in imports.items() if qual.partition(".")[0] in _GENERATOR_MODULES]
        if any(g in imported for g in _GENERATOR_MODULES)
        else []
    )
    # the call names that may be factories: one scan over all of them but DAG/dag (most files have none)
    joined = "\n".join(n for n in mod.idx.call_by_name if n not in _DAG_CALL_NAMES)
    lowered = joined.lower()
    names: list[str] = []
    for m in _FACTORY_WORD.finditer(lowered) if any(w in lowered for w in _FACTORY_WORDS) else ():
        start, end = joined.rfind("\n", 0, m.start()) + 1, joined.find("\n", m.end())
        name = joined[start:] if end < 0 else joined[start:end]
        if not names or names[-1] != name:
            names.append(name)
    for name in [*names, *generated]:
        if name in _DAG_CALL_NAMES:
            continue  # DAG(...) and @dag(...): the DAGs themselves
        for node in mod.idx.call_by_name.get(name, ()):
            if owner.get(node) is not None:
                continue
            callee = _last_name(node.func)
            qual = qualify(dotted(node.func), imports)
            if not callee or _is_dag_ctor(node, imports) or qual.startswith("airflow"):
                continue
            if local_factories is None:  # functions of this file that build a DAG themselves
                local_factories = {
                    n
                    for n, fn in mod.functions.items()
                    if any(
                        isinstance(c, ast.Call) and _is_dag_ctor(c, imports) for c in mod.idx.func_nodes(fn)
                    )
                }
            if callee in local_factories:
                continue
            from_generator = qual.split(".")[0] in _GENERATOR_MODULES
            named_like = any(w in callee.lower() for w in _FACTORY_WORDS) and callee != "DAG"
            if from_generator or named_like:
                mod.opaque.append(
                    (
                        node.lineno,
                        callee,
                        f"DAGs built by '{qual}(...)' (a DAG factory defined elsewhere) are not "
                        "reviewed statically: their tasks and arguments are unknown (run with --runtime)",
                    )
                )
    if (
        not mod.dags
        and not mod.tasks
        and any(
            isinstance(n, ast.Subscript) and dotted(n.value) == "globals"
            for stmt in mod.tree.body
            if isinstance(stmt, ast.Assign)
            for n in stmt.targets
        )
        and not mod.opaque
    ):
        mod.opaque.append(
            (
                1,
                "globals()",
                "DAGs are registered through globals()[...] from code the reviewer "
                "cannot follow: not reviewed statically (run with --runtime)",
            )
        )


def _collect_dags(mod: ModuleInfo) -> None:
    imports = mod.imports
    seen_calls: set[ast.AST] = set()
    by_var: dict[str, DagInfo] = {}
    idx = mod.idx
    for node in idx.of(ast.With, ast.AsyncWith):
        if isinstance(node, WITHS):
            for item in node.items:
                ctx = item.context_expr
                if isinstance(ctx, ast.Call) and _is_dag_ctor(ctx, imports):
                    kw, splat = kwargs_of(ctx)
                    var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
                    dag = DagInfo(
                        _dag_id(ctx, kw, mod.module_assigns),
                        ctx.lineno,
                        "with",
                        ctx,
                        kw,
                        span(node),
                        var=var,
                        splat=splat,
                    )
                    mod.dags.append(dag)
                    seen_calls.add(ctx)
                    if var:
                        by_var[var] = dag
    for node in mod.defs_by_line:
        if isinstance(node, FUNC_DEFS):
            for dec in node.decorator_list:
                if _is_dag_decorator(dec, imports):
                    call = dec if isinstance(dec, ast.Call) else None
                    kw, splat = kwargs_of(call) if call else ({}, False)
                    dag_id = _dag_id(call, kw, mod.module_assigns) or node.name
                    fn = node if isinstance(node, ast.FunctionDef) else None
                    mod.dags.append(
                        DagInfo(dag_id, node.lineno, "decorator", call, kw, span(node), func=fn, splat=splat)
                    )
                    if call is not None:
                        seen_calls.add(call)
    # DAG(...) and astronomer-cosmos' DbtDag(...) construct a DAG alike
    for node in idx.calls_named("DAG", "DbtDag"):
        if node not in seen_calls and _is_dag_ctor(node, imports):
            kw, splat = kwargs_of(node)
            mod.dags.append(
                DagInfo(
                    _dag_id(node, kw, mod.module_assigns),
                    node.lineno,
                    "ctor",
                    node,
                    kw,
                    Span(node.lineno, node.lineno),
                    splat=splat,
                )
            )
    # `dag = DAG(...)` followed by `with dag:` blocks, and ctor dags bound to a variable: only a
    # constructor call whose parent is an assignment can be one (the index records call parents)
    parent = idx.parent
    assigned = any(
        d.call is not None and parent.get(d.call).__class__ is ast.Assign
        for d in mod.dags
        if d.style == "ctor"
    )
    for node in idx.of(ast.Assign) if assigned else []:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _is_dag_ctor(node.value, imports)
        ):
            for tgt in node.targets:
                if isinstance(tgt, ast.Name):
                    for dag in mod.dags:
                        if dag.call is node.value:
                            dag.var = tgt.id
                            by_var[tgt.id] = dag
    for node in idx.of(ast.With) if by_var else []:
        if isinstance(node, ast.With):
            for item in node.items:
                if isinstance(item.context_expr, ast.Name) and item.context_expr.id in by_var:
                    by_var[item.context_expr.id].extra_spans += (span(node),)
    mod.dags.sort(key=_LINE)
    unnamed = 0
    for dag in mod.dags:
        owner = idx.owner.get(dag.call) if dag.call is not None else None
        while owner is not None and not isinstance(owner, FUNC_DEFS):
            owner = idx.owner.get(owner)
        if isinstance(owner, FUNC_DEFS) and dag.style != "decorator":
            dag.factory = owner
        if dag.dag_id is None and dag.func is None:
            # no literal id: named after its factory or variable, else its position among such DAGs
            unnamed += 1
            dag.fallback_name = (
                f"{owner.name}()" if isinstance(owner, FUNC_DEFS) else dag.var or f"<dag {unnamed}>"
            )
        dag.name = dag.dag_id or (dag.func.name if dag.func else dag.fallback_name or dag.var or "<dag>")
        da = dag.kwargs.get("default_args")
        if da is not None:
            local = _local_names(dag.factory) if dag.factory is not None else set()
            if isinstance(da, ast.Name) and da.id in local:
                dag.default_args, dag.default_args_dynamic = {}, True  # a parameter of the factory
            else:
                dag.default_args, dag.default_args_dynamic = resolve_dict(da, mod.module_assigns)
        elif dag.splat:
            dag.default_args_dynamic = True


def _local_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The parameters of ``fn`` and the names it assigns: they shadow module-level names."""
    a = fn.args
    names = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    names |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _innermost_dag(mod: ModuleInfo, line: int) -> DagInfo | None:
    best: DagInfo | None = None
    for dag in mod.dags:
        sp = dag.span
        inside = sp.start <= line <= sp.end or (
            bool(dag.extra_spans) and any(s.start <= line <= s.end for s in dag.extra_spans)
        )
        if inside and (best is None or sp.start >= best.span.start):
            best = dag
    return best


def _collect_tasks(mod: ModuleInfo) -> None:
    imports = mod.imports
    dag_by_var = {d.var: d for d in mod.dags if d.var}
    idx = mod.idx
    parent = idx.parent
    taskflow_defs: dict[str, TaskInfo] = {}
    for node in mod.defs_by_line:
        if isinstance(node, FUNC_DEFS) and node.decorator_list:
            for dec in node.decorator_list:
                kind = task_decorator_kind(dec, imports)
                if kind is None:
                    continue
                kw, splat = kwargs_of(dec) if isinstance(dec, ast.Call) else ({}, False)
                if kind == "@task" and isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute):
                    kind = "@task." + dec.func.attr if dec.func.attr != "task" else kind
                task = TaskInfo(
                    const_str(kw.get("task_id")) or node.name,
                    kind,
                    node.lineno,
                    kw,
                    splat,
                    node,
                    func=node,
                    taskflow=True,
                )
                mod.tasks.append(task)
                taskflow_defs[node.name] = task
                break
    operator_calls = idx.calls_named(
        *(n for n in idx.call_by_name if n == "partial" or n.endswith(("Operator", "Sensor", "SensorAsync")))
    )
    for node in operator_calls:
        is_partial = _last_name(node.func) == "partial"
        qual = qualify(dotted(node.func), imports)
        if is_partial:
            qual = qualify(dotted(node.func.value), imports) if isinstance(node.func, ast.Attribute) else qual
        if not _is_operator_name(qual):
            continue
        kw, splat = kwargs_of(node)
        task = TaskInfo(const_str(kw.get("task_id")), qual, node.lineno, kw, splat, node, mapped=is_partial)
        callable_node = kw.get("python_callable")
        if isinstance(callable_node, ast.Name) and callable_node.id in mod.functions:
            task.func = mod.functions[callable_node.id]
        p = parent.get(node)
        if isinstance(p, ast.Attribute) and p.attr in {"expand", "expand_kwargs"}:
            task.mapped = True
        while p is not None and isinstance(p, ATTR_OR_CALL):
            p = parent.get(p)
        if isinstance(p, ast.Assign) and len(p.targets) == 1 and isinstance(p.targets[0], ast.Name):
            task.var = p.targets[0].id
        dag_kw = kw.get("dag")
        if isinstance(dag_kw, ast.Name) and dag_kw.id in dag_by_var:
            task.dag = dag_by_var[dag_kw.id]
        else:
            task.dag = _innermost_dag(mod, node.lineno)
        mod.tasks.append(task)
        mod.task_by_node[node] = task
    # TaskFlow: bind by the def's position, else by the first call site; note mapping and result vars
    taskflow_calls = (
        idx.calls_named(*taskflow_defs, "expand", "expand_kwargs", "partial", "override")
        if taskflow_defs
        else []
    )
    for node in taskflow_calls:
        base = node.func
        mapped = False
        if isinstance(base, ast.Name) and base.id not in taskflow_defs:
            continue
        while isinstance(base, ATTR_OR_CALL):
            if isinstance(base, ast.Attribute):
                mapped = mapped or base.attr in {"expand", "expand_kwargs", "partial"}
                base = base.value
            else:
                base = base.func
        if isinstance(base, ast.Name) and base.id in taskflow_defs:
            task = taskflow_defs[base.id]
            task.mapped = task.mapped or mapped
            if task.dag is None:
                task.dag = _innermost_dag(mod, task.line) or _innermost_dag(mod, node.lineno)
            p = parent.get(node)
            if isinstance(p, ast.Assign) and len(p.targets) == 1 and isinstance(p.targets[0], ast.Name):
                task.var = task.var or p.targets[0].id
    for task in taskflow_defs.values():
        if task.dag is None:
            task.dag = _innermost_dag(mod, task.line)
    _bind_factory_tasks(mod)
    mod.tasks.sort(key=_LINE)
    lines: list[str] | None = None
    first_task: dict[ast.AST, TaskInfo] = {}
    for task in mod.tasks:
        fn = task.func
        task.name = task.task_id or (fn.name if fn else task.var or f"<{task.short_operator}>")
        task.subject = f"{task.dag.name if task.dag else '?'}.{task.name}"
        if fn is None:
            task.sql_possible = False
        else:
            if task.taskflow:
                mod.taskflow_by_name.setdefault(fn.name, task)
            first = first_task.get(fn)
            if first is not None:
                # another task of the same callable: the same nodes, calls and SQL test
                task.body, task.calls, task.sql_possible = first.body, first.calls, first.sql_possible
            else:
                first_task[fn] = task
                mod._task_funcs.append((task, fn))
                task.body = idx.func_nodes(fn)
                task.calls = [n for n in task.body if isinstance(n, ast.Call)]
                # only scan a callable's body for SQL strings when its own lines mention SQL: the text of
                # those lines only, not the whole file (the words hold no newline, so joining the lines
                # adds no match; lowering them alone gives the same text as lowering the whole file)
                if lines is None:
                    lines = mod.source.split("\n")
                task.sql_possible = has_any(
                    "\n".join(lines[fn.lineno - 1 : fn.end_lineno or fn.lineno]).lower(), SQL_WORDS_LOWER
                )
        if task.dag is not None:
            task.dag.tasks.append(task)


def _bind_factory_tasks(mod: ModuleInfo) -> None:
    """Tasks created in a helper function belong to the DAG in whose context the helper is called."""
    unbound = [t for t in mod.tasks if t.dag is None]
    if not unbound or not mod.dags:
        return
    for fn in mod.functions.values():
        start, end = fn.lineno, fn.end_lineno or fn.lineno
        inside = [t for t in unbound if start <= t.line <= end and t.dag is None]
        if not inside:
            continue
        # the lines where the helper is called by its plain name (only for helpers that create tasks)
        calls = sorted(c.lineno for c in mod.idx.calls_named(fn.name) if isinstance(c.func, ast.Name))
        dag = next((d for line in calls if (d := _innermost_dag(mod, line)) is not None), None)
        for t in inside:
            t.dag = dag


def _task_refs(node: ast.AST, mod: ModuleInfo, var_tasks: dict[str, TaskInfo]) -> list[TaskInfo]:
    if isinstance(node, LIST_TUPLE_SET):
        out: list[TaskInfo] = []
        for elt in node.elts:
            out.extend(_task_refs(elt, mod, var_tasks))
        return out
    if isinstance(node, ast.Name) and node.id in var_tasks:
        return [var_tasks[node.id]]
    if isinstance(node, ast.Call):
        hit = mod.task_by_node.get(node)
        if hit is not None:
            return [hit]
        base = node.func
        while isinstance(base, ATTR_OR_CALL):
            base = base.value if isinstance(base, ast.Attribute) else base.func
        if isinstance(base, ast.Name):
            hit = mod.taskflow_by_name.get(base.id)
            if hit is not None:
                return [hit]
    if isinstance(node, ast.BinOp) and isinstance(node.op, SHIFTS):
        return _task_refs(node.right, mod, var_tasks)  # `a >> b` and `a << b` both evaluate to b
    return []


_EDGE_CALLS = frozenset({"chain", "set_downstream", "set_upstream"})


def _calls_taskflow(node: ast.Call, names: dict[str, TaskInfo]) -> bool:
    if not names:
        return False
    base: ast.AST = node.func
    while isinstance(base, ATTR_OR_CALL):
        base = base.value if isinstance(base, ast.Attribute) else base.func
    return isinstance(base, ast.Name) and base.id in names


def _collect_edges(mod: ModuleInfo) -> None:
    if not mod.tasks:
        return
    var_tasks = mod.task_by_var()

    def add(ups: list[TaskInfo], downs: list[TaskInfo]) -> None:
        for u in ups:
            for d in downs:
                dag = u.dag or d.dag
                if dag is not None:
                    dag.edges.append((u.name, d.name))

    taskflow_names = mod.taskflow_by_name
    edge_calls = (
        mod.idx.calls_named(*_EDGE_CALLS, *taskflow_names, "expand", "expand_kwargs", "override")
        if taskflow_names
        else mod.idx.calls_named(*_EDGE_CALLS)
    )
    for node in [*mod.idx.of(ast.BinOp), *edge_calls]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, SHIFTS):
            left = node.left
            # for a chain a >> b >> c the left operand is (a >> b); its right-most element links to the right
            lhs = _task_refs(left, mod, var_tasks)
            rhs = _task_refs(node.right, mod, var_tasks)
            if isinstance(node.op, ast.RShift):
                add(lhs, rhs)
            else:
                add(rhs, lhs)
        elif isinstance(node, ast.Call):
            name = _last_name(node.func)
            if name not in _EDGE_CALLS and not _calls_taskflow(node, taskflow_names):
                continue
            callee = _task_refs(node, mod, var_tasks) if taskflow_names else []
            if callee and callee[0].taskflow:
                # TaskFlow data dependencies: load(transform(extract()))
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    add([t for t in _task_refs(arg, mod, var_tasks) if t is not callee[0]], callee)
            if name == "chain":
                groups = [_task_refs(a, mod, var_tasks) for a in node.args]
                for a, b in itertools.pairwise(groups):
                    add(a, b)
            elif isinstance(node.func, ast.Attribute) and node.func.attr in {
                "set_downstream",
                "set_upstream",
            }:
                src = _task_refs(node.func.value, mod, var_tasks)
                dst = [t for a in node.args for t in _task_refs(a, mod, var_tasks)]
                if node.func.attr == "set_downstream":
                    add(src, dst)
                else:
                    add(dst, src)
