"""The rule catalogue: every rule's id, category, default severity, rationale and fix advice.

The checks live in ``airflow_checks``, ``prefect_checks`` and ``spec_checks``; this module is the
single source of the text that findings, ``dataeng pipeline rules`` and ``docs/rules/*.md`` show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dataeng_agents.core.review.models import Severity

Category = Literal[
    "reliability",
    "scheduling",
    "performance",
    "data quality",
    "security",
    "cost",
    "observability",
    "architecture",
]
Target = Literal["airflow", "prefect", "spec"]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    category: Category
    severity: Severity
    targets: tuple[Target, ...]
    rationale: str
    fix: str
    #: production-hygiene rules that the ``examples`` profile switches off
    production_only: bool = False
    references: tuple[str, ...] = ()

    @property
    def doc_path(self) -> str:
        return f"docs/rules/{self.id}.md"

    def to_markdown(self, examples: tuple[str, str, str] | None = None) -> str:
        """The rule's page; ``examples`` = (language, flagged source, not-flagged source) adds both."""
        refs = "".join(f"- {r}\n" for r in self.references)
        example = ""
        if examples is not None:
            lang, bad, good = examples
            example = (
                f"## Example\n\nFlagged:\n\n```{lang}\n{bad.strip()}\n```\n\n"
                f"Not flagged (the same code, fixed):\n\n```{lang}\n{good.strip()}\n```\n\n"
            )
        return (
            f"# {self.id}: {self.title}\n\n"
            f"| | |\n|---|---|\n| Category | {self.category} |\n| Default severity | {self.severity.value} |\n"
            f"| Applies to | {', '.join(self.targets)} |\n"
            f"| Off in the `examples` profile | {'yes' if self.production_only else 'no'} |\n\n"
            f"## Why\n\n{self.rationale}\n\n## How to fix\n\n{self.fix}\n\n{example}"
            f"## Suppress\n\nAdd `# dataeng: ignore[{self.id}]` to the reported line, list the file in the "
            f'exceptions file (`<glob> {self.id}`), or set `{self.id} = "off"` under '
            "`[tool.dataeng.review.severity]` in pyproject.toml.\n"
            + (f"\n## References\n\n{refs}" if refs else "")
        )


E, W, INFO = Severity.error, Severity.warn, Severity.info
AF: tuple[Target, ...] = ("airflow",)
PF: tuple[Target, ...] = ("prefect",)
SP: tuple[Target, ...] = ("spec",)
AFPF: tuple[Target, ...] = ("airflow", "prefect")

