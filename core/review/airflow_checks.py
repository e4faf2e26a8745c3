"""The Airflow rules, evaluated on the static model of one DAG file."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Iterator

from dataeng_agents.core.review.airflow_model import DagInfo, ModuleInfo, Resolved, TaskInfo
from dataeng_agents.core.review.context import CheckContext
from dataeng_agents.core.review.cron import is_frequent, validate_schedule_string
from dataeng_agents.core.review.pyast import (
    IMPORTS,
    LIST_TUPLE,
    LIST_TUPLE_SET,
    SQL_WORDS_LOWER,
    TRY_OR_WITH,
    Index,
    calls_under,
    const_str,
    contains_clock_call,
    dotted,
    has_any,
    qualify,
    string_nodes,
    string_parts,
    walk_no_defs,
)
from dataeng_agents.core.security import is_secret_name, literal_secret, name_words

SQL_WORDS = re.compile(
    r"^\s*(select|insert|update|delete|merge|create|with|truncate|copy|drop|alter|replace)\b", re.I
)
SQL_SHAPE = re.compile(r"\b(select|insert|update|delete|merge)\b[\s\S]*\b(from|into|set|where|using)\b", re.I)
RUN_KEYED = re.compile(
    r"\{\{[^}]*\b(ds|ds_nodash|ts|ts_nodash|logical_date|execution_date|data_interval_start|"
    r"data_interval_end|prev_ds|next_ds|macros|params|run_id|dag_run)\b",
    re.I,
)
INSERT_RE = re.compile(r"\binsert\s+into\b", re.I)
FROM_RE = re.compile(r"\bfrom\b", re.I)
SELECT_STAR_RE = re.compile(r"\bselect\s+(distinct\s+)?\*", re.I)
#: SQL that makes an INSERT safe to rerun: an upsert, or emptying the target first (DELETE FROM the
#: partition, TRUNCATE, DROP TABLE and CREATE: a full refresh). ``TRUNCATE(x, 2)`` is MySQL's rounding
IDEMPOTENT_RE = re.compile(
    r"\bon\s+conflict\b|\bmerge\b|\boverwrite\b|\bdelete\s+from\b|\bon\s+duplicate\s+key\b|"
    r"\bupsert\b|\breplace\s+into\b|\bwhere\s+not\s+exists\b|\btruncate\s+(?:table\s+)?[\w\[\"`{]|"
    r"\bdrop\s+table\b",
    re.I,
)
WRITE_SQL_RE = re.compile(
    r"\b(insert\s+(into|overwrite)|merge\s+into|create\s+(or\s+replace\s+)?table|copy\s+into|"
    r"update\s+\w+\s+set|delete\s+from)\b",
    re.I,
)
FULL_REBUILD_RE = re.compile(
    r"\bcreate\s+or\s+replace\s+table\b[\s\S]*\bas\b|\btruncate\s+(table\s+)?\w+", re.I
)
SHELL_PARAMS = re.compile(r"\{\{[^}]*\b(dag_run\.conf|params)\b", re.I)
CHECK_OPERATOR = re.compile(r"(Check|GreatExpectations|GX|Soda|Expectation|Validat)", re.I)
CHECK_COMMAND = re.compile(r"\bdbt\s+(test|build)\b|\bsoda\s+scan\b|great_expectations|\bgx\b", re.I)
CHECK_TASK_ID = re.compile(r"(check|validate|validation|quality|dq_|_dq|test_|expect)", re.I)
TRANSFER_OPERATOR = re.compile(r"[a-z0-9]To[A-Z][A-Za-z]*Operator$")
WRITE_CALLS = {
    "to_sql",
    "insert_rows",
    "bulk_load",
    "load_file",
    "load_string",
    "load_bytes",
    "upload_file",
    "put_object",
    "upload",
    "copy_expert",
    "bulk_insert_rows",
    "write_pandas",
    "load_table_from_dataframe",
}
READ_CALLS = {
    "get_records",
    "get_pandas_df",
    "get_df",
    "read_sql",
    "read_sql_query",
    "read_csv",
    "read_parquet",
    "read_json",
    "get_object",
    "download_file",
    "download",
    "get_first",
    "fetchall",
    "fetch",
    "urlopen",
}
XCOM_HEAVY_CALLS = {
    "read_csv",
    "read_parquet",
    "read_json",
    "read_sql",
    "read_sql_query",
    "read_excel",
    "DataFrame",
    "to_json",
    "to_dict",
    "read_text",
    "read_bytes",
    "get_pandas_df",
    "get_df",
    "to_pandas",
}
PARSE_TIME_IO_METHODS = {
    "get_records",
    "get_first",
    "get_pandas_df",
    "get_df",
    "get_conn",
    "get_connection",
    "get_uri",
    "run_query",
    "list_keys",
    "list_objects",
    "list_objects_v2",
    "list_blobs",
    "get_sqlalchemy_engine",
    "urlopen",
}


def _last(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


IO_ROOTS = frozenset(
    {
        "requests",
        "httpx",
        "urllib",
        "urlopen",
        "boto3",
        "psycopg2",
        "psycopg",
        "sqlalchemy",
        "snowflake",
        "pymysql",
        "google",
        "redis",
        "create_engine",
        "connect",
    }
)
#: the HTTP client calls (requests, httpx, a session or client object)
HTTP_CALLS = frozenset({"get", "post", "put", "patch", "delete", "head", "request"})
PARSE_TIME_CANDIDATE_NAMES = (
    PARSE_TIME_IO_METHODS
    | HTTP_CALLS
    | {
        "client",
        "resource",
        "connect",
        "create_engine",
        "urlopen",
        "Redis",
        "Client",
        "list_buckets",
        "query",
    }
)
PARSE_TIME_IO_MODULES = (
    "requests.",
    "httpx.",
    "urllib.request.",
    "boto3.",
    "psycopg2.connect",
    "psycopg.connect",
    "sqlalchemy.create_engine",
    "snowflake.connector.connect",
    "pymysql.connect",
    "google.cloud.",
    "redis.",
)
_QUERY_RESULT_CALLS = frozenset(
    {
        "get_records",
        "fetchall",
        "get_pandas_df",
        "get_df",
        "read_sql",
        "read_sql_query",
        "fetch_all",
        "to_dict",
        "to_json",
    }
)
CONN_ATTRS = {"password", "login", "extra", "extra_dejson", "get_password", "get_uri", "get_extra"}
LOOP_SAFE_CALLS = {
    "range",
    "enumerate",
    "zip",
    "sorted",
    "list",
    "items",
    "keys",
    "values",
    "reversed",
    "tuple",
    "set",
    "dict",
    "len",
}
PRESETS_FREQUENT = {"@hourly", "@continuous"}


# ------------------------------------------------------------------ helpers
def _sql_texts(task: TaskInfo) -> list[tuple[ast.AST, str]]:
    cached = task.sql_texts
    if cached is not None:
        return cached
    out: list[tuple[ast.AST, str]] = []
    task.sql_texts = out
    sql = task.kwargs.get("sql")
    if sql is not None:
        items = sql.elts if isinstance(sql, LIST_TUPLE) else [sql]
        for it in items:
            text = string_parts(it)
            if text is not None and not text.strip().endswith(".sql"):
                out.append((it, text))
    for node in string_nodes(task.func) if task.sql_possible and task.func is not None else ():
        text = string_parts(node)
        if text and SQL_WORDS.match(text) and SQL_SHAPE.search(text):
            out.append((node, text))
    return out


def _bash_texts(task: TaskInfo) -> list[tuple[ast.AST, str]]:
    out: list[tuple[ast.AST, str]] = []
    cmd = task.kwargs.get("bash_command")
    if cmd is not None and (text := string_parts(cmd)) is not None:
        out.append((cmd, text))
    if task.operator.startswith("@task.bash"):
        for node in task.body:
            if isinstance(node, ast.Return) and node.value is not None and (text := string_parts(node.value)):
                out.append((node.value, text))
    return out


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_value(res: Resolved, *values: object) -> bool:
    return res.node is not None and isinstance(res.node, ast.Constant) and res.node.value in values


def _trigger_rule(task: TaskInfo) -> str | None:
    """The task's trigger rule, lower case, from its own arguments or its DAG's ``default_args``."""
    _, node = task.source_of("trigger_rule")
    if node is None:
        return None
    s = const_str(node)
    if s is not None:
        return s.lower()
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    return None


def _writes(task: TaskInfo) -> bool:
    cached = task.writes
    if cached is None:
        cached = task.writes = _compute_writes(task)
    return cached


def _compute_writes(task: TaskInfo) -> bool:
    # plain loops: most tasks have no SQL and few calls, where a generator costs more than the test
    for _, text in _sql_texts(task):
        if WRITE_SQL_RE.search(text):
            return True
    if _transfer_operator(task.short_operator):
        return True
    for node in task.calls:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITE_CALLS:
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _transfer_operator(short_operator: str) -> bool:
    return TRANSFER_OPERATOR.search(short_operator) is not None


@functools.lru_cache(maxsize=1024)
def _check_operator(short_operator: str) -> bool:
    return CHECK_OPERATOR.search(short_operator) is not None


def _is_check(task: TaskInfo) -> bool:
    if _check_operator(task.short_operator):
        return True
    if any(CHECK_COMMAND.search(t) for _, t in _bash_texts(task)):
        return True
    return bool(CHECK_TASK_ID.search(task.name))


_NOOP_OPERATORS = frozenset({"EmptyOperator", "DummyOperator"})


def _is_noop(task: TaskInfo) -> bool:
    return task.short_operator in _NOOP_OPERATORS


def _is_scheduled(ctx: CheckContext, dag: DagInfo) -> bool:
    """Whether the DAG runs on a schedule on the target version: ``schedule=None`` or an asset list is
    not; no schedule argument at all is daily on Airflow 2 and never scheduled on Airflow 3."""
    given = "schedule" in dag.kwargs or "schedule_interval" in dag.kwargs or "timetable" in dag.kwargs
    return dag.scheduled and (given or dag.splat or ctx.airflow_major < 3)


def _per_dag(
    ctx: CheckContext, mod: ModuleInfo, rule_id: str, key: str, bad_values: tuple[object, ...], what: str
) -> None:
    """Report an attribute per DAG when every task lacks it, else per task; unknown values are recorded.

    A task lacks it when the value comes from the config default or is a literal among ``bad_values``."""
    for dag in mod.dags:
        tasks = [t for t in dag.tasks if t.short_operator not in _NOOP_OPERATORS]
        if not tasks:
            continue
        offenders: list[TaskInfo] = []
        for t in tasks:
            source, node = t.source_of(key)
            if source == "unknown":
                ctx.unknown(
                    rule_id, t.line, t.subject, key, "task arguments or default_args are built dynamically"
                )
            elif source == "config" or (isinstance(node, ast.Constant) and node.value in bad_values):
                offenders.append(t)
        if offenders and len(offenders) == len(tasks) and len(tasks) > 1:
            ctx.emit(rule_id, dag.line, dag.name, f"every task of DAG '{dag.name}' {what}")
        else:
            for t in offenders:
                ctx.emit(rule_id, t.line, t.subject, f"task '{t.name}' {what}")
    if mod.dags:
        return  # tasks outside any DAG are only reported here in a file without DAGs
    for t in mod.tasks:
        if t.dag is None and not _is_noop(t):
            res = t.resolve(key, ctx.airflow_version)
            if not res.unknown and (res.source == "config" or _is_value(res, *bad_values)):
                ctx.emit(rule_id, t.line, t.name, f"task '{t.name}' {what}")


def _may_call(idx: Index, names: set[str] | frozenset[str]) -> bool:
    """False when no call of the module ends in one of ``names`` (undotted): a rule that needs such a
    call is skipped without looking at each task. The index files a call under the callee's last name,
    or under "" when the callee is not a name or an attribute (``f()()``, whose dotted name may still
    end in one of them)."""
    calls_by_name = idx.call_by_name
    return "" in calls_by_name or not names.isdisjoint(calls_by_name)


def _task_funcs(mod: ModuleInfo) -> Iterable[tuple[TaskInfo, ast.FunctionDef | ast.AsyncFunctionDef]]:
    return mod.task_funcs()


# ------------------------------------------------------------------ reliability
def check_reliability(ctx: CheckContext, mod: ModuleInfo) -> None:
    _per_dag(ctx, mod, "REL001", "retries", (0, None), "has no retries (effective retries = 0)")
    _per_dag(ctx, mod, "REL002", "execution_timeout", (None,), "has no execution_timeout")
    for dag in mod.dags:
        if _is_scheduled(ctx, dag) and not dag.sets("dagrun_timeout") and ctx.enabled("REL003"):
            ctx.emit("REL003", dag.line, dag.name, f"scheduled DAG '{dag.name}' has no dagrun_timeout")
    for t in mod.tasks:
        if t.is_sensor:
            res = t.resolve("timeout", ctx.airflow_version)
            if res.unknown:
                ctx.unknown("REL004", t.line, t.subject, "timeout", "default_args built dynamically")
            elif res.source == "config":
                ctx.emit(
                    "REL004",
                    t.line,
                    t.subject,
                    f"sensor '{t.name}' has no timeout: it waits up to 7 days (default 604800 s)",
                )
    _check_blocking_past(ctx, mod)
    _check_template_clock(ctx, mod)
    handlers_in_file = bool(mod.idx.by_type.get(ast.ExceptHandler))
    for t, _fn in _task_funcs(mod):
        clock = contains_clock_call(t.calls, mod.imports) if mod.may_use_clock else None
        if clock is not None:
            # an error when the clock computes a date or window (arithmetic, .date(), strftime ...); a
            # warning when it only stamps or times something (begin = now(); print(now()))
            ctx.emit(
                "REL005",
                clock,
                t.subject,
                f"'{dotted(clock.func)}()' inside task '{t.name}': results depend on when the task runs",
                demoted=not _window_shaped(mod, clock),
            )
        for node in t.body if handlers_in_file else ():
            if isinstance(node, ast.ExceptHandler) and _swallows(node):
                ctx.emit(
                    "REL008",
                    node,
                    t.subject,
                    f"task '{t.name}' catches {'everything' if node.type is None else dotted(node.type)} "
                    "without re-raising",
                )
    for t in mod.tasks:
        texts = _sql_texts(t)
        if not texts:
            continue  # most tasks: no generator for the test below
        # delete-then-insert may be split over several statements of the same task
        idempotent = any(IDEMPOTENT_RE.search(sql) for _, sql in texts)
        for node, sql in texts:
            if INSERT_RE.search(sql) and not idempotent:
                ctx.emit(
                    "REL006",
                    node,
                    t.subject,
                    f"task '{t.name}' runs a plain INSERT INTO: reruns duplicate rows",
                )
            if (
                t.dag is not None
                and _is_scheduled(ctx, t.dag)
                and "sql" in t.kwargs
                and FROM_RE.search(sql)
                and not RUN_KEYED.search(sql)
                and _in_kwarg(t, node)
                and "parameters" not in t.kwargs
            ):
                ctx.emit(
                    "REL007",
                    node,
                    t.subject,
                    f"scheduled task '{t.name}' reads without a run-keyed filter ({{{{ ds }}}}, data_interval_*)",
                )
    _check_local_handoff(ctx, mod)
    for dag in mod.dags:
        if "trigger_rule" not in dag.default_args and not any("trigger_rule" in t.kwargs for t in dag.tasks):
            continue  # every task runs with ALL_SUCCESS
        ups = {u for u, _ in dag.edges}
        rules = {t.name: _trigger_rule(t) for t in dag.tasks}
        if "one_failed" in rules.values():
            continue
        for t in dag.tasks:
            if rules[t.name] == "all_done" and t.name not in ups:
                ctx.emit(
                    "REL010",
                    t.line,
                    t.subject,
                    f"leaf task '{t.name}' runs with ALL_DONE and no ONE_FAILED watcher exists: "
                    "the DAG run succeeds even when a task failed",
                )
    for t, fn in _task_funcs(mod) if _may_call(mod.idx, WRITE_CALLS) else ():
        calls = {n.func.attr if isinstance(n.func, ast.Attribute) else dotted(n.func) for n in t.calls}
        reads = calls & READ_CALLS or {c for c in calls if c.startswith(("requests.", "httpx."))}
        writes = calls & WRITE_CALLS
        if reads and writes:
            ctx.emit(
                "REL011",
                fn,
                t.subject,
                f"task '{t.name}' both reads ({', '.join(sorted(reads))}) and writes ({', '.join(sorted(writes))})",
            )


_DATE_METHODS = frozenset(
    {
        "date",
        "strftime",
        "replace",
        "isoformat",
        "subtract",
        "add",
        "start_of",
        "end_of",
        "to_date_string",
        "format",
        "timestamp",
        "weekday",
        "isoweekday",
        "day",
        "month",
        "year",
    }
)


def _window_shaped(mod: ModuleInfo, clock: ast.Call) -> bool:
    """Whether a clock call computes a date or a window: ``now() - timedelta(...)``, ``today().date()``,
    ``now().strftime(...)``, ``now().day`` (a decision on the date). A formatted clock stored under a
    name that records when something happened (``entry.last_update = now().isoformat()``,
    ``updated_at=now().strftime(...)``) only stamps it."""
    parent = mod.idx.parent.get(clock)
    if isinstance(parent, ast.BinOp | ast.Compare):
        return True
    if not (isinstance(parent, ast.Attribute) and parent.attr in _DATE_METHODS):
        return False
    formatted = mod.idx.parent.get(parent)
    holder = mod.idx.parent.get(formatted) if isinstance(formatted, ast.Call) else None
    return not _stamp_name(_stored_under(holder, formatted))


#: words of a name that records when something happened; a window word overrides them
_STAMP_WORDS = frozenset(
    {"update", "updated", "modified", "created", "loaded", "ingested", "inserted", "processed", "synced"}
    | {"refreshed", "generated", "exported", "written", "timestamp", "ts"}
)
_WINDOW_WORDS = frozenset(
    {"start", "end", "from", "to", "since", "until", "window", "begin", "cutoff", "run"}
)


def _stored_under(holder: ast.AST | None, value: ast.AST | None) -> str:
    """The name ``value`` is stored under: an assignment's single target (a name, an attribute, a
    constant subscript) or a keyword; "" otherwise."""
    if isinstance(holder, ast.keyword):
        return holder.arg or ""
    if isinstance(holder, ast.Assign) and len(holder.targets) == 1 and holder.value is value:
        target = holder.targets[0]
        if isinstance(target, ast.Name):
            return target.id
        if isinstance(target, ast.Attribute):
            return target.attr
        if isinstance(target, ast.Subscript):
            return const_str(target.slice) or ""
    return ""


def _stamp_name(name: str) -> bool:
    words = set(name_words(name))
    return bool(words & _STAMP_WORDS) and not words & _WINDOW_WORDS


def _check_blocking_past(ctx: CheckContext, mod: ModuleInfo) -> None:
    """REL012: depends_on_past + wait_for_downstream on an hourly-or-faster DAG without any alerting."""
    if "wait_for_downstream" not in mod.source:
        return
    for dag in mod.dags:
        if dag.splat or dag.default_args_dynamic:
            continue
        args = dag.default_args
        blocking = [
            t
            for t in dag.tasks
            if _is_true(t.kwargs.get("depends_on_past", args.get("depends_on_past")))
            and _is_true(t.kwargs.get("wait_for_downstream", args.get("wait_for_downstream")))
        ]
        if not blocking or not _frequent(dag):
            continue
        alerting = {"on_failure_callback", "email_on_failure", "on_retry_callback", "sla_miss_callback"}
        alerted = bool(alerting & (dag.kwargs.keys() | args.keys())) or any(
            alerting & t.kwargs.keys() for t in dag.tasks
        )
        if blocking and not alerted:
            ctx.emit(
                "REL012",
                dag.line,
                dag.name,
                f"DAG '{dag.name}' runs frequently with depends_on_past and wait_for_downstream "
                "but has no failure alerting: one failure silently stops every later run",
            )


#: a clock call inside a Jinja expression: {{ macros.datetime.now() }}, {{ datetime.utcnow() }} ...
_TEMPLATE_CLOCK = re.compile(r"\{\{[^}]*\b(?:now|utcnow|today)\s*\(\s*\)[^}]*\}\}")


def _check_template_clock(ctx: CheckContext, mod: ModuleInfo) -> None:
    """REL005 in templates: a templated argument that renders the wall clock instead of the run's date."""
    # the pattern's search, which skips to each "{{", is cheaper than a pre-test for "{{" with `in`
    if _TEMPLATE_CLOCK.search(mod.source) is None:
        return
    for t in mod.tasks:
        for key, value in t.kwargs.items():
            text = string_parts(value)
            if text and _TEMPLATE_CLOCK.search(text):
                ctx.emit(
                    "REL005",
                    value,
                    t.subject,
                    f"task '{t.name}' argument {key} renders the wall clock in a template: "
                    "use {{ data_interval_start }} / {{ ds }}",
                )


