"""Render a runnable project for a pipeline spec and its design.

The project (``dataeng pipeline scaffold SPEC --out DIR``)::

    README.md  spec.yaml  requirements.txt  pyproject.toml
    <pkg>/            settings, extract_load (per source kind), quality, alerts, sample_data, pipeline_config
    dags/<name>.py    Airflow DAG: load each source -> dbt build (cosmos if installed) -> checks per sink
    flows/<name>_flow.py  Prefect flow: the same steps as tasks
    dbt/              sources with freshness, staging views, incremental marts keyed on event time, tests
    streaming/        Spark Structured Streaming job with checkpointing and a dead-letter topic (streams)
    connect/          Kafka Connect sink configuration with a dead-letter queue (streams)

Static files are templates in ``templates/*.j2`` (``@@name@@`` placeholders, no template engine);
what depends on the spec (config, SQL, DAG, flow) is built here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dataeng_agents.core.design.design import (
    PipelineDesign,
    design_pipeline,
    partition_columns,
    schedule_minutes,
    table_type,
)
from dataeng_agents.core.pipeline_spec import PipelineSpec, Sink, Source, load_spec

STREAMING_ARCHS = {"kappa", "lambda"}
PRESET_CRON = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}


def ident(name: str) -> str:
    out = re.sub(r"\W+", "_", name).strip("_").lower() or "step"
    return out if not out[0].isdigit() else f"p_{out}"


def _template(template: str, **values: str) -> str:
    text = (
        resources.files("dataeng_agents.core.scaffold.templates")
        .joinpath(template)
        .read_text(encoding="utf-8")
    )
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise ValueError(
            f"template {template}: unreplaced placeholder near {text[text.index('@@') :][:30]!r}"
        )
    return text


@dataclass
class Project:
    """What the scaffold writes: relative path -> file content."""

    name: str
    package: str
    architecture: str
    files: dict[str, str]

    def write(self, out: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write every file under ``out``; refuses to overwrite a changed file unless ``overwrite``."""
        from dataeng_agents.core.errors import InputError

        root = Path(out)
        clashes = [
            p
            for p in self.files
            if (root / p).exists() and (root / p).read_text(encoding="utf-8") != self.files[p]
        ]
        if clashes and not overwrite:
            raise InputError(
                "out",
                f"{root} already holds different versions of {', '.join(sorted(clashes)[:5])} "
                "(use --force to overwrite)",
            )
        written: list[Path] = []
        for rel, text in sorted(self.files.items()):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            written.append(path)
        return written


# --- the data model of the generated project ------------------------------------------------------------


def _sinks_of(spec: PipelineSpec, src: Source) -> list[Sink]:
    return [k for k in spec.sinks if src in spec.sources_of(k)]


def _sink_keys(spec: PipelineSpec, sink: Sink) -> list[str]:
    if sink.upsert_key:
        return list(sink.upsert_key)
    srcs = spec.sources_of(sink)
    return list(srcs[0].primary_key) if len(srcs) == 1 else []


def _sink_columns(spec: PipelineSpec, sink: Sink) -> list[str]:
    cols = _sink_keys(spec, sink) + [e.column for e in sink.expectations if e.column]
    return list(dict.fromkeys(ident(c) for c in cols))


def _source_columns(spec: PipelineSpec, src: Source) -> list[str]:
    cols = [*src.primary_key, *([src.event_time_field] if src.event_time_field else [])]
    for sink in _sinks_of(spec, src):
        cols += _sink_columns(spec, sink)
    if src.kind == "cdc" or src.change_pattern == "cdc":
        cols.append("op")  # c / u / d of the change event (Debezium)
    cols.append("payload")
    return list(dict.fromkeys(ident(c) for c in cols))


def _deleted_flag(src: Source) -> bool:
    return src.kind == "cdc" or src.change_pattern in {"cdc", "snapshot"} or bool(src.hard_deletes)


def _time_column(spec: PipelineSpec, sink: Sink) -> str:
    times = [s.event_time_field for s in spec.sources_of(sink) if s.event_time_field]
    return ident(times[0]) if times else "_loaded_at"


def table_sinks(spec: PipelineSpec) -> list[Sink]:
    """Sinks the dbt project builds (a ``stream`` sink is written by the streaming job)."""
    return [k for k in spec.sinks if k.kind != "stream"]


