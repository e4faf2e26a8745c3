"""The declarative pipeline spec (YAML/JSON): what a pipeline must do, not how.

Load with :func:`load_spec` (path, YAML text or dict); an invalid spec raises
:class:`~dataeng_agents.core.errors.ConfigError` whose ``field`` is the path of the bad value, e.g.
``sources[1].volume_gb_per_day``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SourceKind = Literal["database", "cdc", "event_stream", "api", "files", "saas"]
ChangePattern = Literal["append", "upsert", "snapshot", "cdc"]
SinkKind = Literal[
    "warehouse", "lakehouse", "object_storage", "database", "stream", "search", "feature_store"
]
TableFormat = Literal["table", "iceberg", "delta", "hudi", "parquet", "csv", "json", "avro"]
ConsumerKind = Literal["dashboard", "analyst", "ml_training", "ml_serving", "api", "reverse_etl", "alerting"]
WarehouseProduct = Literal["snowflake", "bigquery", "redshift", "databricks", "postgres", "duckdb"]
WAREHOUSE_PRODUCTS: tuple[str, ...] = (
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "postgres",
    "duckdb",
)
SnowflakeSize = Literal["XS", "S", "M", "L", "XL", "2XL", "3XL", "4XL"]


class Source(BaseModel):
    """One input of the pipeline."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SourceKind
    volume_gb_per_day: float = Field(ge=0, description="Raw data volume arriving per day, in GB.")
    events_per_second_peak: float | None = Field(default=None, ge=0)
    change_pattern: ChangePattern = "append"
    replayable: bool = Field(
        default=False, description="Can the source re-deliver history (log offsets, files)?"
    )
    retention_days: float | None = Field(
        default=None, ge=0, description="How long the source keeps history (e.g. Kafka topic retention)."
    )
    primary_key: list[str] = Field(default_factory=list)
    event_time_field: str | None = Field(
        default=None,
        description="Column with the time of each record; the incremental watermark and the partition source.",
    )
    hard_deletes: bool | None = Field(
        default=None,
        description="Can rows disappear from the source (DELETE)? None: unknown, the design asks.",
    )
    avg_record_bytes: float = Field(
        default=1000, gt=0, description="Average size of one record, for event rates."
    )
    topic: str | None = Field(default=None, description="Topic / table / endpoint name at the source.")


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    check: Literal["not_null", "unique", "accepted_values", "row_count", "freshness", "range", "custom"]
    action: Literal["warn", "drop", "fail"] = "fail"
    values: list[str] = Field(
        default_factory=list, description="The allowed values of an accepted_values check."
    )