def _in_kwarg(task: TaskInfo, node: ast.AST) -> bool:
    sql = task.kwargs.get("sql")
    return sql is node or (isinstance(sql, LIST_TUPLE) and node in sql.elts)


def _swallows(handler: ast.ExceptHandler) -> bool:
    broad = handler.type is None or (
        isinstance(handler.type, ast.Name) and handler.type.id in {"Exception", "BaseException"}
    )
    if not broad:
        return False
    nodes = [n for stmt in handler.body for n in ast.walk(stmt)]
    if any(isinstance(n, ast.Return) and const_str(n.value) for n in nodes):
        return False  # a branch callable routing to a failure branch (return "failure"): handled
    # sys.exit(1) raises SystemExit: the task (or the script) still fails, nothing is swallowed
    return not any(
        isinstance(n, ast.Raise) or (isinstance(n, ast.Call) and dotted(n.func) in _EXITS) for n in nodes
    )


_EXITS = frozenset({"sys.exit", "exit", "quit", "os._exit"})


def _local_path(node: ast.AST | None) -> str | None:
    s = const_str(node)
    if s and "://" not in s and "{{" not in s and ("/" in s or "." in s):
        return s
    return None


def _check_local_handoff(ctx: CheckContext, mod: ModuleInfo) -> None:
    writes: dict[str, str] = {}
    reads: list[tuple[str, ast.AST, TaskInfo]] = []
    for t, _fn in _task_funcs(mod):
        for node in t.calls:
            if not node.args:
                continue
            path = _local_path(node.args[0])
            if path is None:
                continue
            name = dotted(node.func).rsplit(".", 1)[-1]
            if name == "open":
                mode_node = (
                    node.args[1]
                    if len(node.args) > 1
                    else next((k.value for k in node.keywords if k.arg == "mode"), None)
                )
                mode = const_str(mode_node) or "r"
                if any(c in mode for c in "wax"):
                    writes.setdefault(path, t.name)
                else:
                    reads.append((path, node, t))
            elif name.startswith("to_") or name in {"write_text", "write_bytes", "dump"}:
                writes.setdefault(path, t.name)
            elif name.startswith("read_"):
                reads.append((path, node, t))
    for path, call, t in reads:
        writer = writes.get(path)
        if writer is not None and writer != t.name:
            ctx.emit(
                "REL009",
                call,
                t.subject,
                f"task '{t.name}' reads local file {path!r} written by task '{writer}'",
            )