def pipeline_config(spec: PipelineSpec, design: PipelineDesign) -> str:
    sources: dict[str, Any] = {}
    for src in spec.sources:
        accepted = {
            ident(e.column): e.values
            for k in _sinks_of(spec, src)
            for e in k.expectations
            if e.check == "accepted_values" and e.column and e.values
        }
        unique = [
            ident(e.column)
            for k in _sinks_of(spec, src)
            for e in k.expectations
            if e.check == "unique" and e.column
        ]
        unique += [c for k in _sinks_of(spec, src) for c in _sink_keys(spec, k)]
        sources[ident(src.name)] = {
            "kind": src.kind,
            "table": ident(src.topic or src.name),
            "endpoint": src.topic or ident(src.name),
            "change_pattern": src.change_pattern,
            "primary_key": [ident(k) for k in src.primary_key],
            "event_time_field": ident(src.event_time_field) if src.event_time_field else None,
            "hard_deletes": bool(src.hard_deletes),
            "columns": _source_columns(spec, src),
            "accepted_values": accepted,
            "unique_columns": sorted(set(unique)),
        }
    sinks: dict[str, Any] = {}
    for sink in table_sinks(spec):
        sinks[ident(sink.name)] = {
            "keys": [ident(k) for k in _sink_keys(spec, sink)],
            "time_column": _time_column(spec, sink),
            "table_type": table_type(sink, spec),
            "sources": [ident(s.name) for s in spec.sources_of(sink)],
            "freshness_minutes": spec.freshness_slo_minutes,
        }
    interval = schedule_minutes(design.schedule)
    spacing = max(0.5, min(spec.freshness_slo_minutes / 2, 60.0, interval / 4))
    return (
        '"""What the spec declares, as the generated code reads it (regenerate rather than edit)."""\n\n'
        "from __future__ import annotations\n\nfrom typing import Any\n\n"
        f"ARCHITECTURE = {design.recommendation!r}\n"
        f"SCHEDULE = {design.schedule!r}\n"
        f"INTERVAL_MINUTES = {interval}\n"
        f"FRESHNESS_SLO_MINUTES = {spec.freshness_slo_minutes!r}\n"
        "#: sample data: one record per this many minutes (fresh enough for the SLO at the interval end)\n"
        f"SPACING_MINUTES = {spacing!r}\n"
        f"SOURCES: dict[str, dict[str, Any]] = {_py(sources)}\n"
        f"SINKS: dict[str, dict[str, Any]] = {_py(sinks)}\n"
    )


def _py(obj: Any) -> str:
    text = json.dumps(obj, indent=4, sort_keys=False)
    return text.replace(": null", ": None").replace(": true", ": True").replace(": false", ": False")


# --- dbt -------------------------------------------------------------------------------------------------


def _stg_sql(spec: PipelineSpec, src: Source) -> str:
    name = ident(src.name)
    cols = _source_columns(spec, src)
    etf = ident(src.event_time_field) if src.event_time_field else None
    select = [f"cast({c} as timestamp) as {c}" if c == etf else f"cast({c} as varchar) as {c}" for c in cols]
    if src.kind in {"api", "saas"}:
        loaded = "cast(to_timestamp(cast(_dlt_load_id as double precision)) as timestamp) as _loaded_at"
    else:
        loaded = "cast(_loaded_at as timestamp) as _loaded_at"
    order = f"{etf} desc, _loaded_at desc" if etf else "_loaded_at desc"
    keys = [ident(k) for k in src.primary_key]
    lines = [
        f"-- staging of {src.name} ({src.kind}, {src.change_pattern}): typed, one row per key (latest version)"
    ]
    if src.change_pattern == "snapshot":
        lines += [
            "with latest as (",
            f"    select * from {{{{ source('raw', '{name}') }}}}",
            f"    where _snapshot_at = (select max(_snapshot_at) from {{{{ source('raw', '{name}') }}}})",
            "),",
        ]
        base = "latest"
    else:
        lines.append("with")
        base = f"{{{{ source('raw', '{name}') }}}}"
    deleted = "false"
    if src.kind == "cdc" or src.change_pattern == "cdc":
        deleted = "coalesce(op = 'd', false)"
    lines += [
        "typed as (",
        "    select",
        "        " + ",\n        ".join([*select, loaded]),
        f"    from {base}",
        ")",
    ]
    if keys:
        lines[-1] = "),"
        lines += [
            "ranked as (",
            f"    select *, row_number() over (partition by {', '.join(keys)} order by {order}) as _rn",
            "    from typed",
            ")",
        ]
        final = "ranked"
        where = "where r._rn = 1"
    else:
        final, where = "typed", ""
    if src.hard_deletes and keys and src.kind == "database" and src.change_pattern != "snapshot":
        on = " and ".join(f"k.{k} = r.{k}" for k in keys)
        deleted = f"(k.{keys[0]} is null)"
        lines += [
            f"select r.*, {deleted} as _is_deleted from {final} r",
            f"left join {{{{ source('raw', '{name}__keys') }}}} k on {on}",
            where,
        ]
    else:
        lines += [f"select r.*, {deleted} as _is_deleted from {final} r", where]
    return "\n".join(line for line in lines if line != "") + "\n"