_RULES: list[Rule] = [
    # ---------------------------------------------------------------- reliability
    Rule(
        "REL001",
        "Task has no retries",
        "reliability",
        W,
        AF,
        "The effective `retries` (task argument, then `default_args`, then the DAG, then Airflow's "
        "`[core] default_task_retries` = 0) is 0, so one transient failure (a network blip, a rate limit, "
        "a zombie worker) fails the run.",
        "Set `retries` (2-3) and a `retry_delay` in `default_args`, and prefer `retry_exponential_backoff=True` "
        "for tasks that call external systems.",
        production_only=True,
        references=("Astronomer DAG-writing best practices: set retries",),
    ),
    Rule(
        "REL002",
        "Task has no execution_timeout",
        "reliability",
        W,
        AF,
        "Without an `execution_timeout` a hung task holds a worker slot forever (`[core] "
        "default_task_execution_timeout` is empty by default).",
        "Set `execution_timeout=timedelta(...)` in `default_args`, a small multiple of the normal runtime.",
        production_only=True,
    ),
    Rule(
        "REL003",
        "Scheduled DAG has no dagrun_timeout",
        "reliability",
        W,
        AF,
        "A stuck run of a scheduled DAG counts against `max_active_runs` and blocks the next runs.",
        "Set `dagrun_timeout=timedelta(...)` on the DAG, shorter than the schedule interval.",
        production_only=True,
    ),
    Rule(
        "REL004",
        "Sensor without an explicit timeout",
        "reliability",
        W,
        AF,
        "A sensor's default timeout is 7 days (`[sensors] default_timeout` = 604800 s): a missing upstream "
        "file is noticed a week late.",
        "Pass `timeout=` (seconds or timedelta) sized to the upstream's SLA, with `soft_fail` if skipping is OK.",
    ),
    Rule(
        "REL005",
        "now()/today() used inside a task",
        "reliability",
        E,
        AFPF,
        "A task that computes its data window from the wall clock gives a different result when it is "
        "retried or backfilled for a past date: runs are not reproducible. The same holds for "
        "`{{ macros.datetime.now() }}` in a templated argument. A clock that only stamps something "
        "(`print(now())`, `entry.updated_at = now().isoformat()`) is reported one step lower, as a warning.",
        "Use the run's logical date: `{{ ds }}`, `{{ data_interval_start }}` in templates, or the "
        "`logical_date` / `data_interval_start` context values (Prefect: a flow parameter).",
    ),
    Rule(
        "REL006",
        "Plain INSERT without upsert or overwrite",
        "reliability",
        W,
        AFPF,
        "A task whose SQL is a plain `INSERT INTO` appends the same rows again on every retry or rerun.",
        "Write idempotently: `MERGE`, `INSERT ... ON CONFLICT`, delete-then-insert of the run's partition, "
        "or `INSERT OVERWRITE` of the partition.",
    ),
    Rule(
        "REL007",
        "Scheduled SQL not keyed to the run",
        "reliability",
        W,
        AF,
        "A scheduled task whose SQL reads 'the latest data' (no `{{ ds }}`, `logical_date` or "
        "`data_interval_*` in it) cannot be rerun for a past interval.",
        "Filter by the run's interval: `WHERE ts >= '{{ data_interval_start }}' AND ts < '{{ data_interval_end }}'`.",
    ),
    Rule(
        "REL008",
        "Broad except that swallows the error",
        "reliability",
        W,
        AFPF,
        "`except Exception:` or a bare `except:` in a task body that does not re-raise turns a failure into "
        "a success: retries never fire and downstream tasks run on bad data. A warning, not an error: "
        "deliberate per-record error handling (log and skip one bad record) has the same shape.",
        "Catch the specific exception you can handle, or re-raise (`raise`) after logging.",
    ),
    Rule(
        "REL009",
        "Local file handed from one task to another",
        "reliability",
        W,
        AF,
        "A file written to a local path in one task and read in another breaks as soon as the two tasks run "
        "on different workers (Celery, Kubernetes).",
        "Exchange data through object storage (`ObjectStoragePath`), a table, or a small XCom value.",
    ),
    Rule(
        "REL010",
        "ALL_DONE/teardown leaf without a failure watcher",
        "reliability",
        W,
        AF,
        "When the last task runs with `trigger_rule=ALL_DONE` (a cleanup or teardown), the DAG run is marked "
        "successful even though an upstream task failed.",
        "Add a watcher task with `trigger_rule=ONE_FAILED` downstream of every task that raises, or mark "
        "cleanup tasks as teardowns (`as_teardown`).",
    ),
    Rule(
        "REL012",
        "Blocking dependency on past runs without alerting",
        "reliability",
        W,
        AF,
        "`depends_on_past=True` with `wait_for_downstream=True` on an hourly-or-faster DAG stops every later "
        "run after one failure; without a failure callback or email nobody is told, and the backlog grows "
        "silently until a consumer notices stale data.",
        "Add `on_failure_callback` (or `email_on_failure`) to the DAG's `default_args`, or drop "
        "`depends_on_past` where the runs do not build on each other.",
    ),
    Rule(
        "REL011",
        "Non-atomic task (extract and load in one task)",
        "reliability",
        INFO,
        AFPF,
        "A task that both reads from a source and writes to a sink cannot be rerun step by step and leaves "
        "partial results when it fails half-way.",
        "Split extract, transform and load into separate tasks with a staging location between them.",
    ),
    # ---------------------------------------------------------------- scheduling
    Rule(
        "SCH001",
        "DAG has no explicit schedule",
        "scheduling",
        E,
        AF,
        "The default schedule changed from daily (Airflow 2) to `None` (Airflow 3): a DAG that relies on it "
        "silently stops (or starts) running after an upgrade.",
        "Always pass `schedule=` (a cron string, a timedelta, an Asset, or `None`).",
    ),
    Rule(
        "SCH002",
        "Dynamic start_date or runtime-varying DAG argument",
        "scheduling",
        E,
        AF,
        "A `start_date` computed from the clock (`datetime.now()`, `days_ago()`) or any DAG/task argument "
        "that changes on every parse makes scheduling unpredictable and creates a new DAG version per parse.",
        'Use a fixed `pendulum.datetime(2024, 1, 1, tz="UTC")`; compute time-dependent values inside tasks '
        "from the run's context.",
    ),
    Rule(
        "SCH003",
        "catchup not set explicitly",
        "scheduling",
        W,
        AF,
        "The default of `catchup` flipped from True (Airflow 2) to False (Airflow 3, "
        "`[scheduler] catchup_by_default`), so the same DAG backfills or not depending on the version.",
        "Pass `catchup=False` (or True, with `max_active_runs`) on every scheduled DAG.",
    ),
    Rule(
        "SCH004",
        "catchup=True without max_active_runs",
        "scheduling",
        W,
        AF,
        "With catchup on, unpausing the DAG schedules every missed interval at once (up to "
        "`max_active_runs_per_dag` = 16) and floods the sources.",
        "Set `max_active_runs` (1-3) on DAGs that catch up.",
    ),
    Rule(
        "SCH005",
        "Invalid cron or removed schedule argument",
        "scheduling",
        E,
        AF,
        "An invalid cron expression, or `schedule_interval=` / `timetable=` (removed in Airflow 3), means the "
        "DAG fails to load or never schedules.",
        "Use `schedule=` with a valid 5-field cron expression, preset, timedelta or timetable.",
    ),
    Rule(
        "SCH006",
        "Duplicate dag_id",
        "scheduling",
        E,
        AF,
        "Two DAGs with the same `dag_id` silently replace each other: which one runs depends on parse order.",
        "Give every DAG a unique `dag_id` (for generated DAGs include the generating key).",
    ),
    Rule(
        "SCH007",
        "Duplicate task_id, cycle or unbound task",
        "scheduling",
        E,
        AF,
        "A duplicated `task_id`, a dependency cycle or an operator created outside any DAG makes the file fail "
        "to import or produces a task that never runs.",
        "Use unique task ids, remove the cycle, and create every operator inside `with DAG(...)` or with `dag=`.",
    ),
    Rule(
        "SCH008",
        "Import path removed or deprecated in the target Airflow version",
        "scheduling",
        W,
        AF,
        "Airflow 3 moved the DAG authoring API to `airflow.sdk` and the core operators to "
        "`airflow.providers.standard`; old paths are deprecated or gone and break on upgrade.",
        "Import `DAG`, `dag`, `task`, `Asset` from `airflow.sdk` and operators from "
        "`airflow.providers.standard.*` (ruff AIR301/AIR311 automate much of this).",
    ),
    Rule(
        "SCH009",
        "Naive datetime start_date",
        "scheduling",
        INFO,
        AF,
        "A `start_date` without a time zone is interpreted in the configured default zone, which makes "
        "schedules shift with DST or with a config change.",
        'Use `pendulum.datetime(..., tz="UTC")` or pass `tzinfo=`.',
    ),
    Rule(
        "SCH010",
        "Catch-up backlog of thousands of runs",
        "scheduling",
        W,
        AF,
        "`catchup=True` with a `start_date` a year or more back on an hourly-or-faster schedule creates "
        "thousands of DAG runs the moment the DAG is deployed or unpaused; they queue behind each other and "
        "crowd out every other DAG of the deployment.",
        "Move `start_date` to when the data is needed from, set `catchup=False` and backfill the history "
        "deliberately (`airflow backfill create` with a bounded range), or cap `max_active_runs`.",
    ),
    # ---------------------------------------------------------------- performance
    Rule(
        "PERF001",
        "Network or database call at parse time",
        "performance",
        E,
        AF,
        "Top-level code runs on every parse of the file by the dag-processor (every 30 s by default): a hook, "
        "a connection lookup or an HTTP request there slows every DAG and hammers the source.",
        "Move the call into a task; pass configuration through Jinja templates or params.",
    ),
    Rule(
        "PERF002",
        "Variable.get() outside a task",
        "performance",
        W,
        AF,
        "`Variable.get()` at module level or in operator arguments queries the metadata database on every "
        "parse.",
        "Use the Jinja form `{{ var.value.name }}` in templated fields, or call Variable.get inside the task.",
    ),
    Rule(
        "PERF003",
        "Expensive import at module level",
        "performance",
        W,
        AF,
        "Heavy libraries (pandas, numpy, torch, tensorflow, sklearn, pyspark ...) imported at the top of a DAG "
        "file are imported on every parse.",
        "Import them inside the task function that needs them.",
    ),
    Rule(
        "PERF004",
        "DAG file too slow or too big to parse",
        "performance",
        W,
        AF,
        "Files with many DAGs, very many tasks, or a parse time over budget (runtime mode) delay scheduling "
        "and hit `dagbag_import_timeout`.",
        "Split the file, reduce top-level work, and use dynamic task mapping instead of huge static DAGs.",
    ),
    Rule(
        "PERF005",
        "Tasks generated in a loop over parse-time data",
        "performance",
        W,
        AF,
        "A `for` loop over a database/API/Variable result creating tasks runs that lookup on every parse and "
        "changes the DAG's shape from parse to parse.",
        "Use dynamic task mapping (`.expand()`) over the result of an upstream task.",
    ),
    Rule(
        "PERF006",
        "Sensor in poke mode holds a worker slot",
        "performance",
        W,
        AF,
        'A sensor in the default `mode="poke"` occupies a worker slot for its whole wait.',
        'Pass `deferrable=True` (frees the slot, uses the triggerer) or `mode="reschedule"`.',
    ),
    Rule(
        "PERF007",
        "Large object passed through XCom",
        "performance",
        W,
        AF,
        "Returning a DataFrame, a file's content or `.to_json()` of a dataset from a task, or "
        "`xcom_push` of a whole query result (`get_records`, `fetchall`), stores it in the metadata "
        "database and slows the scheduler. (Prefect task results are not checked: passing DataFrames "
        "between Prefect tasks is idiomatic and stays in memory unless results are persisted.)",
        "Write the data to object storage or a table and return its path / key.",
    ),
    Rule(
        "PERF008",
        "Many tasks hit the same connection without a pool",
        "performance",
        INFO,
        AF,
        "Five or more tasks using the same connection with neither a `pool` nor `max_active_tasks` can open "
        "up to 128 (default_pool) concurrent sessions against the source.",
        "Create a pool sized for the source and pass `pool=` to those tasks, or set `max_active_tasks`.",
    ),
    # ---------------------------------------------------------------- data quality
    Rule(
        "DQ001",
        "Writes data but has no quality check",
        "data quality",
        W,
        AF,
        "A DAG that writes a table or an asset without a check task downstream ships bad data silently.",
        "Add a check task after the write: `SQLColumnCheckOperator`, `SQLTableCheckOperator`, "
        "`SQLCheckOperator`, Great Expectations, Soda, or `dbt test` / `dbt build`.",
        production_only=True,
    ),
    Rule(
        "DQ002",
        "Keyed source without a primary key",
        "data quality",
        W,
        SP,
        "A source whose change pattern is upsert or CDC but declares no primary key cannot be deduplicated or "
        "merged: the sink's grain is undefined.",
        "Declare `primary_key: [..]` for the source and test its uniqueness at the sink.",
    ),
    Rule(
        "DQ003",
        "Consumed dataset without a contract",
        "data quality",
        W,
        SP,
        "A sink read by external consumers without an enforced contract lets breaking changes reach them.",
        "Set `contract: true` on the sink (dbt `contract: {enforced: true}` or an ODCS data contract).",
    ),
    Rule(
        "DQ004",
        "SELECT * in task SQL",
        "data quality",
        INFO,
        AF,
        "`SELECT *` lets an upstream schema change (a new or renamed column) propagate silently into the "
        "target table.",
        "List the columns explicitly.",
    ),
    Rule(
        "DQ005",
        "Sink without expectations",
        "data quality",
        W,
        SP,
        "A sink without declared expectations (not-null, unique, accepted values, row count) has no "
        "enforced quality rule.",
        "Declare `expectations:` on the sink; use `action: fail` for critical columns.",
    ),
    # ---------------------------------------------------------------- security
    Rule(
        "SEC001",
        "Hard-coded secret",
        "security",
        E,
        AFPF,
        "A password, token, API key or a URI with `user:password@` in a DAG or flow file leaks through the "
        "repository and the UI's code view.",
        "Use an Airflow Connection or a secrets backend (Prefect: a `Secret` block) and reference it by id.",
    ),
    Rule(
        "SEC002",
        "Connection secret resolved at parse time",
        "security",
        E,
        AF,
        "`BaseHook.get_connection(...).password` evaluated at module level queries the database per parse "
        "and puts the secret into rendered templates and task-instance details.",
        "Resolve the connection inside the task (a hook does it for you).",
    ),
    Rule(
        "SEC003",
        "SQL built with string formatting",
        "security",
        W,
        AFPF,
        "SQL assembled with f-strings, `%` or `.format()` is open to injection and defeats query caching.",
        "Use bind parameters (`parameters=` on SQL operators) or Jinja with trusted values only.",
    ),
    Rule(
        "SEC004",
        "dag_run.conf or params templated into a shell command",
        "security",
        E,
        AF,
        "`{{ dag_run.conf[...] }}` or `{{ params... }}` inside `bash_command` is pasted into the shell without "
        "escaping: anyone who can trigger the DAG can run commands on the worker.",
        'Pass the values through `env=` and quote them in the script ("$VAR").',
    ),
    Rule(
        "SEC005",
        "PII without a handling policy",
        "security",
        E,
        SP,
        "A pipeline that carries personal data without masking, hashing or tokenisation copies it into every "
        "downstream store.",
        "Declare `pii.handling` (mask, hash, tokenize or drop) and the affected fields.",
    ),
    Rule(
        "SEC006",
        "Secret written to the logs",
        "security",
        W,
        AFPF,
        '`print(password)`, `logger.info(f"...{token}")` or a connection URI with its password formatted '
        "into a log line puts the secret into task logs: kept in remote log storage and shown to everyone "
        "who can read the run in the UI.",
        "Log that the value is set (or its length, or a masked form), never the value; Airflow masks "
        "Connection and Variable secrets, not values copied into your own strings.",
    ),
    # ---------------------------------------------------------------- cost
    Rule(
        "COST001",
        "Virtualenv rebuilt on a frequent schedule",
        "cost",
        INFO,
        AF,
        "`PythonVirtualenvOperator` / `@task.virtualenv` builds a virtualenv on every run; on an hourly or "
        "faster schedule that is mostly wasted worker time.",
        "Use `@task.external_python` with a pre-built venv, `@task.docker`, or a KubernetesPodOperator image.",
    ),
    Rule(
        "COST002",
        "Full rebuild of a table on every run",
        "cost",
        INFO,
        AF,
        "`CREATE OR REPLACE TABLE ... AS SELECT` or `TRUNCATE` + reload on a schedule recomputes all of "
        "history every run: cost grows with the table.",
        "Process only the run's interval (incremental model / MERGE of `{{ data_interval_start }}` .. end).",
    ),
    Rule(
        "COST003",
        "Streaming stack for a daily freshness need",
        "cost",
        W,
        SP,
        "A continuously running streaming pipeline for consumers that need data once a day pays for idle "
        "brokers and stream processors around the clock.",
        "Use a scheduled batch or micro-batch pipeline; keep streaming for sub-hour SLOs.",
    ),
    # ---------------------------------------------------------------- observability
    Rule(
        "OBS001",
        "No failure notification",
        "observability",
        W,
        AFPF,
        "Without `on_failure_callback` (a Notifier) or `email_on_failure` on the DAG or in `default_args` "
        "(Prefect: `on_failure` hooks) failures go unnoticed until a consumer complains.",
        "Add `on_failure_callback=` with a Slack/email/PagerDuty notifier in `default_args`.",
        production_only=True,
    ),
    Rule(
        "OBS002",
        "SLA on Airflow 3 / no lateness monitoring",
        "observability",
        W,
        AF,
        "`sla=` and `sla_miss_callback` were removed in Airflow 3 (they are ignored); a late run is detected by "
        "nobody.",
        "On Airflow 3 use `deadline=DeadlineAlert(...)`; on Airflow 2 keep `sla` on the critical tasks.",
        production_only=True,
    ),
    Rule(
        "OBS003",
        "Owner missing or default",
        "observability",
        W,
        AF,
        "A task owned by `airflow` (the default) has no accountable team for alerts and cost allocation.",
        "Set `owner` to a team in `default_args`.",
        production_only=True,
    ),
    Rule(
        "OBS004",
        "DAG without tags or description",
        "observability",
        INFO,
        AF,
        "Tags and a description (`description=` or `doc_md`) are how people find and operate a DAG in the UI.",
        "Add `tags=[...]` and `doc_md=__doc__` (or `description=`).",
        production_only=True,
    ),
    Rule(
        "OBS005",
        "Writes data without declaring outlets",
        "observability",
        INFO,
        AF,
        "A task that writes a table without `outlets=[Asset(...)]` leaves lineage and data-aware scheduling "
        "blind to it.",
        'Declare `outlets=[Asset("warehouse://db/table")]` on writing tasks.',
        production_only=True,
    ),
    # ---------------------------------------------------------------- prefect
    Rule(
        "PFT001",
        "Prefect task or flow without retries",
        "reliability",
        W,
        PF,
        "Prefect tasks and flows default to `retries=0`: one transient failure fails the flow run.",
        "Pass `retries=` and `retry_delay_seconds=` (a list, or `exponential_backoff(...)`) to `@task`/`@flow`.",
        production_only=True,
    ),
    Rule(
        "PFT002",
        "Prefect task or flow without timeout",
        "reliability",
        W,
        PF,
        "Without `timeout_seconds` a hung task or flow runs forever and holds its worker.",
        "Pass `timeout_seconds=` to `@task` and `@flow`.",
        production_only=True,
    ),
    Rule(
        "PFT003",
        "Retried flow whose tasks neither cache nor persist results",
        "reliability",
        W,
        PF,
        "When a flow with retries is retried, every task runs again unless its result is cached and persisted: "
        "already-loaded data is loaded twice.",
        "Give the expensive/side-effecting tasks `cache_policy=INPUTS + TASK_SOURCE` (or `cache_key_fn`) "
        "and `persist_result=True`.",
    ),
    Rule(
        "PFT004",
        "Unbounded task mapping without a concurrency limit",
        "performance",
        W,
        PF,
        "`.map()` / `.submit()` in a loop over an input of unknown size submits everything at once and can "
        "overwhelm the source system.",
        'Wrap the calls in `concurrency("name", occupy=1)` / `rate_limit(...)`, or tag the task and set a '
        "tag-based concurrency limit.",
    ),
    Rule(
        "PFT005",
        "Caching without result persistence",
        "reliability",
        W,
        PF,
        "A task with a `cache_policy`/`cache_key_fn` but `persist_result=False` cannot read its cache in "
        "another process: caching silently does nothing.",
        "Remove `persist_result=False` (caching persists by default) or drop the cache policy.",
    ),
    # ---------------------------------------------------------------- architecture (spec)
    Rule(
        "ARC001",
        "Latency does not fit the freshness SLO",
        "architecture",
        W,
        SP,
        "The planned processing mode cannot meet the freshness SLO: a batch interval plus runtime longer "
        "than the SLO.",
        "Pick a mode whose end-to-end latency is below the SLO (micro-batch or streaming), or relax the SLO.",
    ),
    Rule(
        "ARC002",
        "Stream retention shorter than the reprocessing horizon",
        "architecture",
        E,
        SP,
        "A Kappa-style pipeline reprocesses by replaying the log; if the log keeps less history than the "
        "reprocessing horizon, history cannot be rebuilt.",
        "Extend the topic retention (or tiered storage) to the horizon, or keep a batch path over the lake "
        "(Lambda / Lakehouse).",
    ),
    Rule(
        "ARC003",
        "Exactly-once claimed without the means",
        "architecture",
        E,
        SP,
        "Exactly-once delivery needs a replayable source with committed offsets and a transactional or "
        "idempotent (upsert-keyed) sink; otherwise retries duplicate rows.",
        "Make every source replayable and every sink idempotent (`upsert_key`) or transactional, or declare "
        "`at_least_once` and deduplicate downstream.",
    ),
    Rule(
        "ARC004",
        "Event-time windows without watermark",
        "architecture",
        W,
        SP,
        "Event-time windowed aggregations without a watermark / allowed lateness either keep unbounded state "
        "or drop late rows silently.",
        "Declare `transformations.watermark_minutes` (allowed lateness) and a late-data policy.",
    ),
    Rule(
        "ARC005",
        "Schema evolution without compatibility policy",
        "architecture",
        W,
        SP,
        "Sources whose schema evolves need a compatibility mode (BACKWARD, FORWARD, FULL) and a table format "
        "that evolves in place; otherwise changes break consumers.",
        "Set `schema_evolution.compatibility` (default BACKWARD) and use Iceberg/Delta or a registry-backed "
        "stream.",
    ),
    Rule(
        "ARC006",
        "Backfill without idempotent writes",
        "architecture",
        W,
        SP,
        "A reprocessing horizon with sinks that neither overwrite partitions nor merge on a key duplicates data "
        "on every backfill.",
        "Write by partition overwrite or MERGE on `upsert_key`, and cap backfill concurrency.",
    ),
    Rule(
        "ARC007",
        "Large table without partitioning",
        "architecture",
        INFO,
        SP,
        "A large, growing sink without a partition key aligned with the schedule grain makes every backfill and "
        "most queries scan the whole table.",
        "Partition by the event date (`partition_by: [event_date]`), or use Iceberg hidden partitioning.",
    ),
    Rule(
        "ARC008",
        "No staging layer between source and sink",
        "architecture",
        INFO,
        SP,
        "Loading straight from a source into the serving tables means extract and load cannot be rerun "
        "separately and every retry hits the source again.",
        "Land raw data in a staging/bronze area first (`staging: true`).",
    ),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}