# ------------------------------------------------------------------ scheduling
def check_scheduling(ctx: CheckContext, mod: ModuleInfo) -> None:
    seen_ids: dict[str, int] = {}
    for dag in mod.dags:
        kw = dag.kwargs
        if "schedule" not in kw and "schedule_interval" not in kw and "timetable" not in kw and not dag.splat:
            default = "daily" if ctx.airflow_major < 3 else "None (never scheduled)"
            ctx.emit(
                "SCH001",
                dag.line,
                dag.name,
                f"DAG '{dag.name}' has no explicit schedule; Airflow {ctx.airflow_version} defaults to {default}",
            )
        start = kw.get("start_date", dag.default_args.get("start_date"))
        clock_items = (
            [*kw.items(), *(("default_args." + k, v) for k, v in dag.default_args.items())]
            if mod.may_use_clock
            else []
        )
        for key, value in clock_items:
            if isinstance(value, ast.Lambda) or not mod.clock_inside(value):
                continue
            clock = contains_clock_call(value, mod.imports)
            if clock is not None:
                ctx.emit(
                    "SCH002",
                    clock,
                    dag.name,
                    f"DAG '{dag.name}' argument {key} is computed from the clock ({dotted(clock.func)}())",
                )
        if (
            isinstance(start, ast.Call)
            and qualify(dotted(start.func), mod.imports) in {"datetime.datetime", "datetime"}
            and not any(k.arg in {"tzinfo", "tz"} for k in start.keywords)
            and len(start.args) < 8
        ):
            ctx.emit("SCH009", start, dag.name, f"DAG '{dag.name}' start_date is a naive datetime")
        once = const_str(kw.get("schedule", kw.get("schedule_interval"))) == "@once"
        if _is_scheduled(ctx, dag) and not dag.sets("catchup") and not once:  # @once: one run either way
            ctx.emit(
                "SCH003",
                dag.line,
                dag.name,
                f"DAG '{dag.name}' does not set catchup (default {ctx.airflow_major < 3} on Airflow "
                f"{ctx.airflow_version}, flipped between Airflow 2 and 3)",
            )
        catchup = kw.get("catchup")
        if catchup is not None and _is_true(catchup) and not dag.sets("max_active_runs"):
            ctx.emit("SCH004", catchup, dag.name, f"DAG '{dag.name}' catches up without max_active_runs")
        if catchup is not None and _is_true(catchup):
            backlog = _catchup_backlog(dag, start)
            if backlog is not None:
                ctx.emit(
                    "SCH010",
                    catchup,
                    dag.name,
                    f"DAG '{dag.name}' catches up from {backlog[0]} on a {backlog[1]} schedule: "
                    f"more than {backlog[2]:,} runs on the first deploy",
                )
        for removed in ("schedule_interval", "timetable"):
            if removed in kw:
                # an error where Airflow rejects it; on Airflow 2 (2.4+) a deprecation: one step lower
                state = (
                    "removed in Airflow 3" if ctx.airflow_major >= 3 else "deprecated (removed in Airflow 3)"
                )
                ctx.emit(
                    "SCH005",
                    kw[removed],
                    dag.name,
                    f"DAG '{dag.name}' uses {removed}=, {state}; use schedule=",
                    demoted=ctx.airflow_major < 3,
                )
        for key in ("schedule", "schedule_interval"):
            s = const_str(kw.get(key))
            if s is not None:
                problem = validate_schedule_string(s)
                if problem:
                    ctx.emit("SCH005", kw[key], dag.name, f"DAG '{dag.name}' schedule {s!r}: {problem}")
        if dag.dag_id is not None:
            if dag.dag_id in seen_ids:
                ctx.emit(
                    "SCH006",
                    dag.line,
                    dag.name,
                    f"dag_id '{dag.dag_id}' is already defined earlier in this file",
                )
            else:
                seen_ids[dag.dag_id] = dag.line
    for t in mod.tasks if mod.may_use_clock else []:
        if t.taskflow:
            continue
        for key, value in t.kwargs.items():
            if isinstance(value, ast.Lambda) or not mod.clock_inside(value):
                continue
            clock = contains_clock_call(value, mod.imports)
            if clock is not None:
                ctx.emit(
                    "SCH002",
                    clock,
                    t.subject,
                    f"task '{t.name}' argument {key} is computed from the clock at parse time",
                )
    _check_task_graph(ctx, mod)
    _check_imports(ctx, mod)