def _mart_sql(spec: PipelineSpec, sink: Sink) -> str:
    keys = [ident(k) for k in _sink_keys(spec, sink)]
    cols = _sink_columns(spec, sink)
    time_col = _time_column(spec, sink)
    part, _why = partition_columns(sink, spec)
    strategy = "delete+insert" if keys else "append"
    snapshot_only = all(s.change_pattern == "snapshot" for s in spec.sources_of(sink))
    if snapshot_only:  # the newest snapshot is the whole table: rebuilt each run, history in dbt/snapshots
        config = ["materialized='table'"]
    else:
        config = [
            "materialized='incremental'",
            f"incremental_strategy='{strategy}'",
            "on_schema_change='append_new_columns'",
        ]
        if keys:
            config.insert(1, f"unique_key={keys!r}")
    unions = []
    for src in spec.sources_of(sink):
        src_time = ident(src.event_time_field) if src.event_time_field else "_loaded_at"
        sel = [c for c in cols if c != time_col]
        unions.append(
            "    select "
            + ", ".join(
                [
                    *sel,
                    f"{src_time} as {time_col}" if src_time != time_col else time_col,
                    f"'{ident(src.name)}' as _source",
                    "_is_deleted",
                ]
            )
            + f"\n    from {{{{ ref('stg_{ident(src.name)}') }}}}"
        )
    lines = [
        f"-- {sink.name}: {table_type(sink, spec)} table, "
        + (f"partitioned by {', '.join(part)} in the warehouse" if part else "not partitioned")
        + f"; incremental on {time_col}"
        + (f", one row per {', '.join(keys)}" if keys else ""),
        "{{ config(" + ", ".join(config) + ") }}",
        "",
        "with unioned as (",
        "\n    union all\n".join(unions),
        "),",
        "new_rows as (",
        "    select * from unioned",
        "    {% if is_incremental() %}",
        "    -- reprocess a lookback window so late events and re-delivered intervals replace their rows",
        f"    where {time_col} >= (select coalesce(max({time_col}), cast('1900-01-01' as timestamp)) from {{{{ this }}}})"
        + (" - interval '{{ var(\"lookback_hours\", 3) }} hours'" if keys else "")
        + (" or _is_deleted  -- a delete does not move the event time" if keys else ""),
        "    {% endif %}",
        ")",
    ]
    if keys:
        lines[-1] = "),"
        lines += [
            "ranked as (",
            f"    select *, row_number() over (partition by {', '.join(keys)} order by {time_col} desc) as _rn",
            "    from new_rows",
            ")",
            f"select {', '.join([*cols, time_col] if time_col not in cols else cols)}, _source, _is_deleted"
            " from ranked where _rn = 1",
        ]
    else:
        lines.append(
            f"select {', '.join([*cols, time_col] if time_col not in cols else cols)}, _source, _is_deleted"
            " from new_rows"
        )
    return "\n".join(lines) + "\n"


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, width=110)