assert len(RULES) == len(_RULES), "duplicate rule id"


def get_rule(rule_id: str) -> Rule:
    return RULES[rule_id]


def rules_for(target: Target) -> list[Rule]:
    return [r for r in _RULES if target in r.targets]


def write_rule_docs(out_dir: str, examples_dir: str | None = None) -> list[str]:
    """Write one Markdown page per rule plus an index; return the written paths.

    :param examples_dir: a folder with ``<RULE>/bad.<ext>.txt`` and ``<RULE>/good.<ext>.txt`` per rule
        (the repository's ``tests/core/fixtures/review``, which the rule tests run): each page then shows
        the code the rule flags and the fixed code it does not flag.
    """
    from pathlib import Path

    def examples(rule_id: str) -> tuple[str, str, str] | None:
        if examples_dir is None:
            return None
        folder = Path(examples_dir) / rule_id
        bad, good = sorted(folder.glob("bad.*.txt")), sorted(folder.glob("good.*.txt"))
        if not bad or not good:
            return None
        ext = bad[0].name.split(".")[1]
        lang = {"py": "python", "yaml": "yaml", "yml": "yaml", "json": "json"}.get(ext, "")
        return lang, bad[0].read_text(encoding="utf-8"), good[0].read_text(encoding="utf-8")

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    lines = [
        "# Review rules\n",
        "| Id | Title | Category | Default severity | Applies to |",
        "|---|---|---|---|---|",
    ]
    for rule in _RULES:
        page = root / f"{rule.id}.md"
        page.write_text(rule.to_markdown(examples(rule.id)), encoding="utf-8")
        written.append(str(page))
        lines.append(
            f"| [{rule.id}]({rule.id}.md) | {rule.title} | {rule.category} | {rule.severity.value} | "
            f"{', '.join(rule.targets)} |"
        )
    index = root / "index.md"
    index.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(str(index))
    return written