def _inside_function(mod: ModuleInfo, line: int) -> bool:
    return any(
        getattr(fn, "lineno", 0) <= line <= (getattr(fn, "end_lineno", 0) or 0)
        for fn in mod.functions.values()
    )


def _last_segment_ends(node: ast.AST, suffix: str) -> bool:
    """False when ``dotted(node)`` cannot end with ``suffix`` (which holds no dot), without building it."""
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr.endswith(suffix)
    if isinstance(node, ast.Name):
        return node.id.endswith(suffix)
    return False  # dotted() is "" for anything else


def _task_group_spans(mod: ModuleInfo) -> list[tuple[int, int]]:
    # no text pre-filter: testing the last name of each with-item and decorator (few per file) costs
    # less than the two scans of the whole text for "TaskGroup" and "task_group" it would save
    spans: list[tuple[int, int]] = []
    for node in mod.idx.by_type.get(ast.With, ()):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            expr = item.context_expr
            if _last_segment_ends(expr, "TaskGroup") and dotted(expr).endswith("TaskGroup"):
                spans.append((node.lineno, node.end_lineno or node.lineno))
                break
    for fn in mod.functions.values():
        for dec in fn.decorator_list:
            if _last_segment_ends(dec, "task_group") and dotted(dec).endswith("task_group"):
                spans.append((fn.lineno, fn.end_lineno or fn.lineno))
                break
    return spans


def _check_task_graph(ctx: CheckContext, mod: ModuleInfo) -> None:
    groups: list[tuple[int, int]] | None = None
    for dag in mod.dags:
        # the TaskGroup spans are only looked for once a task_id repeats: leaving tasks out of the
        # comparison cannot make a repeat
        named = [t for t in dag.tasks if not t.taskflow and t.task_id is not None]
        if len({t.task_id for t in named}) < len(named):
            if groups is None:
                groups = _task_group_spans(mod)
            _check_repeated_task_ids(ctx, dag, named, groups)
        if not dag.edges:
            continue  # no edge, no cycle
        graph: dict[str, set[str]] = {}
        for u, d in dag.edges:
            downs = graph.get(u)
            if downs is None:
                graph[u] = {d}  # setdefault(u, set()) would build a set per edge
            else:
                downs.add(d)
        cycle = _find_cycle(graph)
        if cycle:
            ctx.emit(
                "SCH007", dag.line, dag.name, f"DAG '{dag.name}' has a dependency cycle: {' -> '.join(cycle)}"
            )
    if mod.dags:
        for t in mod.tasks:
            # dag= may arrive through **kwargs (a dict of shared arguments); a task linked (>>,
            # set_upstream) to a task of a DAG joins that DAG, and so may one whose variable is used
            # inside a DAG's block (an alias, a list of tasks)
            if (
                t.dag is None
                and not t.taskflow
                and not t.splat
                and not _inside_function(mod, t.line)
                and "dag" not in t.kwargs
                and not any(t.name in edge for d in mod.dags for edge in d.edges)
                and not (t.var is not None and _named_in_dag(mod, t.var))
            ):
                ctx.emit("SCH007", t.line, t.name, f"task '{t.name}' is created outside any DAG")


def _check_repeated_task_ids(
    ctx: CheckContext, dag: DagInfo, named: list[TaskInfo], groups: list[tuple[int, int]]
) -> None:
    """SCH007: a task_id used twice among a DAG's ``named`` tasks (those with a literal task_id, not
    TaskFlow); tasks inside a TaskGroup have the group's prefix and are left out."""
    seen: set[str | None] = set()
    for t in named:
        if groups and any(a <= t.line <= b for a, b in groups):
            continue
        if t.task_id in seen:
            ctx.emit(
                "SCH007",
                t.line,
                t.subject,
                f"task_id '{t.task_id}' is already used earlier in DAG '{dag.name}'",
            )
        else:
            seen.add(t.task_id)


def _named_in_dag(mod: ModuleInfo, name: str) -> bool:
    word = re.compile(rf"\b{re.escape(name)}\b")
    lines = mod.source.split("\n")
    return any(word.search("\n".join(lines[d.span.start - 1 : d.span.end])) for d in mod.dags)


def _acyclic(graph: dict[str, set[str]]) -> bool:
    """Kahn's test: can every node be removed once its upstreams are? (no sorting, no recursion)"""
    indegree: dict[str, int] = {}
    for downs in graph.values():
        for d in downs:
            indegree[d] = indegree.get(d, 0) + 1
    ready = [n for n in graph if n not in indegree]
    removed = 0
    while ready:
        n = ready.pop()
        removed += 1
        for d in graph.get(n, ()):
            left = indegree[d] - 1
            indegree[d] = left
            if not left:
                ready.append(d)
    return removed == len(graph.keys() | indegree.keys())


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    if _acyclic(graph):
        return None  # the common case; the search below names the first cycle in a stable order
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if color.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if color.get(m) is None:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for node in sorted(graph):
        if color.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


AF3_MOVED = {
    "airflow.operators.": "airflow.providers.standard.operators.",
    "airflow.sensors.": "airflow.providers.standard.sensors.",
    "airflow.decorators": "airflow.sdk",
    "airflow.models.dag": "airflow.sdk",
    "airflow.models.DAG": "airflow.sdk.DAG",
    "airflow.models.baseoperator": "airflow.sdk",
    "airflow.datasets": "airflow.sdk (Asset)",
    "airflow.utils.dates": "pendulum",
    "airflow.models.variable": "airflow.sdk",
    "airflow.models.Variable": "airflow.sdk.Variable",
    "airflow.hooks.base": "airflow.sdk.bases.hook",
    "airflow.utils.task_group": "airflow.sdk.TaskGroup",
}


_AF3_PREFIXES = tuple(AF3_MOVED)