def dbt_files(spec: PipelineSpec, design: PipelineDesign) -> dict[str, str]:
    project = ident(spec.name)
    wh = design.cost.warehouse
    files: dict[str, str] = {}
    files["dbt/dbt_project.yml"] = _yaml(
        {
            "name": project,
            "version": "1.0.0",
            "profile": project,
            "config-version": 2,
            "model-paths": ["models"],
            "snapshot-paths": ["snapshots"],
            "macro-paths": ["macros"],
            "test-paths": ["tests"],
            "clean-targets": ["target", "dbt_packages"],
            "vars": {"lookback_hours": 3},
            "models": {
                project: {
                    "staging": {"+materialized": "view", "+schema": "staging"},
                    "marts": {"+schema": "analytics"},
                }
            },
            "snapshots": {project: {"+schema": "snapshots"}},
        }
    )
    outputs: dict[str, Any] = {
        "duckdb": {
            "type": "duckdb",
            "path": "{{ env_var('DBT_DUCKDB_PATH', 'warehouse.duckdb') }}",
            "threads": 1,
        },
        "postgres": {
            "type": "postgres",
            "host": "{{ env_var('DBT_PG_HOST', 'localhost') }}",
            "port": "{{ env_var('DBT_PG_PORT', '5432') | as_number }}",
            "user": "{{ env_var('DBT_PG_USER', 'postgres') }}",
            "password": "{{ env_var('DBT_PG_PASSWORD', '') }}",
            "dbname": "{{ env_var('DBT_PG_DBNAME', 'postgres') }}",
            "schema": "public",
            "threads": 2,
        },
    }
    production = {
        "snowflake": {
            "type": "snowflake",
            "account": "{{ env_var('SNOWFLAKE_ACCOUNT') }}",
            "user": "{{ env_var('SNOWFLAKE_USER') }}",
            "password": "{{ env_var('SNOWFLAKE_PASSWORD') }}",
            "role": "{{ env_var('SNOWFLAKE_ROLE', 'TRANSFORMER') }}",
            "database": "{{ env_var('SNOWFLAKE_DATABASE') }}",
            "warehouse": "{{ env_var('SNOWFLAKE_WAREHOUSE') }}",
            "schema": "analytics",
            "threads": 4,
        },
        "bigquery": {
            "type": "bigquery",
            "method": "oauth",
            "project": "{{ env_var('GCP_PROJECT') }}",
            "dataset": "analytics",
            "location": "{{ env_var('BQ_LOCATION', 'US') }}",
            "threads": 4,
        },
        "redshift": {
            "type": "redshift",
            "host": "{{ env_var('REDSHIFT_HOST') }}",
            "port": 5439,
            "user": "{{ env_var('REDSHIFT_USER') }}",
            "password": "{{ env_var('REDSHIFT_PASSWORD') }}",
            "dbname": "{{ env_var('REDSHIFT_DB') }}",
            "schema": "analytics",
            "threads": 4,
        },
        "databricks": {
            "type": "databricks",
            "host": "{{ env_var('DATABRICKS_HOST') }}",
            "http_path": "{{ env_var('DATABRICKS_HTTP_PATH') }}",
            "token": "{{ env_var('DATABRICKS_TOKEN') }}",
            "catalog": "main",
            "schema": "analytics",
            "threads": 4,
        },
    }
    if wh in production:
        outputs[wh] = production[wh]
    files["dbt/profiles.yml"] = _yaml(
        {project: {"target": "{{ env_var('PIPELINE_DBT_TARGET', 'duckdb') }}", "outputs": outputs}}
    )
    files["dbt/macros/generate_schema_name.sql"] = (
        "{# schemas are <prefix><name> (raw, staging, analytics): one prefix per environment or test run #}\n"
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n"
        "    {{ env_var('PIPELINE_SCHEMA_PREFIX', '') ~ (custom_schema_name or target.schema) | trim }}\n"
        "{%- endmacro %}\n"
    )
    files["dbt/macros/test_unique_combination.sql"] = (
        "{# the grain of a table keyed on several columns #}\n"
        "{% test unique_combination(model, columns) %}\n"
        "select {{ columns | join(', ') }}, count(*) as n from {{ model }}\n"
        "group by {{ columns | join(', ') }} having count(*) > 1\n"
        "{% endtest %}\n"
    )
    slo = spec.freshness_slo_minutes
    tables = []
    for src in spec.sources:
        name = ident(src.name)
        etf = ident(src.event_time_field) if src.event_time_field else "_loaded_at"
        if src.kind in {"api", "saas"} and not src.event_time_field:
            etf = "_dlt_load_id"
        table: dict[str, Any] = {
            "name": name,
            "description": f"{src.kind} source {src.name}, landed by the extract-load step",
            "loaded_at_field": etf,
            "freshness": {
                "warn_after": {"count": max(1, int(slo)), "period": "minute"},
                "error_after": {"count": max(2, int(slo * 2)), "period": "minute"},
            },
            "columns": [{"name": ident(k), "data_tests": ["not_null"]} for k in src.primary_key],
        }
        tables.append(table)
        if (
            src.hard_deletes
            and src.primary_key
            and src.kind == "database"
            and src.change_pattern != "snapshot"
        ):
            tables.append(
                {"name": f"{name}__keys", "description": f"all keys of {src.name} at the last run (deletes)"}
            )
    files["dbt/models/staging/_sources.yml"] = _yaml(
        {
            "version": 2,
            "sources": [
                {"name": "raw", "schema": "{{ env_var('PIPELINE_SCHEMA_PREFIX', '') }}raw", "tables": tables}
            ],
        }
    )
    stg_models = []
    for src in spec.sources:
        files[f"dbt/models/staging/stg_{ident(src.name)}.sql"] = _stg_sql(spec, src)
        keys = [ident(k) for k in src.primary_key]
        stg_models.append(
            {
                "name": f"stg_{ident(src.name)}",
                "columns": [
                    {"name": k, "data_tests": ["not_null", *(["unique"] if len(keys) == 1 else [])]}
                    for k in keys
                ],
            }
        )
        if src.change_pattern == "snapshot" and keys:
            files[f"dbt/snapshots/{ident(src.name)}_history.sql"] = (
                f"-- history of the snapshot source {src.name}: a key missing from the newest snapshot is closed\n"
                f"{{% snapshot {ident(src.name)}_history %}}\n"
                f"{{{{ config(unique_key={keys!r}, strategy='check', check_cols='all', hard_deletes='invalidate') }}}}\n"
                f"select * from {{{{ ref('stg_{ident(src.name)}') }}}}\n{{% endsnapshot %}}\n"
            )
    files["dbt/models/staging/_staging.yml"] = _yaml({"version": 2, "models": stg_models})
    marts = []
    for sink in table_sinks(spec):
        files[f"dbt/models/marts/{ident(sink.name)}.sql"] = _mart_sql(spec, sink)
        keys = [ident(k) for k in _sink_keys(spec, sink)]
        srcs = spec.sources_of(sink)
        columns: dict[str, dict[str, Any]] = {}
        for k in keys:
            tests: list[Any] = ["not_null"]
            if len(keys) == 1:
                tests.append("unique")
            if len(srcs) == 1 and k in [ident(c) for c in srcs[0].primary_key + _sink_columns(spec, sink)]:
                tests.append(
                    {"relationships": {"arguments": {"to": f"ref('stg_{ident(srcs[0].name)}')", "field": k}}}
                )
            columns[k] = {"name": k, "data_tests": tests}
        for e in sink.expectations:
            if not e.column or e.check not in {"not_null", "unique", "accepted_values"}:
                continue
            col = columns.setdefault(ident(e.column), {"name": ident(e.column), "data_tests": []})
            test: Any = e.check
            if e.check == "accepted_values":
                test = {"accepted_values": {"arguments": {"values": e.values}}} if e.values else None
            if e.action == "warn" and test is not None:
                test = {e.check: {"config": {"severity": "warn"}}} if isinstance(test, str) else test
            if test is not None and test not in col["data_tests"]:
                col["data_tests"].append(test)
        columns["_source"] = {
            "name": "_source",
            "data_tests": [
                "not_null",
                {"accepted_values": {"arguments": {"values": [ident(s.name) for s in srcs]}}},
            ],
        }
        model: dict[str, Any] = {
            "name": ident(sink.name),
            "description": f"{table_type(sink, spec)} table {sink.name}",
            "columns": list(columns.values()),
        }
        if len(keys) > 1:
            model["data_tests"] = [{"unique_combination": {"arguments": {"columns": keys}}}]
        marts.append(model)
    files["dbt/models/marts/_marts.yml"] = _yaml({"version": 2, "models": marts})
    return files


