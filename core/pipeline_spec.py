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
SinkKind = Literal["warehouse", "lakehouse", "object_storage", "database", "stream", "search", "feature_store"]
TableFormat = Literal["table", "iceberg", "delta", "hudi", "parquet", "csv", "json", "avro"]
ConsumerKind = Literal["dashboard", "analyst", "ml_training", "ml_serving", "api", "reverse_etl", "alerting"]


class Source(BaseModel):
    """One input of the pipeline."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SourceKind
    volume_gb_per_day: float = Field(ge=0, description="Raw data volume arriving per day, in GB.")
    events_per_second_peak: float | None = Field(default=None, ge=0)
    change_pattern: ChangePattern = "append"
    replayable: bool = Field(default=False, description="Can the source re-deliver history (log offsets, files)?")
    retention_days: float | None = Field(
        default=None, ge=0, description="How long the source keeps history (e.g. Kafka topic retention)."
    )
    primary_key: list[str] = Field(default_factory=list)
    event_time_field: str | None = None


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    check: Literal["not_null", "unique", "accepted_values", "row_count", "freshness", "range", "custom"]
    action: Literal["warn", "drop", "fail"] = "fail"


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
    multiple_engines: bool = Field(default=False, description="Several engines (SQL, Spark, ML) read the same tables.")


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
    staging: bool = Field(default=True, description="Raw data lands in a staging/bronze area first.")
    planned_mode: Literal["batch", "micro_batch", "streaming"] | None = Field(
        default=None, description="The processing mode already chosen (reviewed against the SLO)."
    )
    batch_interval_minutes: float | None = Field(default=None, gt=0)
    expected_runtime_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consumers_exist(self) -> PipelineSpec:
        names = {c.name for c in self.consumers}
        for i, sink in enumerate(self.sinks):
            for j, c in enumerate(sink.consumers):
                if names and c not in names:
                    raise ValueError(f"sinks[{i}].consumers[{j}]: unknown consumer {c!r}")
        return self

    @property
    def total_gb_per_day(self) -> float:
        return sum(s.volume_gb_per_day for s in self.sources)


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