def _name_filter(prefixes: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """``prefixes`` and every dotted head of them (``a.b.c`` -> ``a``, ``a.b``): a module ``M`` can only
    have an imported name ``M.x`` starting with a prefix if ``M + "."`` starts with one or ``M`` is a head."""
    return prefixes, frozenset(p[:i] for p in prefixes for i, ch in enumerate(p) if ch == ".")


_AF3_NAMES = _name_filter(_AF3_PREFIXES)
_AF2_NAMES = _name_filter(("airflow.sdk", "airflow.providers.standard"))


def _check_imports(ctx: CheckContext, mod: ModuleInfo) -> None:
    if not ctx.enabled("SCH008"):
        return
    # the names _import_verdict answers for: equality with "airflow.DAG" is a prefix test too
    prefixes, heads = _AF3_NAMES if ctx.airflow_major >= 3 else _AF2_NAMES
    # one class test per top-level statement (most are not imports), the classes held in locals
    major, version = ctx.airflow_major, ctx.airflow_version
    for node in mod.tree.body:
        if isinstance(node, ast.ImportFrom):
            module = node.module
            if not module or not module.startswith("airflow"):
                continue  # every name it would check starts with the module
            if not (module + ".").startswith(prefixes) and module not in heads:
                continue  # no name it imports can get a verdict
            if node.level != 0:
                continue
            names = (*(f"{module}.{a.name}" for a in node.names), module)
        elif isinstance(node, ast.Import):
            names = tuple(a.name for a in node.names)
        else:
            continue
        verdict = _import_verdict(names, major, version)
        if verdict is not None:
            ctx.emit("SCH008", node, verdict[0], verdict[1])


@functools.lru_cache(maxsize=4096)
def _import_verdict(names: tuple[str, ...], major: int, version: str) -> tuple[str, str] | None:
    """(name, message) for the first imported name that is wrong for the target version, else None.

    A pure function of the import's text: DAG files repeat the same few imports, so it is memoised."""
    for name in names:
        if not name.startswith("airflow"):
            continue
        if major >= 3:
            # `from airflow import DAG` still works on Airflow 3 (airflow.sdk is the documented home,
            # but the old import is neither removed nor deprecated): not reported
            if not name.startswith(_AF3_PREFIXES):
                continue
            old = next((o for o in AF3_MOVED if name == o or name.startswith(o)), None)
            if old is not None:
                return name, f"'{name}' is deprecated or removed in Airflow 3; use {AF3_MOVED[old]}"
        elif name.startswith(("airflow.sdk", "airflow.providers.standard")):
            return name, f"'{name}' needs Airflow 3 but the target is {version}"
    return None


# ------------------------------------------------------------------ performance
def check_performance(ctx: CheckContext, mod: ModuleInfo) -> None:
    imports = mod.imports
    candidates = mod.idx.calls_named(*(n for n in mod.idx.call_by_name if n in PARSE_TIME_CANDIDATE_NAMES))
    # calling a TaskFlow task at parse time only adds the task to the DAG: no I/O
    taskflow_names = mod.taskflow_by_name
    for call in candidates:
        if not mod.parse_time(call) or (isinstance(call.func, ast.Name) and call.func.id in taskflow_names):
            continue
        if (
            dotted(call.func).split(".", 1)[0] not in IO_ROOTS
            and _last(call) not in PARSE_TIME_IO_METHODS
            and _last(call) != "get"
        ):
            continue
        name = qualify(dotted(call.func), imports)
        if name.endswith("Variable.get"):
            ctx.emit("PERF002", call, name, "Variable.get() runs at parse time (metadata DB query per parse)")
        elif _last(call) in PARSE_TIME_IO_METHODS or name.startswith(PARSE_TIME_IO_MODULES):
            ctx.emit(
                "PERF001", call, name, f"'{dotted(call.func)}()' runs at parse time on every DAG-file parse"
            )
    expensive = set(ctx.config.expensive_imports)
    # the top package of every import anywhere in the file: the top-level ones are only looked for
    # when one of them is expensive
    imported_roots = {
        a.name.partition(".")[0] for n in mod.idx.of(ast.Import) if isinstance(n, ast.Import) for a in n.names
    }
    imported_roots.update(
        (n.module or "").partition(".")[0]
        for n in mod.idx.of(ast.ImportFrom)
        if isinstance(n, ast.ImportFrom)
    )
    for imp in _top_level_imports(mod.tree) if imported_roots & expensive else ():
        mods = [a.name for a in imp.names] if isinstance(imp, ast.Import) else [imp.module or ""]
        for m in mods:
            if m.split(".")[0] in ctx.config.expensive_imports:
                ctx.emit("PERF003", imp, m, f"'{m}' is imported at module level (import cost on every parse)")
    if len(mod.dags) > ctx.config.max_dags_per_file:
        ctx.emit(
            "PERF004",
            1,
            mod.path,
            f"{len(mod.dags)} DAGs in one file (budget {ctx.config.max_dags_per_file})",
        )
    for dag in mod.dags:
        if len(dag.tasks) > ctx.config.max_tasks_per_dag:
            ctx.emit(
                "PERF004",
                dag.line,
                dag.name,
                f"DAG '{dag.name}' has {len(dag.tasks)} tasks (budget {ctx.config.max_tasks_per_dag})",
            )
    _check_loops(ctx, mod)
    for t in mod.tasks:
        if not t.is_sensor:
            continue
        mode = t.resolve("mode", ctx.airflow_version)
        deferrable = t.resolve("deferrable", ctx.airflow_version)
        if mode.unknown or deferrable.unknown:
            continue
        if _is_value(mode, "reschedule") or _is_value(deferrable, True):
            continue
        if deferrable.node is not None and not isinstance(deferrable.node, ast.Constant):
            continue  # e.g. conf.getboolean("operators", "default_deferrable")
        ctx.emit(
            "PERF006",
            t.line,
            t.subject,
            f"sensor '{t.name}' pokes in a worker slot (no deferrable=True / mode='reschedule')",
        )
    for t, _fn in _task_funcs(mod) if _may_call(mod.idx, XCOM_HEAVY_CALLS) else ():
        if not t.taskflow:
            continue
        heavy_vars: set[str] = set()
        for node in t.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _heavy_call(node.value):
                heavy_vars.update(tg.id for tg in node.targets if isinstance(tg, ast.Name))
        for node in t.body:
            if (
                isinstance(node, ast.Return)
                and node.value is not None
                and (
                    (isinstance(node.value, ast.Call) and _heavy_call(node.value))
                    or (isinstance(node.value, ast.Name) and node.value.id in heavy_vars)
                )
            ):
                ctx.emit("PERF007", node, t.subject, f"task '{t.name}' returns a dataset through XCom")
    for call in mod.idx.calls_named("xcom_push"):
        value = next(
            (k.value for k in call.keywords if k.arg == "value"), call.args[1] if len(call.args) > 1 else None
        )
        if isinstance(value, ast.Call) and _last(value) in _QUERY_RESULT_CALLS | XCOM_HEAVY_CALLS:
            owner = mod.idx.owner.get(call)
            task = next((t for t in mod.tasks if t.func is not None and t.func is owner), None)
            ctx.emit(
                "PERF007",
                call,
                task.subject if task else "xcom_push",
                f"xcom_push of a whole query result ({_last(value)}()): it is stored in the metadata database",
            )
    for dag in mod.dags:
        if dag.sets("max_active_tasks") or "concurrency" in dag.kwargs:
            continue
        by_conn: dict[str, list[TaskInfo]] = {}
        for t in dag.tasks:
            # a task counts once per connection, also when two of its *conn_id arguments name it
            for c in {c for k, v in t.kwargs.items() if k.endswith("conn_id") and (c := const_str(v))}:
                by_conn.setdefault(c, []).append(t)
        for conn, tasks in sorted(by_conn.items()):
            if len(tasks) >= ctx.config.same_conn_task_threshold and not any(
                t.resolve("pool", ctx.airflow_version).explicit for t in tasks
            ):
                ctx.emit(
                    "PERF008",
                    dag.line,
                    dag.name,
                    f"{len(tasks)} tasks of DAG '{dag.name}' use connection '{conn}' without a pool",
                )


def _heavy_call(call: ast.Call) -> bool:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else dotted(call.func)
    return name.rsplit(".", 1)[-1] in XCOM_HEAVY_CALLS


def _top_level_imports(tree: ast.Module) -> Iterable[ast.Import | ast.ImportFrom]:
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, IMPORTS):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" in dotted(node.test):
                stack.extend(node.orelse)
                continue
            stack.extend(node.body + node.orelse)
        elif isinstance(node, TRY_OR_WITH):
            stack.extend(node.body)


def _check_loops(ctx: CheckContext, mod: ModuleInfo) -> None:
    """PERF005: tasks made in a loop over parse-time data."""
    if not mod.tasks or not mod.idx.by_type.get(ast.For):
        return
    task_lines = [t.line for t in mod.tasks if not t.taskflow]
    taskflow_names = mod.taskflow_by_name
    lines: list[str] | None = None
    for node in mod.parse_time_of(ast.For):
        if not isinstance(node, ast.For):
            continue
        start, end = node.lineno, node.end_lineno or node.lineno
        makes_task = any(start <= line <= end for line in task_lines)
        if not makes_task and taskflow_names:
            if mod.source.isascii():
                # a call of a TaskFlow function spells its name on the loop's lines (an ASCII file's names
                # are parsed as written): walk the loop body only when one of the names is there
                if lines is None:
                    lines = mod.source.split("\n")
                text = "\n".join(lines[start - 1 : end])
                named = any(name in text for name in taskflow_names)
            else:
                named = True
            makes_task = named and any(
                dotted(n.func).split(".")[0] in taskflow_names
                for stmt in node.body
                for n in calls_under(stmt)
            )
        if not makes_task:
            continue
        source = _dynamic_iter(node.iter, mod)
        if source:
            ctx.emit(
                "PERF005", node, source, f"tasks are generated in a loop over parse-time data ({source})"
            )


def _dynamic_iter(node: ast.expr, mod: ModuleInfo, depth: int = 0) -> str | None:
    if depth > 4:
        return None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = dotted(sub.func)
            if name.rsplit(".", 1)[-1] not in LOOP_SAFE_CALLS:
                return name + "()"
        if isinstance(sub, ast.Name) and sub.id in mod.module_assigns:
            inner = _dynamic_iter(mod.module_assigns[sub.id], mod, depth + 1)
            if inner:
                return inner
    return None


# ------------------------------------------------------------------ data quality
def check_data_quality(ctx: CheckContext, mod: ModuleInfo) -> None:
    for dag in mod.dags:
        writers = [t for t in dag.tasks if _writes(t) or "outlets" in t.kwargs]
        if writers and not any(_is_check(t) for t in dag.tasks):
            ctx.emit(
                "DQ001",
                dag.line,
                dag.name,
                f"DAG '{dag.name}' writes data ({', '.join(t.name for t in writers[:3])}) but has no check task",
            )
    for t in mod.tasks:
        for node, sql in _sql_texts(t):
            if SELECT_STAR_RE.search(sql):
                ctx.emit("DQ004", node, t.subject, f"task '{t.name}' uses SELECT *")