# --- orchestration -----------------------------------------------------------------------------------------


def _timeouts(spec: PipelineSpec, design: PipelineDesign) -> tuple[int, int, int]:
    """(task timeout, run timeout, deadline) in minutes, all within the schedule's interval.

    A batch run must finish within the SLO; the scheduled part of a streaming architecture
    (compaction, dbt, checks) only has to finish before the next run: its SLO is the stream's.
    """
    interval = schedule_minutes(design.schedule)
    budget = (
        interval if design.recommendation in STREAMING_ARCHS else min(interval, spec.freshness_slo_minutes)
    )
    run = max(5, int(budget * 0.9))
    return max(5, min(run, 120)), run, max(5, int(budget))


def _cron(schedule: str) -> str:
    return PRESET_CRON.get(schedule, schedule)


def render_dag(spec: PipelineSpec, design: PipelineDesign, package: str) -> str:
    dag_id = ident(spec.name)
    task_timeout, run_timeout, deadline = _timeouts(spec, design)
    loads, checks = [], []
    body: list[str] = []
    for src in spec.sources:
        n = ident(src.name)
        loads.append(f"load_{n}")
        body += [
            f'    @task(task_id="load_{n}", outlets=[Asset("{package}.raw.{n}")])',
            f"    def load_{n}() -> int:",
            f'        """Extract-load {src.name} ({src.kind}) for the run\'s data interval."""',
            f"        from {package}.extract_load import load",
            "",
            "        context = get_current_context()",
            f'        return load("{n}", context["data_interval_start"], context["data_interval_end"])',
            "",
        ]
    body += [
        '    if importlib.util.find_spec("cosmos") is not None:  # astronomer-cosmos: one task per dbt node',
        "        from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig",
        "        from cosmos.constants import TestIndirectSelection",
        f"        from {package}.settings import DBT_DIR, dbt_profile_env, dbt_target",
        "",
        "        # the profile's locations (no password: the worker's environment holds DBT_PG_PASSWORD)",
        "        transform = DbtTaskGroup(",
        '            group_id="dbt",',
        "            project_config=ProjectConfig(DBT_DIR, env_vars=dbt_profile_env()),",
        f'            profile_config=ProfileConfig(profile_name="{dag_id}", target_name=dbt_target(),',
        '                                         profiles_yml_filepath=DBT_DIR / "profiles.yml"),',
        "            # a relationships test runs after BOTH of its models (cosmos' default, eager, runs it",
        "            # after the first one, against a table the run has not built yet)",
        "            execution_config=ExecutionConfig(",
        '                dbt_executable_path=os.environ.get("DBT_EXECUTABLE", "dbt"),',
        "                test_indirect_selection=TestIndirectSelection.BUILDABLE,",
        "            ),",
        '            operator_args={"append_env": True},',
        "        )",
        "    else:",
        "",
        '        @task(task_id="dbt_build")',
        "        def dbt_build() -> None:",
        '            """dbt build: staging views, incremental marts and their tests."""',
        f"            from {package}.settings import run_dbt",
        "",
        '            run_dbt("build")',
        "",
        "        transform = dbt_build()",
        "",
    ]
    for sink in table_sinks(spec):
        n = ident(sink.name)
        checks.append(f"check_{n}")
        body += [
            f'    @task(task_id="check_{n}", outlets=[Asset("{package}.analytics.{n}")])',
            f"    def check_{n}() -> dict[str, Any]:",
            f'        """Row count, key grain and freshness of {sink.name} for the interval."""',
            f"        from {package}.quality import check",
            "",
            "        context = get_current_context()",
            f'        return check("{n}", context["data_interval_start"], context["data_interval_end"])',
            "",
        ]
    loads_call = ", ".join(f"{x}()" for x in loads)
    checks_call = ", ".join(f"{x}()" for x in checks)
    body.append(f"    [{loads_call}] >> transform" + (f" >> [{checks_call}]" if checks else ""))
    doc = (
        f"{spec.name}: {design.recommendation_label} on {design.cost.warehouse}.\n\n"
        f"Generated by `dataeng pipeline scaffold`. Each run extract-loads its data interval from every source,\n"
        f"runs `dbt build` (astronomer-cosmos when installed) and checks every published table."
    )
    if design.recommendation in STREAMING_ARCHS:
        doc += (
            "\nThe streaming job (streaming/) runs continuously outside this DAG; this DAG is its batch\n"
            "side: it loads what the stream landed, rebuilds the models and checks freshness."
        )
    return (
        f'''"""{doc}
"""

from __future__ import annotations

import importlib.util
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, DeadlineAlert, DeadlineReference, SyncCallback, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable



def notify_failure(context: dict[str, Any]) -> None:
    """Failure alert ({package}.alerts is imported when a task fails, not at parse time)."""
    from {package}.alerts import notify_failure as send

    send(context)


default_args = {{
    "owner": "{ident(spec.owner).replace("_", "-")}",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes={task_timeout}),
    "on_failure_callback": notify_failure,
}}

with DAG(
    dag_id="{dag_id}",
    description="{design.recommendation_label} pipeline on {design.cost.warehouse}",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("{_cron(design.schedule)}", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=8,
    dagrun_timeout=timedelta(minutes={run_timeout}),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes={deadline}),
        callback=SyncCallback("{package}.alerts.notify_late"),
    ),
    default_args=default_args,
    tags=["dataeng", "{design.recommendation}", "{design.cost.warehouse}"],
) as dag:
'''
        + "\n".join(body)
        + "\n"
    )