class Sink(BaseModel):
    """One output of the pipeline."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SinkKind
    format: TableFormat = "table"
    upsert_key: list[str] = Field(default_factory=list)
    transactional: bool = False
    write_mode: Literal["append", "overwrite_partition", "merge", "full_refresh"] = "append"
    partition_by: list[str] = Field(default_factory=list)
    retention_days: float | None = Field(default=None, ge=0)
    expectations: list[Expectation] = Field(default_factory=list)
    contract: bool = False
    consumers: list[str] = Field(default_factory=list, description="Names of consumers that read this sink.")
    sources: list[str] = Field(
        default_factory=list, description="Names of the sources feeding this sink (empty: all of them)."
    )
    table_type: Literal["fact", "dimension", "aggregate"] | None = Field(
        default=None,
        description="Fact (events, partitioned by event date), dimension (no time partition) or aggregate; "
        "None: derived from the sources' change patterns.",
    )


class Warehouse(BaseModel):
    """The warehouse / query engine the sinks live in, with what its cost model needs."""

    model_config = ConfigDict(extra="forbid")

    product: WarehouseProduct
    snowflake_size: SnowflakeSize = Field(default="S", description="Snowflake virtual warehouse size.")
    usd_per_credit: float = Field(
        default=3.0, gt=0, description="Snowflake price per credit (edition/region)."
    )
    bigquery_pricing: Literal["on_demand", "slots"] = "on_demand"
    bigquery_slots: int = Field(
        default=100, gt=0, description="Baseline slots when bigquery_pricing is slots."
    )
    query_gb_scanned_per_day: float | None = Field(
        default=None, ge=0, description="GB the consumers' queries scan per day; None: 10x the daily volume."
    )
    databricks_dbu_per_hour: float = Field(default=4.0, gt=0, description="DBUs per hour of the job cluster.")
    cluster_startup_minutes: float = Field(
        default=5.0, ge=0, description="Job-cluster start-up, billed per run."
    )
    redshift_rpu: int = Field(default=8, gt=0, description="Redshift Serverless base RPUs.")


class Consumer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: ConsumerKind
    external: bool = Field(default=False, description="Outside the owning team (needs a contract).")
    max_staleness_minutes: float | None = Field(default=None, gt=0)


class SchemaEvolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected: Literal["none", "additive", "breaking"] = "none"
    compatibility: Literal["backward", "forward", "full", "none"] | None = None


class Pii(BaseModel):
    model_config = ConfigDict(extra="forbid")

    present: bool = False
    fields: list[str] = Field(default_factory=list)
    handling: Literal["mask", "hash", "tokenize", "drop", "none"] | None = None


class Transformations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["dbt", "spark", "flink", "sql", "python"] | None = None
    complexity: Literal["simple", "moderate", "complex"] = "moderate"
    windowed_aggregations: bool = False
    watermark_minutes: float | None = Field(default=None, ge=0)
    same_logic_batch_and_stream: bool = Field(
        default=True, description="False when the real-time and the historical results need different code."
    )
    needs_acid_upserts: bool = False
    needs_time_travel: bool = False
    multiple_engines: bool = Field(
        default=False, description="Several engines (SQL, Spark, ML) read the same tables."
    )


class PipelineSpec(BaseModel):
    """Requirements of one pipeline. Times in minutes, volumes in GB per day."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    description: str = ""
    owner: str = "data-platform"
    sources: list[Source] = Field(min_length=1)
    sinks: list[Sink] = Field(min_length=1)
    freshness_slo_minutes: float = Field(gt=0, description="Max age of the newest data the consumers see.")
    consumers: list[Consumer] = Field(default_factory=list)
    reprocessing_horizon_days: float = Field(default=30, ge=0)
    delivery_guarantee: Literal["at_most_once", "at_least_once", "exactly_once"] = "at_least_once"
    schema_evolution: SchemaEvolution = Field(default_factory=SchemaEvolution)
    pii: Pii = Field(default_factory=Pii)
    transformations: Transformations = Field(default_factory=Transformations)
    orchestrator: Literal["airflow", "prefect"] = "airflow"
    cloud: Literal["aws", "gcp", "azure"] = "aws"
    warehouse: Warehouse | None = Field(
        default=None, description="Warehouse product of the sinks; a plain name (`bigquery`) is accepted."
    )
    stream_platform: Literal["kafka", "kinesis", "pubsub", "event_hubs"] | None = Field(
        default=None, description="Platform of the event_stream sources (None: Kafka)."
    )
    staging: bool = Field(default=True, description="Raw data lands in a staging/bronze area first.")
    planned_mode: Literal["batch", "micro_batch", "streaming"] | None = Field(
        default=None, description="The processing mode already chosen (reviewed against the SLO)."
    )
    batch_interval_minutes: float | None = Field(default=None, gt=0)
    expected_runtime_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _warehouse_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("warehouse"), str):
            data = {**data, "warehouse": {"product": data["warehouse"]}}
        return data

    @model_validator(mode="after")
    def _consumers_exist(self) -> PipelineSpec:
        names = {c.name for c in self.consumers}
        sources = {s.name for s in self.sources}
        named: list[tuple[str, list[str]]] = [
            ("sources", [s.name for s in self.sources]),
            ("sinks", [k.name for k in self.sinks]),
        ]
        for label, item_names in named:
            seen: set[str] = set()
            for i, item_name in enumerate(item_names):
                if item_name in seen:
                    raise ValueError(f"{label}[{i}].name: duplicate name {item_name!r}")
                seen.add(item_name)
        for i, sink in enumerate(self.sinks):
            for j, c in enumerate(sink.consumers):
                if names and c not in names:
                    raise ValueError(f"sinks[{i}].consumers[{j}]: unknown consumer {c!r}")
            for j, src in enumerate(sink.sources):
                if src not in sources:
                    raise ValueError(f"sinks[{i}].sources[{j}]: unknown source {src!r}")
        return self

    @property
    def total_gb_per_day(self) -> float:
        return sum(s.volume_gb_per_day for s in self.sources)

    def sources_of(self, sink: Sink) -> list[Source]:
        """The sources feeding ``sink``: those it names, else all of them."""
        if not sink.sources:
            return list(self.sources)
        return [s for s in self.sources if s.name in sink.sources]

    def sink_gb_per_day(self, sink: Sink) -> float:
        """Daily volume written to ``sink``: the sum of its own sources, not of the whole pipeline."""
        return sum(s.volume_gb_per_day for s in self.sources_of(sink))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def load_spec(spec: str | Path | dict[str, Any] | PipelineSpec) -> PipelineSpec:
    """Load and validate a spec from a path, YAML/JSON text or a dict."""
    if isinstance(spec, PipelineSpec):
        return spec
    data: Any
    if isinstance(spec, dict):
        data = spec
    else:
        import yaml

        text: str
        p = Path(spec) if isinstance(spec, Path) or "\n" not in str(spec) else None
        if p is not None and p.exists():
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(str(p), f"cannot read spec: {exc}") from exc
        elif isinstance(spec, Path):
            raise ConfigError(str(spec), "spec file not found")
        else:
            text = str(spec)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "spec"
            raise ConfigError(where, f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("", "a pipeline spec must be a mapping")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"])
        if err["type"] == "value_error" and ": " in msg and "[" in msg.split(": ", 1)[0]:
            field, _, rest = msg.removeprefix("Value error, ").partition(": ")
            raise ConfigError(field, rest) from exc
        raise ConfigError(_loc(tuple(err["loc"])) or "spec", msg) from exc


def spec_json_schema() -> dict[str, Any]:
    return PipelineSpec.model_json_schema()