# ------------------------------------------------------------------ security
def check_security(ctx: CheckContext, mod: ModuleInfo) -> None:
    check_hardcoded_secrets(ctx, mod.idx, mod.source)
    check_logged_secrets(ctx, mod.idx)
    if "get_connection" in mod.source:
        _check_parse_time_connections(ctx, mod)
    check_sql_formatting(ctx, mod.idx, mod.source)
    for t in mod.tasks:
        if "Bash" not in t.short_operator and not t.operator.startswith("@task.bash"):
            continue
        for node, text in _bash_texts(t):
            if SHELL_PARAMS.search(text):
                ctx.emit(
                    "SEC004",
                    node,
                    t.subject,
                    f"task '{t.name}' pastes dag_run.conf/params into bash_command (shell injection)",
                )


def _check_parse_time_connections(ctx: CheckContext, mod: ModuleInfo) -> None:
    """SEC002: a connection's password (login, extra ...) read at parse time."""
    conn_vars = {
        name
        for name, value in mod.module_assigns.items()
        if isinstance(value, ast.Call) and dotted(value.func).endswith("get_connection")
    }
    for node in walk_no_defs(mod.tree):
        if isinstance(node, ast.Attribute) and node.attr in CONN_ATTRS:
            base = node.value
            if (isinstance(base, ast.Call) and dotted(base.func).endswith("get_connection")) or (
                isinstance(base, ast.Name) and base.id in conn_vars
            ):
                ctx.emit("SEC002", node, node.attr, f"connection .{node.attr} is read at parse time")


def _secret_candidates(idx: Index, source: str = "") -> Iterator[tuple[str, str, ast.Call | None, ast.AST]]:
    """``(name, literal text, the call it is a keyword of or None, where)`` for the string literals
    bound to a name (assignment target, keyword, dict key), basic-auth pairs and f-string texts that
    may hold a secret: bound to a secret name, or shaped like one (:func:`_may_be_shaped_secret`)."""
    for node in idx.by_type.get(ast.Assign, ()):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            text = node.value.value
            if not isinstance(text, str):
                continue
            for tgt in node.targets:
                name = (
                    tgt.id
                    if isinstance(tgt, ast.Name)
                    else tgt.attr
                    if isinstance(tgt, ast.Attribute)
                    else ""
                )
                if _secret_name(name) or (len(text) >= 8 and _may_be_shaped_secret(text)):
                    yield name, text, None, node
    for node in idx.by_type.get(ast.AnnAssign, ()):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            name, text = node.target.id, node.value.value
            if _secret_name(name) or (len(text) >= 8 and _may_be_shaped_secret(text)):
                yield name, text, None, node
    for node in idx.of(ast.Dict):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if not (
                    isinstance(v, ast.Constant) and isinstance(v.value, str) and isinstance(k, ast.Constant)
                ):
                    continue
                ks, vs = k.value, v.value
                if isinstance(ks, str) and (_secret_name(ks) or (len(vs) >= 8 and _may_be_shaped_secret(vs))):
                    yield ks, vs, None, v
    for call, kw in zip(idx.literal_keyword_calls, idx.literal_keywords, strict=True):
        arg = kw.arg
        text = kw.value.value if isinstance(kw.value, ast.Constant) else None
        if (
            arg
            and isinstance(text, str)
            and _keyword_may_hold_secret(arg)
            and (_secret_name(arg) or (len(text) >= 8 and _may_be_shaped_secret(text)))
        ):
            yield arg, text, call, kw.value
    names = idx.call_by_name
    auth_calls = (
        idx.calls_named(*_BASIC_AUTH_CALLS, *names.keys() & _AUTH_TUPLE_CALLS)
        if not names.keys().isdisjoint(_AUTH_CALLS) and ("auth" in source or "Auth" in source)
        else []
    )
    for call in auth_calls:
        pair: list[ast.expr] = []
        if _last(call) in _BASIC_AUTH_CALLS:
            pair = list(call.args[:2])
        for auth in call.keywords:
            if auth.arg == "auth" and isinstance(auth.value, LIST_TUPLE):
                pair = list(auth.value.elts)
        if len(pair) == 2 and (pw := const_str(pair[1])) is not None and const_str(pair[0]) is not None:
            yield "password", pw, None, pair[1]
    # a URI or a connection string passed positionally to a connection call, bound to no name:
    # create_engine("postgresql://etl:pw@db/dw"), pyodbc.connect("DRIVER=...;UID=etl;PWD=...")
    for call in idx.calls_named(*_CONNECT_CALLS):
        if call.args and (text := const_str(call.args[0])) is not None and _may_be_shaped_secret(text):
            yield "", text, None, call.args[0]
    # f-strings: only in a file with the shapes with spaces or an @ (a command line, a header, URI
    # credentials); that test scans the whole text, so it is made once an f-string may hold a secret
    spaced: bool | None = None
    for node in idx.of(ast.JoinedStr):
        if isinstance(node, ast.JoinedStr):
            # the literal parts only: a secret is never a placeholder's value
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if not _may_be_shaped_secret(text):
                continue
            if spaced is None:
                spaced = any(w in source for w in ("@", " -p", "--", "earer ", "asic ", "oken ", "ssword"))
            if spaced:
                yield "", text, None, node


#: calls that take ``(user, password)`` positionally, and calls whose ``auth=`` may be such a pair
_BASIC_AUTH_CALLS = ("HTTPBasicAuth", "BasicAuth", "HTTPDigestAuth")
_AUTH_TUPLE_CALLS = HTTP_CALLS | frozenset(
    {
        "Session",
        "Client",
        "AsyncClient",
        "urlopen",
        "HttpHook",
        "SimpleHttpOperator",
        "HttpOperator",
    }
)
_AUTH_CALLS = frozenset(_BASIC_AUTH_CALLS) | _AUTH_TUPLE_CALLS
#: calls whose first argument is a database URI or connection string (SQLAlchemy, DB-API drivers,
#: MongoDB, redis-py's from_url)
_CONNECT_CALLS = ("create_engine", "create_async_engine", "connect", "MongoClient", "from_url")
_SECRET_KIND_TEXT = {
    "uri_credentials": "a connection URI with an embedded password",
    "private_key": "a private key",
    "authorization_header": "an Authorization header value",
    "basic_auth": "a basic-auth password",
    "cli_password": "a password on a command line",
    "pgpass": "a pgpass line with a password",
    "netrc": "a netrc password",
    "sql_password": "a SQL password",
    "connection_string": "a connection string with a password",
}


#: what a shaped secret with spaces in its literal has: an Authorization header, a command-line
#: password (mysql/mariadb -p, sshpass, docker login, curl -u, --password/--token ...), a netrc
#: line, SQL's IDENTIFIED BY / PASSWORD '...', a PEM block
_SPACED_SECRET = re.compile(
    r"bearer |token |basic |digest |mysql|mariadb|sshpass|docker|curl|wget| -u|--pass|"
    r"--token|--api|--secret|--auth|machine |identified|password '|-----begin"
)


def _may_be_shaped_secret(text: str) -> bool:
    """A cheap superset of what the detector's shaped patterns can match in one literal (the detector
    decides; this only skips literals that cannot hold a token, URI credentials, a webhook URL, a
    header, a command-line password, a pgpass line or a key): most literals are task ids, paths, URIs
    without credentials, commands and prose."""
    if len(text) < 8:
        return False  # shorter than any shaped secret with its context (a token, user:pw@, "Bearer x")
    if ";" in text and "=" in text and _CONN_PASSWORD.search(text):
        return True  # an ODBC/ADO.NET/JDBC connection string with PWD=/Password= (spaces or not)
    if "://" in text:
        return "@" in text or "hooks." in text or "webhook" in text  # URI credentials, webhook URLs
    if " " in text:
        return _SPACED_SECRET.search(text.lower()) is not None
    if text.count(":") >= 4:
        return True  # a pgpass line
    if len(text) < 16 or "/" in text or (text[:4].isdigit() and text[4:5] == "-"):
        return False  # too short for a token; a path; a date or timestamp
    if text.replace("_", "").replace("-", "").isalpha():
        return False  # letters only: an identifier or a word (random tokens have digits)
    if text.count("_") >= 3 and text.replace("_", "").isalnum():
        return False  # a snake_case identifier (task ids)
    if not text.startswith("eyJ") and _DOTTED_NAME.fullmatch(text):
        return False  # a dotted import path (a JWT is dotted too, but starts with eyJ)
    # a token: mixed case, or digits in a string that is not an identifier
    return not text.islower() or (text.count("_") <= 1 and any(c.isdigit() for c in text))


_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_CONN_PASSWORD = re.compile(r"(?i)(?<![\w\-.])(?:pwd|password)[ \t]*=")


@functools.lru_cache(maxsize=4096)
def _keyword_may_hold_secret(arg: str) -> bool:
    return not arg.endswith(("_id", "_ids", "_name", "_path", "_dir", "_folder"))


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    return is_secret_name(name)