def render_flow(spec: PipelineSpec, design: PipelineDesign, package: str) -> str:
    name = ident(spec.name)
    task_timeout, run_timeout, _deadline = _timeouts(spec, design)
    interval = schedule_minutes(design.schedule)
    sources = [ident(s.name) for s in spec.sources]
    sinks = [ident(k.name) for k in table_sinks(spec)]
    return f'''"""{spec.name}: {design.recommendation_label} on {design.cost.warehouse}, as a Prefect flow.

The same steps as dags/{name}.py: extract-load each source for the interval, dbt build (prefect-dbt
when installed, else the dbt CLI), then the data-quality checks of every published table.
Deploy with `prefect deploy` on the cron `{_cron(design.schedule)}` (UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.futures import wait
from prefect.tasks import exponential_backoff

from {package}.alerts import notify_flow_failure

SOURCES = {sources!r}
SINKS = {sinks!r}
INTERVAL = timedelta(minutes={interval})


# a flow retry skips the loads that already finished for the same interval (they are idempotent anyway);
# the tags carry a concurrency limit: `prefect concurrency-limit create {name}-extract 4`
@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=30), timeout_seconds={task_timeout * 60},
      cache_policy=INPUTS + TASK_SOURCE, cache_expiration=INTERVAL, persist_result=True, tags=["{name}-extract"])
def load_source(name: str, start: datetime, end: datetime) -> int:
    """Extract-load one source for [start, end)."""
    from {package}.extract_load import load

    return load(name, start, end)


@task(retries=1, retry_delay_seconds=60, timeout_seconds={task_timeout * 60})
def dbt_build() -> None:
    """dbt build through prefect-dbt when installed, else the dbt CLI."""
    try:
        from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings
    except ImportError:
        from {package}.settings import run_dbt

        run_dbt("build")
        return
    from {package}.settings import DBT_DIR, dbt_environment, dbt_target

    settings = PrefectDbtSettings(project_dir=DBT_DIR, profiles_dir=DBT_DIR)
    with dbt_environment():  # dbt runs in this process: its profile reads the environment
        PrefectDbtRunner(settings=settings).invoke(["build", "--target", dbt_target()])


@task(retries=1, retry_delay_seconds=30, timeout_seconds={task_timeout * 60}, tags=["{name}-checks"])
def check_sink(name: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Row count, key grain and freshness of one published table for [start, end)."""
    from {package}.quality import check

    return check(name, start, end)


def last_interval(now: datetime) -> tuple[datetime, datetime]:
    """The newest complete interval before ``now`` (aligned to the schedule, UTC)."""
    epoch = datetime(2025, 1, 1, tzinfo=timezone.utc)
    end = epoch + ((now - epoch) // INTERVAL) * INTERVAL
    return end - INTERVAL, end


@flow(name="{name.replace("_", "-")}", retries=1, retry_delay_seconds=120, timeout_seconds={run_timeout * 60},
      on_failure=[notify_flow_failure])
def {name}_flow(start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Run the pipeline for [start, end); without arguments, the last complete interval."""
    if start is None or end is None:
        start, end = last_interval(datetime.now(timezone.utc))
    logger = get_run_logger()
    logger.info("interval [%s, %s)", start, end)
    loads = [load_source.submit(n, start, end) for n in SOURCES]
    wait(loads)
    rows = {{n: f.result() for n, f in zip(SOURCES, loads, strict=True)}}
    dbt_build()
    checks = [check_sink.submit(n, start, end) for n in SINKS]
    return {{"loaded": rows, "checks": {{n: f.result() for n, f in zip(SINKS, checks, strict=True)}}}}


if __name__ == "__main__":
    {name}_flow()
'''


# --- streams --------------------------------------------------------------------------------------------------


