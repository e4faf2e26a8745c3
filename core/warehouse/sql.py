"""Safe SQL building blocks shared by every warehouse query (experiment, exploration, tracking, rollout).

User text enters a query only through here, as parsed sqlglot nodes: ``sql`` sources must parse as a
single read-only SELECT (:func:`parse_select`), expressions as one scalar expression without
subqueries (:func:`parse_scalar`), and comments are dropped. Table and column names are validated
identifiers (:mod:`dataeng_agents.core.warehouse.identifiers`). The experiment query itself is built
in :mod:`dataeng_agents.core.experiment.query`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal, get_args

import sqlglot
from dataeng_agents.core.errors import ConfigError
from sqlglot import exp
from sqlglot.errors import ParseError

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import Source

#: The SQL dialects an experiment query is emitted in (sqlglot names).
Dialect = Literal["duckdb", "postgres", "snowflake", "bigquery", "redshift", "databricks", "spark"]
DIALECTS: tuple[str, ...] = get_args(Dialect)

__all__ = [
    "DIALECTS",
    "Dialect",
    "naive_utc",
    "parse_scalar",
    "parse_select",
    "percentiles_select",
    "source_from",
    "ts_literal",
]


_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Into,
    exp.Copy,
    exp.Use,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Grant,
    exp.LoadData,
)


def _strip_comments(node: exp.Expr) -> exp.Expr:
    for sub in node.walk():
        sub.comments = None
    return node


def _parse_statements(text: str, dialect: str, path: str) -> list[exp.Expr]:
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except (ParseError, sqlglot.errors.TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(path, f"does not parse as {dialect} SQL: {first}") from None
    return statements


def parse_select(text: str, dialect: str, path: str) -> exp.Query:
    """Parse user SQL that must be exactly one SELECT (a WITH … SELECT or UNION of SELECTs is fine)."""
    statements = _parse_statements(text, dialect, path)
    if len(statements) != 1:
        raise ConfigError(path, f"must be a single SELECT statement, got {len(statements)} statements")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        raise ConfigError(path, f"must be a single SELECT statement, got {stmt.key.upper()}")
    bad = next((n for n in stmt.walk() if isinstance(n, _FORBIDDEN_NODES)), None)
    if bad is not None:
        raise ConfigError(path, f"must be a read-only SELECT; found {bad.key.upper()}")
    return _strip_comments(stmt)  # type: ignore[return-value]


def parse_scalar(text: str, dialect: str, path: str) -> exp.Expr:
    """Parse a scalar expression over a source's columns (no subqueries, no statements)."""
    if ";" in text:
        raise ConfigError(path, "an expression cannot contain ';'")
    statements = _parse_statements(text, dialect, path)
    if len(statements) != 1:
        raise ConfigError(path, "must be one SQL expression")
    node = statements[0]
    if isinstance(node, exp.Query | exp.Star) or any(
        isinstance(n, (exp.Query, exp.Subquery, exp.Star, exp.Table, *_FORBIDDEN_NODES)) for n in node.walk()
    ):
        raise ConfigError(path, "must be a scalar expression over the source's columns (no subqueries or *)")
    if not isinstance(node, exp.Condition | exp.Func | exp.Column | exp.Literal | exp.Binary | exp.Paren):
        raise ConfigError(path, f"must be a scalar expression, got {node.key.upper()}")
    return _strip_comments(node)


def ts_literal(value: datetime | date, dialect: str | None = None) -> exp.Expr:
    """A UTC timestamp literal; warehouses store naive UTC (BigQuery: its zoned ``TIMESTAMP``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(sep=" ", timespec="microseconds")
    else:
        text = f"{value.isoformat()} 00:00:00"
    # BigQuery's TIMESTAMP (what event tables use) is sqlglot's TIMESTAMPTZ; its DATETIME does not
    # compare with TIMESTAMP columns. Elsewhere a naive TIMESTAMP avoids session-time-zone shifts.
    return exp.cast(exp.Literal.string(text), "TIMESTAMPTZ" if dialect == "bigquery" else "TIMESTAMP")


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def source_from(
    source: Source, dialect: str, path: str, base_dir: str | None, read_dialect: str | None = None
) -> exp.Expr:
    """The FROM item of a source: a validated table, a parsed SELECT as a subquery, or a file scan."""
    if source.table:
        return exp.to_table(source.table)
    if source.sql:
        return parse_select(source.sql, read_dialect or dialect, f"{path}.sql").subquery("q")
    assert source.file is not None
    if dialect != "duckdb":
        raise ConfigError(f"{path}.file", f"file sources need the duckdb warehouse, not {dialect}")
    import os

    file_path = source.file
    if base_dir and "://" not in file_path and not os.path.isabs(file_path):
        file_path = os.path.join(base_dir, file_path)
    lower = file_path.lower()
    if lower.endswith((".parquet", ".pq")) or ".parquet" in lower:
        reader = "read_parquet"
    elif lower.endswith((".csv", ".tsv", ".csv.gz", ".txt")):
        reader = "read_csv_auto"
    elif lower.endswith(".json") or lower.endswith(".jsonl") or lower.endswith(".ndjson"):
        reader = "read_json_auto"
    else:
        raise ConfigError(f"{path}.file", "unknown file type: use .parquet, .csv or .json(l)")
    return exp.Table(this=exp.Anonymous(this=reader, expressions=[exp.Literal.string(file_path)]))


def _percentile(col: exp.Expr, p: float, dialect: str) -> exp.Expr:
    """The exact (interpolated) ``p`` percentile of ``col`` as an aggregate (not BigQuery: it has none)."""
    order = exp.Order(expressions=[exp.Ordered(this=col, nulls_first=False)])
    if dialect in ("spark", "databricks"):
        # sqlglot writes PercentileCont as PERCENTILE_APPROX for Spark; the ordered-set form is exact
        # (Spark >= 3.4, Databricks Runtime >= 10.4).
        fn: exp.Expr = exp.Anonymous(this="PERCENTILE_CONT", expressions=[exp.Literal.number(p)])
        return exp.WithinGroup(this=fn, expression=order)
    return exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(p)), expression=order)


def percentiles_select(
    columns: list[tuple[str, exp.Expr, float]], source: exp.Expr, dialect: str, where: exp.Expr | None = None
) -> exp.Select:
    """One row: ``alias = the exact p-th percentile of expr`` over ``source`` for each ``(alias, expr, p)``.

    Caps define metrics, so they must not depend on the warehouse: no approximate quantiles anywhere.
    BigQuery has its exact ``PERCENTILE_CONT`` only as an analytic function: every row then carries
    the same value and ``MAX`` folds them into the one row.
    """
    if dialect == "bigquery":
        per_row = exp.select(
            *[
                exp.alias_(
                    exp.Window(
                        this=exp.Anonymous(this="PERCENTILE_CONT", expressions=[expr, exp.Literal.number(p)])
                    ),
                    alias,
                )
                for alias, expr, p in columns
            ]
        ).from_(source)
        if where is not None:
            per_row = per_row.where(where)
        return exp.select(*[exp.alias_(exp.Max(this=_col(alias)), alias) for alias, _e, _p in columns]).from_(
            per_row.subquery("w")
        )
    q = exp.select(*[exp.alias_(_percentile(expr, p, dialect), alias) for alias, expr, p in columns]).from_(
        source
    )
    return q if where is None else q.where(where)


def naive_utc(value: datetime | date) -> datetime:
    """A naive UTC datetime (an aware value is converted; a date is its midnight), for comparisons."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime(value.year, value.month, value.day)