_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][\w.\[\]'\"]*\}")


def _token_text(kind: str) -> str:
    """How a finding names a vendor token kind of the detector (``token:github`` -> "a GitHub token")."""
    name = _TOKEN_TEXT.get(kind)
    if name is None:
        words = kind.removeprefix("token:").replace("_", " ")
        name = f"{'an' if words[:1] in 'aeiou' else 'a'} {words} token"
    return name


_TOKEN_TEXT = {
    "token:anthropic": "an Anthropic API key",
    "token:openai": "an OpenAI API key",
    "token:stripe": "a Stripe API key",
    "token:stripe_webhook": "a Stripe webhook secret",
    "token:github": "a GitHub token",
    "token:github_pat": "a GitHub personal access token",
    "token:gitlab": "a GitLab personal access token",
    "token:slack": "a Slack token",
    "token:slack_app": "a Slack app token",
    "token:slack_webhook": "a Slack webhook URL",
    "token:discord_webhook": "a Discord webhook URL",
    "token:aws_access_key_id": "an AWS access key ID",
    "token:google_api_key": "a Google API key",
    "token:google_oauth_secret": "a Google OAuth client secret",
    "token:google_access_token": "a Google access token",
    "token:jwt": "a JWT",
    "token:npm": "an npm token",
    "token:pypi": "a PyPI token",
    "token:huggingface": "a Hugging Face token",
    "token:sendgrid": "a SendGrid API key",
    "token:databricks": "a Databricks token",
    "token:shopify": "a Shopify token",
    "token:digitalocean": "a DigitalOcean token",
    "token:mailgun": "a Mailgun API key",
    "token:square": "a Square token",
}


def check_hardcoded_secrets(ctx: CheckContext, idx: Index, source: str) -> None:
    """SEC001 through the one secret detector (:mod:`dataeng_agents.core.security.secrets`): a literal
    bound to a secret name, or a value shaped like a secret whatever its name (a token prefix, URI
    credentials, an Authorization header, a command-line password ...)."""
    if not ctx.enabled("SEC001"):
        return
    seen: set[tuple[int, str]] = set()
    for name, text, call, where in _secret_candidates(idx, source):
        if len(text) < 4:
            continue
        span = literal_secret(name, text, call=dotted(call.func) if call is not None else None)
        if span is None or (span.kind == "key_value" and _FORMAT_FIELD.search(text)):
            continue  # a str.format / Prefect template ("enriched-{parameters[region]}") is no secret
        line = getattr(where, "lineno", 1)
        if (line, span.kind) in seen:
            continue
        seen.add((line, span.kind))
        if span.kind == "key_value":
            subject, message = name, f"'{name}' is assigned a hard-coded secret"
        else:
            what = _SECRET_KIND_TEXT.get(span.kind) or _token_text(span.kind)
            subject = span.kind
            message = f"{what} is hard-coded" + (f" (in '{name}')" if name else "")
        ctx.emit("SEC001", where, subject, message)


#: what writes to a task's log: print and the logging methods (logging, a logger, self.log, Prefect's
#: get_run_logger(), click.echo)
_LOG_CALLS = frozenset(
    {"print", "debug", "info", "warning", "warn", "error", "exception", "critical", "log", "echo"}
)
#: names that pass is_secret_name without holding a secret: flags (is_secret, use_password),
#: pagination cursors (next_token, page_token) and a bare ``token``, which in pipeline code is as often
#: a domain record (Greenstand's tree tokens, a row from wallet.token) or an NLP token as a credential
_NOT_A_SECRET_VALUE = re.compile(
    r"(?i)^(?:is|has|use|uses|should|needs?|requires?|with|no|skip|enable|disable)_|"
    r"(?:^|_)(?:next|page|prev|previous|continuation|resume|sync|cursor)_?token|^token$"
)


def _logged_secret(node: ast.AST) -> str | None:
    """The secret-named value that ``node`` writes as it is: a name, an attribute (``conn.password``)
    or a constant key (``params["password"]``), alone or formatted into the text (f-string, ``%``,
    ``.format``, ``+``). Not what is computed from it (``len(token)``, ``token[:4]``, a condition)."""
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
        name = (
            node.id
            if isinstance(node, ast.Name)
            else node.attr
            if isinstance(node, ast.Attribute)
            else const_str(node.slice)
        )
        if name and _secret_name(name) and not _NOT_A_SECRET_VALUE.search(name):
            return name
        return None
    parts: list[ast.AST] = []
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        parts = [node.left, *right]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        parts = [*node.args, *(k.value for k in node.keywords)]
    for part in parts:
        found = _logged_secret(part)
        if found is not None:
            return found
    return None


def check_logged_secrets(ctx: CheckContext, idx: Index) -> None:
    """SEC006: a secret-named value printed or logged as it is."""
    if not ctx.enabled("SEC006"):
        return
    # the log calls of the file by a set intersection with its call names (most files print something,
    # few call more than two of these)
    for callee in idx.call_by_name.keys() & _LOG_CALLS:
        for call in idx.call_by_name[callee]:
            for arg in [*call.args, *(k.value for k in call.keywords if k.arg != "exc_info")]:
                name = _logged_secret(arg)
                if name is not None:
                    ctx.emit("SEC006", call, name, f"'{name}' is written to the log as it is")
                    break


#: a placeholder where SQL expects a value (quoted, compared, IN/VALUES lists, LIKE, LIMIT): there a bind
#: parameter is the fix; a placeholder for a table or column name (``INSERT INTO {schema}.{table}``)
#: cannot be a bind parameter and is not reported. The placeholder is the formatting's own: ``{...}``
#: in an f-string or for ``.format``, ``%s`` / ``%(name)s`` for ``%``; a ``%s`` in an f-string or a
#: ``.format`` text is a DB-API bind marker the driver fills (``WHERE rn <= %s``), not formatting
_VALUE_AT = r"(?:['\"]|[=<>]|\bin\s*\(|\bvalues\s*\(|\blike|\blimit|\boffset|\bbetween|\binterval)\s*"
_VALUE_BRACE = re.compile(_VALUE_AT + r"\{[^{}]*\}", re.I)
_VALUE_PERCENT = re.compile(_VALUE_AT + r"%\(?\w*\)?[sdfr]", re.I)
#: SQL comments: a placeholder left in a commented-out line (``-- AND id IN ({ids})``) formats nothing
#: the database runs
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*[\s\S]*?\*/")
#: what a list of bind markers is made of: ``", ".join(["%s"] * n)``, ``",".join("?" for _ in cols)``,
#: ``", ".join(f":p{j}" for j in ...)``: every string piece is a marker (%s, ?, :name, %(name)s, $1)
#: or separators
_MARKER_PIECE = re.compile(r"[\s,()]*(?:%s|\?|:\w*|%\(\w+\)s|\$\d*)?[\s,()]*")


_VALUES_OPEN = re.compile(r"\bvalues\s*\(", re.I)
_PAREN_OR_BRACE = re.compile(r"[(){]")


def _brace_in_values(sql: str) -> bool:
    """Whether a ``{...}`` placeholder sits anywhere inside a VALUES list, nested parentheses included:
    a row's expressions hold values, never names (``VALUES (%s, ST_Buffer({point}, 0.1))``)."""
    for m in _VALUES_OPEN.finditer(sql):
        depth = 1
        for c in _PAREN_OR_BRACE.finditer(sql, m.end()):
            if c.group() == "{":
                return True
            depth += 1 if c.group() == "(" else -1
            if depth == 0:
                break  # the list ended; ON CONFLICT ... SET {updates} after it is not a value list
    return False


def _bind_markers(idx: Index, fstring: ast.JoinedStr, name: str) -> bool:
    """Whether ``name`` in an f-string holds only bind markers: every assignment to it in the same
    function (or at module level) builds a text of markers and separators (``placeholders``)."""
    owner = idx.owner.get(fstring)
    scope = idx.func_nodes(owner) if owner is not None else idx.of(ast.Assign)
    values = [
        n.value
        for n in scope
        if isinstance(n, ast.Assign)
        and idx.owner.get(n) is owner
        and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
    ]
    if not values:
        return False
    for value in values:
        pieces = [
            n.value for n in ast.walk(value) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        if not any(p.strip(" ,()") for p in pieces) or not all(_MARKER_PIECE.fullmatch(p) for p in pieces):
            return False
    return True


def _fstring_sql(idx: Index, node: ast.JoinedStr) -> str:
    """The f-string's text with ``{}`` for each placeholder, and ``?`` for one that holds bind markers."""
    parts: list[str] = []
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif (
            isinstance(v, ast.FormattedValue)
            and isinstance(v.value, ast.Name)
            and _bind_markers(idx, node, v.value.id)
        ):
            parts.append("?")
        else:
            parts.append("{}")
    return "".join(parts)


def check_sql_formatting(ctx: CheckContext, idx: Index, source: str) -> None:
    # the file-wide keyword pre-filter is a scan of the whole text per keyword: it runs only when a
    # formatted string looks like SQL, which few files have
    hits: list[ast.AST] = []
    for node in [*idx.of(ast.JoinedStr, ast.BinOp), *idx.calls_named("format")]:
        text: str | None = None
        placeholder = _VALUE_BRACE
        if isinstance(node, ast.JoinedStr):
            # SQL_WORDS is anchored at the start: its word is in the f-string's leading literal part (one
            # that opens with a placeholder cannot match), so the whole text is built only when it is there
            lead = const_str(node.values[0]) if node.values else None
            if (
                lead is not None
                and SQL_WORDS.match(lead)
                and any(isinstance(v, ast.FormattedValue) for v in node.values)
            ):
                text = string_parts(node)
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
        ):
            text = const_str(node.left)
            placeholder = _VALUE_PERCENT
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
        ):
            text = const_str(node.func.value)
        if not (text and SQL_WORDS.match(text) and SQL_SHAPE.search(text)):
            continue
        if isinstance(node, ast.JoinedStr):
            text = _fstring_sql(idx, node)  # only for SQL-shaped f-strings: resolves bind-marker lists
        sql = _SQL_COMMENT.sub("", text) if "--" in text or "/*" in text else text
        if placeholder.search(sql) or (placeholder is _VALUE_BRACE and _brace_in_values(sql)):
            hits.append(node)
    if hits and has_any(source.lower(), SQL_WORDS_LOWER):
        for node in hits:
            ctx.emit("SEC003", node, "sql", "SQL is built with string formatting; use bind parameters")