def render_stream_job(spec: PipelineSpec, design: PipelineDesign, src: Source) -> str:
    n = ident(src.name)
    etf = ident(src.event_time_field) if src.event_time_field else None
    cols = _source_columns(spec, src)
    wm = spec.transformations.watermark_minutes or 10
    product = design.cost.warehouse
    fields = ",\n".join(
        f'        T.StructField("{c}", T.{"Timestamp" if c == etf else "String"}Type())' for c in cols
    )
    if product == "bigquery":
        sink = (
            '    good.writeStream.format("bigquery")\n'
            '    .option("table", f"{os.environ[\'GCP_PROJECT\']}.raw.' + n + '")\n'
            '    .option("writeMethod", "direct")  # BigQuery Storage Write API\n'
        )
    elif product == "databricks":
        sink = f'    good.writeStream.format("delta").option("mergeSchema", "true").toTable("raw.{n}")\n'
    else:
        sink = (
            f'    good.writeStream.format("json").partitionBy("dt")\n'
            f'    .option("path", os.path.join(LANDING_DIR, "{n}"))  # loaded by the DAG / flow\n'
        )
    return f'''"""Spark Structured Streaming job for {src.name}: Kafka -> {product}, with a dead-letter topic.

Run on a cluster (spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version>).
Offsets and state live in the checkpoint: a restart resumes exactly where the last committed batch
ended; replays of the {src.retention_days if src.retention_days is not None else 7:g}-day topic retention restart from a new checkpoint with
startingOffsets=earliest. Records without a parseable {etf or "payload"} go to the `{src.topic or n}.dlq` topic.
"""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
TOPIC = "{src.topic or n}"
DLQ_TOPIC = TOPIC + ".dlq"
CHECKPOINT_DIR = os.environ.get("PIPELINE_CHECKPOINT_DIR", "/checkpoints/{ident(spec.name)}")
LANDING_DIR = os.environ.get("PIPELINE_LANDING_DIR", "landing")
SCHEMA = T.StructType(
    [
{fields},
    ]
)


def parse(raw: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(good records with event time, dead letters with the raw value and the reason)."""
    parsed = raw.select(F.col("value").cast("string").alias("raw"), F.col("offset"), F.col("partition")).withColumn(
        "rec", F.from_json("raw", SCHEMA, {{"mode": "PERMISSIVE"}})
    )
    ok = F.col("rec").isNotNull(){f' & F.col("rec.{etf}").isNotNull()' if etf else ""}
    good = parsed.where(ok).select("rec.*"){f'.withColumn("dt", F.to_date("{etf}"))' if etf else '.withColumn("dt", F.current_date())'}
    dead = parsed.where(~ok).select(F.col("raw").alias("value"), F.lit("unparseable or no event time").alias("error"))
    return good, dead


def main() -> None:
    spark = SparkSession.builder.appName("{ident(spec.name)}_{n}").getOrCreate()
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP)
        .option("subscribe", TOPIC)
        .option("startingOffsets", "latest")
        .option("failOnDataLoss", "true")
        .load()
    )
    good, dead = parse(raw)
    {"good = good.withWatermark(" + repr(etf) + ", " + repr(f"{wm:g} minutes") + ")  # late events beyond this are dropped from windows" if etf else "# no event time declared: processing time only"}
    (
        dead.select(F.to_json(F.struct("value", "error")).alias("value"))
        .writeStream.format("kafka")
        .option("kafka.bootstrap.servers", BOOTSTRAP)
        .option("topic", DLQ_TOPIC)
        .option("checkpointLocation", os.path.join(CHECKPOINT_DIR, "{n}_dlq"))
        .start()
    )
    query = (
{sink}        .option("checkpointLocation", os.path.join(CHECKPOINT_DIR, "{n}"))
        .outputMode("append")
        .trigger(processingTime="{max(1, int(min(spec.freshness_slo_minutes * 30, 300)))} seconds")
        .start()
    )
    query.awaitTermination()


if __name__ == "__main__":
    main()
'''


def render_connect(spec: PipelineSpec, design: PipelineDesign, src: Source) -> str:
    n = ident(src.name)
    topic = src.topic or n
    common = {
        "topics": topic,
        "tasks.max": "2",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": f"{topic}.dlq",
        "errors.deadletterqueue.topic.replication.factor": "3",
        "errors.deadletterqueue.context.headers.enable": "true",
        "errors.log.enable": "true",
    }
    if design.cost.warehouse == "bigquery":
        config = {
            "connector.class": "com.wepay.kafka.connect.bigquery.BigQuerySinkConnector",
            **common,
            "project": "${GCP_PROJECT}",
            "defaultDataset": "raw",
            "useStorageWriteApi": "true",
            "enableBatchMode": "false",
            "timestampPartitionFieldName": ident(src.event_time_field or "_loaded_at"),
            "keyfile": "${file:/opt/secrets/bq.properties:keyfile}",
        }
    else:
        config = {
            "connector.class": "io.confluent.connect.s3.S3SinkConnector",
            **common,
            "s3.bucket.name": "${LANDING_BUCKET}",
            "topics.dir": "landing",
            "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
            "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
            "path.format": "'dt'=YYYY-MM-dd",
            "partition.duration.ms": "3600000",
            "locale": "en-US",
            "timezone": "UTC",
            "timestamp.extractor": "RecordField" if src.event_time_field else "Record",
            **({"timestamp.field": ident(src.event_time_field)} if src.event_time_field else {}),
            "flush.size": "10000",
            "rotate.interval.ms": "60000",
        }
    return json.dumps({"name": f"{ident(spec.name)}-{n}-sink", "config": config}, indent=2) + "\n"


# --- the project ---------------------------------------------------------------------------------------------------


def scaffold_project(
    spec: PipelineSpec | str | Path | dict[str, Any], design: PipelineDesign | None = None
) -> Project:
    """The files of a runnable project for ``spec`` (its design is computed when not given)."""
    import yaml

    sp = load_spec(spec)
    design = design or design_pipeline(sp)
    name = ident(sp.name)
    package = f"{name}_pipeline"
    product = design.cost.warehouse
    values = {"pkg": package, "name": name, "product": product}
    files: dict[str, str] = {
        f"{package}/__init__.py": f'"""{sp.name}: extract-load, quality checks and alerts (generated)."""\n',
        f"{package}/settings.py": _template("settings.py.j2", **values),
        f"{package}/alerts.py": _template("alerts.py.j2", **values),
        f"{package}/extract_load.py": _template("extract_load.py.j2", **values),
        f"{package}/quality.py": _template("quality.py.j2", **values),
        f"{package}/sample_data.py": _template("sample_data.py.j2", **values),
        f"{package}/pipeline_config.py": pipeline_config(sp, design),
        f"dags/{name}.py": render_dag(sp, design, package),
        f"flows/{name}_flow.py": render_flow(sp, design, package),
        "spec.yaml": yaml.safe_dump(sp.model_dump(mode="json", exclude_defaults=True), sort_keys=False),
        **dbt_files(sp, design),
    }
    streams = [s for s in sp.sources if s.kind == "event_stream"]
    for src in streams:
        if design.recommendation in STREAMING_ARCHS:
            files[f"streaming/{ident(src.name)}_stream.py"] = render_stream_job(sp, design, src)
        else:
            files[f"connect/{ident(src.name)}_sink.json"] = render_connect(sp, design, src)
    files["requirements.txt"] = "\n".join(_requirements(sp, design)) + "\n"
    files["pyproject.toml"] = (
        f'[project]\nname = "{package.replace("_", "-")}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        "dependencies = [\n"
        + "".join(f'    "{r}",\n' for r in _requirements(sp, design) if not r.startswith("#"))
        + ']\n\n[tool.setuptools]\npackages = ["'
        + package
        + '"]\n'
    )
    files["README.md"] = _readme(sp, design, package, files)
    return Project(name=name, package=package, architecture=design.recommendation, files=files)


def _requirements(spec: PipelineSpec, design: PipelineDesign) -> list[str]:
    product = design.cost.warehouse
    reqs = ["duckdb>=1.1", "psycopg[binary]>=3.1"]
    if any(s.kind in {"api", "saas"} for s in spec.sources):
        reqs.append("dlt[duckdb,postgres]>=1.5")
    reqs += {
        "snowflake": ["snowflake-connector-python>=3.0"],
        "bigquery": ["google-cloud-bigquery>=3.0"],
    }.get(product, [])
    reqs += [
        "# dbt (may live in its own virtualenv: set DBT_EXECUTABLE)",
        "# dbt-core>=1.10,<1.12 dbt-duckdb dbt-postgres"
        + (f" dbt-{product}" if product not in {"duckdb", "postgres"} else ""),
    ]
    return reqs


def _readme(spec: PipelineSpec, design: PipelineDesign, package: str, files: dict[str, str]) -> str:
    name = ident(spec.name)
    lines = [
        f"# {spec.name}",
        "",
        f"{design.recommendation_label} on **{design.cost.warehouse}**, schedule "
        f"`{design.schedule}`, generated by `dataeng pipeline scaffold` from `spec.yaml`.",
        "",
        "## Layout",
        "",
        *[f"- `{p}`" for p in sorted(files) if p.count("/") <= 1 and not p.startswith("dbt/models")],
        "- `dbt/models/staging`, `dbt/models/marts`: staging views and incremental marts with their tests",
        "",
        "## Run it locally (DuckDB)",
        "",
        "```bash",
        "pip install -e .            # the pipeline package",
        "pip install 'dbt-core>=1.10,<1.12' dbt-duckdb   # or in its own venv + export DBT_EXECUTABLE=/path/to/dbt",
        f"python -m {package}.sample_data 2025-01-01T00:00:00 2025-01-02T00:00:00",
        f"python flows/{name}_flow.py  # or: airflow dags test {name} 2025-01-02",
        "```",
        "",
        "Environment: `PIPELINE_WAREHOUSE_URL` (duckdb:///file, postgresql://...), `PIPELINE_SOURCE_URL`, "
        "`PIPELINE_LANDING_DIR`, `PIPELINE_SCHEMA_PREFIX`, `PIPELINE_DBT_TARGET`, `DBT_EXECUTABLE`, "
        "`PIPELINE_ALERT_WEBHOOK`.",
        "",
        "## Design decisions",
        "",
        *[f"- **{c.area}**: {c.choice} - {c.why}" for c in design.components()],
        "",
        "## Cost assumptions",
        "",
        *[f"- {a}" for a in design.cost.assumptions],
        "",
    ]
    if design.open_questions:
        lines += ["## Open questions", "", *[f"- {q}" for q in design.open_questions], ""]
    return "\n".join(lines)