# ------------------------------------------------------------------ cost
def check_cost(ctx: CheckContext, mod: ModuleInfo) -> None:
    for t in mod.tasks:
        venv = t.short_operator == "PythonVirtualenvOperator" or t.operator == "@task.virtualenv"
        if venv and t.dag is not None and _frequent(t.dag):
            ctx.emit(
                "COST001",
                t.line,
                t.subject,
                f"task '{t.name}' rebuilds a virtualenv on every run of a frequent schedule",
            )
        # the task's SQL first (memoised, empty for most tasks), then the DAG's schedule
        texts = _sql_texts(t)
        if texts and t.dag is not None and _is_scheduled(ctx, t.dag):
            for node, sql in texts:
                if FULL_REBUILD_RE.search(sql):
                    ctx.emit("COST002", node, t.subject, f"task '{t.name}' rebuilds a whole table every run")


_DOC_KEYS = frozenset({"description", "doc_md", "doc", "doc_rst", "doc_json", "doc_yaml"})


def _doc_assigned(mod: ModuleInfo, dag: DagInfo) -> bool:
    """``dag.doc_md = __doc__`` (or ``.description``/``.doc``) after the DAG is created."""
    if dag.var is None:
        return False
    for node in mod.idx.of(ast.Assign):
        if isinstance(node, ast.Assign):
            for tgt in node.targets:
                if (
                    isinstance(tgt, ast.Attribute)
                    and isinstance(tgt.value, ast.Name)
                    and tgt.value.id == dag.var
                    and tgt.attr in {"doc_md", "description", "doc", "doc_rst"}
                ):
                    return True
    return False


#: runs per day of the frequent presets and timedelta units (for the catch-up backlog estimate)
_RUNS_PER_DAY = {"@hourly": 24.0, "@continuous": 1440.0, "@daily": 1.0, "@weekly": 1 / 7, "@monthly": 1 / 30}


def _catchup_backlog(dag: DagInfo, start: ast.expr | None) -> tuple[str, str, int] | None:
    """``(start date, schedule, runs)`` when a catching-up DAG has at least 1,000 runs to make up:
    a literal start date a year or more back and an hourly-or-faster schedule (runs rounded down to a
    power of ten, so the message and the finding id do not change every day)."""
    import datetime as _dt

    if not (isinstance(start, ast.Call) and start.args):
        return None
    parts = [a.value for a in start.args[:3] if isinstance(a, ast.Constant) and isinstance(a.value, int)]
    if len(parts) < 1 or not 1970 <= parts[0] <= 2100:
        return None
    sched = dag.kwargs.get("schedule", dag.kwargs.get("schedule_interval"))
    label = const_str(sched)
    if label is not None and label.startswith("@"):
        per_day = _RUNS_PER_DAY.get(label)
    elif label is not None:
        per_day = 24.0 if is_frequent(label) else None
    elif isinstance(sched, ast.Call) and dotted(sched.func).endswith("timedelta"):
        units = {"minutes": 1440.0, "hours": 24.0, "seconds": 86400.0}
        kw = {k.arg: k.value for k in sched.keywords}
        per_day = next(
            (
                u / v.value
                for k, u in units.items()
                if isinstance(v := kw.get(k), ast.Constant)
                and isinstance(v.value, int | float)
                and v.value > 0
            ),
            None,
        )
        label = "timedelta"
    else:
        per_day = None
    if per_day is None or per_day < 24:
        return None
    year, month, day = [*parts, 1, 1][:3]
    try:
        began = _dt.date(year, month, day)
    except ValueError:
        return None
    runs = (_dt.date.today() - began).days * per_day
    if runs < 1000:
        return None
    magnitude = 10 ** (len(str(int(runs))) - 1)
    return began.isoformat(), label or "frequent", magnitude


def _frequent(dag: DagInfo) -> bool:
    sched = dag.kwargs.get("schedule", dag.kwargs.get("schedule_interval"))
    s = const_str(sched)
    if s is not None:
        return s in PRESETS_FREQUENT or is_frequent(s)
    if isinstance(sched, ast.Call) and dotted(sched.func).endswith("timedelta"):
        kw = {k.arg: k.value for k in sched.keywords}
        if "days" in kw or "weeks" in kw:
            return False
        return any(k in kw for k in ("hours", "minutes", "seconds"))
    return False


# ------------------------------------------------------------------ observability
def check_observability(ctx: CheckContext, mod: ModuleInfo) -> None:
    for dag in mod.dags:
        kwargs, default_args = dag.kwargs, dag.default_args
        has = (
            "on_failure_callback" in kwargs
            or "on_failure_callback" in default_args
            or "email_on_failure" in kwargs
            or "email_on_failure" in default_args
            or any("on_failure_callback" in t.kwargs for t in dag.tasks)
        )
        if dag.default_args.get("email_on_failure") is not None and not _is_true(
            dag.default_args["email_on_failure"]
        ):
            has = "on_failure_callback" in dag.kwargs or "on_failure_callback" in dag.default_args
        if not has and not dag.splat:
            if dag.default_args_dynamic:
                ctx.unknown(
                    "OBS001", dag.line, dag.name, "on_failure_callback", "default_args built dynamically"
                )
            else:
                ctx.emit("OBS001", dag.line, dag.name, f"DAG '{dag.name}' has no failure notification")
        sla_nodes = [dag.default_args["sla"]] if "sla" in dag.default_args else []
        sla_nodes += [t.kwargs["sla"] for t in dag.tasks if "sla" in t.kwargs]
        if "sla_miss_callback" in dag.kwargs:
            sla_nodes.append(dag.kwargs["sla_miss_callback"])
        if ctx.airflow_major >= 3:
            if sla_nodes:
                ctx.emit(
                    "OBS002",
                    sla_nodes[0],
                    dag.name,
                    f"DAG '{dag.name}' uses sla/sla_miss_callback, removed in Airflow 3: use deadline=DeadlineAlert",
                )
            elif _is_scheduled(ctx, dag) and not dag.sets("deadline"):
                ctx.emit("OBS002", dag.line, dag.name, f"scheduled DAG '{dag.name}' has no deadline alert")
        elif _is_scheduled(ctx, dag) and not sla_nodes:
            ctx.emit("OBS002", dag.line, dag.name, f"scheduled DAG '{dag.name}' has no SLA")
        tags = dag.kwargs.get("tags")
        has_doc = (
            dag.splat
            or not _DOC_KEYS.isdisjoint(kwargs)
            or (dag.func is not None and ast.get_docstring(dag.func) is not None)
            or _doc_assigned(mod, dag)
        )
        no_tags = not dag.splat and (tags is None or (isinstance(tags, LIST_TUPLE_SET) and not tags.elts))
        if no_tags or not has_doc:
            missing = " and ".join(
                x for x, gone in (("no tags", no_tags), ("no description", not has_doc)) if gone
            )
            ctx.emit("OBS004", dag.line, dag.name, f"DAG '{dag.name}' has {missing}")
        elif ctx.config.approved_tags is not None and isinstance(tags, LIST_TUPLE_SET):
            bad = [
                s for e in tags.elts if (s := const_str(e)) is not None and s not in ctx.config.approved_tags
            ]
            if bad:
                ctx.emit("OBS004", tags, dag.name, f"DAG '{dag.name}' uses unapproved tags {bad}")
        for t in dag.tasks:
            if _writes(t) and not t.resolve("outlets", ctx.airflow_version).explicit:
                ctx.emit("OBS005", t.line, t.subject, f"task '{t.name}' writes data but declares no outlets")
    _per_dag(ctx, mod, "OBS003", "owner", ("airflow", "root", ""), "has only the default owner ('airflow')")


ALL_CHECKS: tuple[Callable[[CheckContext, ModuleInfo], None], ...] = (
    check_reliability,
    check_scheduling,
    check_performance,
    check_data_quality,
    check_security,
    check_cost,
    check_observability,
)


def review_airflow_module(ctx: CheckContext, mod: ModuleInfo) -> None:
    for check in ALL_CHECKS:
        check(ctx, mod)
