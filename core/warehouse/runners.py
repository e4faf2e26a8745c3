"""Warehouse runners: run one SQL string, return its (small) result as a list of dicts.

The analysis only ever fetches aggregates (variants x metrics x (1 + days + dimension levels) rows),
so the ``Warehouse`` protocol is deliberately tiny — anything that can run a SELECT and return rows
fits, which is how the Airflow adapter (a common-sql ``DbApiHook`` connection) and the Prefect adapter
(a prefect-sqlalchemy engine) plug in:

* :class:`DuckDBWarehouse` — embedded default; a ``.duckdb`` file or ``:memory:``; reads Parquet/CSV
  through ``file:`` sources.
* :class:`DbApiWarehouse` — any PEP 249 connection (psycopg 3, a hook's ``get_conn()``), or a
  zero-argument factory returning one (then opened and closed per query).
* :class:`SqlAlchemyWarehouse` — a SQLAlchemy ``Engine``.
* :func:`warehouse_from_url` — ``duckdb:///rel.duckdb``, ``duckdb:////abs.duckdb``,
  ``duckdb:///:memory:``, a bare ``*.duckdb`` path, ``postgresql://…`` (psycopg), or any
  ``dialect+driver://`` URL SQLAlchemy knows.

Rows come back with lower-case keys (Snowflake upper-cases unquoted aliases), ``Decimal`` as
``float`` and dates as ISO strings. Any driver error becomes :class:`WarehouseError` with the
database's own first line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dataeng_agents.core.errors import WarehouseError

Row = dict[str, Any]


@runtime_checkable
class Warehouse(Protocol):
    """What the analysis needs from a warehouse: its SQL dialect and a way to run a SELECT."""

    @property
    def dialect(self) -> str: ...

    def query(self, sql: str) -> list[Row]: ...


def _normalise(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(columns: Sequence[str], records: Sequence[Sequence[Any]]) -> list[Row]:
    names = [c.lower() for c in columns]
    return [{k: _normalise(v) for k, v in zip(names, rec, strict=True)} for rec in records]


#: SQLSTATE classes a retry can clear: connection exception, transaction rollback (serialization
#: failure, deadlock), insufficient resources, operator intervention (shutdown, statement timeout)
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
#: driver error classes (DB-API 2, DuckDB, Spark) that mean the SQL, the data or the schema is wrong
_PERMANENT_DRIVER_ERRORS = frozenset(
    {
        "ProgrammingError",
        "DataError",
        "IntegrityError",
        "NotSupportedError",
        "CatalogException",
        "BinderException",
        "ParserException",
        "ConversionException",
        "InvalidInputException",
        "AnalysisException",
    }
)


def driver_error(prefix: str, exc: BaseException) -> WarehouseError:
    """A driver's error as a :class:`WarehouseError` that knows whether a retry may pass.

    The SQLSTATE decides where the driver gives one (psycopg, or the DB-API error SQLAlchemy
    wraps); else the error's class (a DB-API ``ProgrammingError``, a DuckDB ``CatalogException``
    never passes on a retry); else the message (an ``OperationalError`` at login carries no
    SQLSTATE: "connection refused" may pass later, ``database "x" does not exist`` never does).
    """
    origin = getattr(exc, "orig", None) or exc
    sqlstate = getattr(origin, "sqlstate", None) or getattr(origin, "pgcode", None)
    transient: bool | None = None
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        transient = sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
    elif {c.__name__ for c in type(exc).__mro__} & _PERMANENT_DRIVER_ERRORS:
        transient = False
    return WarehouseError(f"{prefix}{_first_line(exc)}", transient=transient)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class DuckDBWarehouse:
    """Embedded DuckDB. ``path`` is a database file (opened read-only) or ``":memory:"``.

    :param path: the ``.duckdb`` file, or ``":memory:"``.
    :param connection: an already open ``duckdb`` connection to use instead of ``path``.
    :param threads: DuckDB worker threads (default: DuckDB's own choice).
    :param memory_limit: DuckDB memory limit such as ``"200MB"``: joins and aggregates spill to
        ``temp_directory`` beyond it (slower, but a bounded footprint on a shared worker).
    :param temp_directory: where DuckDB spills (default: DuckDB's own choice).
    """

    dialect = "duckdb"

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        connection: Any = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = str(path)
        self._connection = connection
        self._config: dict[str, Any] = {}
        if threads is not None:
            self._config["threads"] = int(threads)
        if memory_limit is not None:
            self._config["memory_limit"] = str(memory_limit)
        if temp_directory is not None:
            self._config["temp_directory"] = str(temp_directory)
        if connection is None and self.path != ":memory:" and not Path(self.path).exists():
            raise WarehouseError(f"duckdb: database file not found: {self.path}")

    def _connect(self) -> tuple[Any, bool]:
        import duckdb

        if self._connection is not None:
            return self._connection, False
        try:
            # settings go through DuckDB's config dict, never into SQL text
            con = duckdb.connect(self.path, read_only=self.path != ":memory:", config=self._config)
            # DuckDB draws its own progress bar on stdout for queries over 2 s: noise in a
            # scheduler's task log (the analysis reports its steps through its own progress)
            con.execute("SET enable_progress_bar = false")
        except duckdb.Error as exc:
            raise driver_error(f"duckdb: cannot open {self.path}: ", exc) from None
        return con, True

    def query(self, sql: str) -> list[Row]:
        import duckdb

        con, owned = self._connect()
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description]
            return _rows(columns, cur.fetchall())
        except duckdb.Error as exc:
            raise driver_error("duckdb: ", exc) from None
        finally:
            if owned:
                con.close()

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path!r})"


class DbApiWarehouse:
    """A PEP 249 (DB-API 2) connection, or a factory of them.

    :param connection_or_factory: an open connection (kept open; the caller owns it), or a
        zero-argument callable returning a new connection (opened and closed around each query).
    :param dialect: the sqlglot dialect name of the database (``postgres``, ``snowflake``, …).
    """

    def __init__(self, connection_or_factory: Any, dialect: str = "postgres") -> None:
        self._target = connection_or_factory
        self._dialect = dialect

    @property
    def dialect(self) -> str:
        return self._dialect

    def _connect(self) -> tuple[Any, bool]:
        if hasattr(self._target, "cursor"):
            return self._target, False
        if callable(self._target):
            try:
                return self._target(), True
            except Exception as exc:
                raise driver_error(f"{self._dialect}: cannot connect: ", exc) from None
        raise WarehouseError("DbApiWarehouse needs a DB-API connection or a factory returning one")

    def query(self, sql: str) -> list[Row]:
        conn, owned = self._connect()
        try:
            cur = conn.cursor()
            try:
                explicit = _begin_read_only(conn, cur, self._dialect)
                cur.execute(sql)
                columns = [d[0] for d in cur.description]
                records = cur.fetchall()
                if explicit:
                    cur.execute("ROLLBACK")
            finally:
                cur.close()
            _end_transaction(conn)
            return _rows(columns, records)
        except WarehouseError:
            raise
        except Exception as exc:
            _end_transaction(conn)
            raise driver_error(f"{self._dialect}: ", exc) from None
        finally:
            if owned:
                # a failed close must not hide the query's outcome
                with contextlib.suppress(Exception):
                    conn.close()

    def __repr__(self) -> str:
        return f"DbApiWarehouse(dialect={self._dialect!r})"


# Dialects whose transactions can be made read-only with standard SQL: an analysis (its `sql:`
# sources and `value:` expressions are user SQL) then cannot write - nextval(), INSERT in a CTE,
# a volatile function with side effects all fail instead of leaving changes behind (a sequence is not
# rolled back by a rollback).
_READ_ONLY_DIALECTS = frozenset({"postgres", "redshift"})


def _begin_read_only(conn: Any, cur: Any, dialect: str) -> bool:
    """Make the transaction the query runs in read-only; True when an explicit block was opened.

    In a DB-API transaction (autocommit off) ``SET TRANSACTION READ ONLY`` is the first statement of
    the implicit transaction; on an autocommit connection each statement would be its own
    transaction, so an explicit ``BEGIN READ ONLY`` block is opened (and rolled back after).
    """
    if dialect not in _READ_ONLY_DIALECTS:
        return False
    if getattr(conn, "autocommit", False):
        cur.execute("BEGIN READ ONLY")
        return True
    cur.execute("SET TRANSACTION READ ONLY")
    return False


def _end_transaction(conn: Any) -> None:
    """The query only reads: roll back so no transaction stays open on a caller's connection."""
    with contextlib.suppress(Exception):
        conn.rollback()


_SQLALCHEMY_DIALECTS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "duckdb": "duckdb",
    "hive": "spark",
    "spark": "spark",
}


class SqlAlchemyWarehouse:
    """A SQLAlchemy ``Engine`` (e.g. prefect-sqlalchemy's ``SqlAlchemyConnector.get_engine()``).

    :param engine: the engine; a connection is checked out per query.
    :param dialect: override the sqlglot dialect derived from ``engine.dialect.name``.
    """

    def __init__(self, engine: Any, dialect: str | None = None) -> None:
        self.engine = engine
        name = str(getattr(getattr(engine, "dialect", None), "name", ""))
        resolved = dialect or _SQLALCHEMY_DIALECTS.get(name)
        if resolved is None:
            raise WarehouseError(f"unsupported SQLAlchemy dialect {name!r}: pass dialect=… explicitly")
        self._dialect = resolved

    @property
    def dialect(self) -> str:
        return self._dialect

    def query(self, sql: str) -> list[Row]:
        try:
            with self.engine.connect() as conn:
                if self._dialect in _READ_ONLY_DIALECTS:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # first statement: see DbApiWarehouse
                # exec_driver_sql: no bind-parameter parsing of ':' in literals
                result = conn.exec_driver_sql(sql)
                columns = list(result.keys())
                records = result.fetchall()
                conn.rollback()
        except Exception as exc:
            raise driver_error(f"{self._dialect}: ", exc) from None
        return _rows(columns, records)

    def __repr__(self) -> str:
        return f"SqlAlchemyWarehouse(dialect={self._dialect!r})"


class SparkWarehouse:
    """A Spark session (``pyspark.sql.SparkSession``, Databricks Connect): queries run through
    ``session.sql`` in the ``spark`` dialect, results collected to the driver (one row per group).

    :param session: the ``SparkSession``; the caller owns it (it is never stopped here).
    :param dialect: the sqlglot dialect of the SQL to emit (``spark`` or ``databricks``).

    Spark SQL has no read-only transaction: give the session a role that can only read.
    """

    def __init__(self, session: Any, dialect: str = "spark") -> None:
        if not hasattr(session, "sql"):
            raise WarehouseError("SparkWarehouse needs a SparkSession (an object with .sql())")
        self.session = session
        self._dialect = dialect

    @property
    def dialect(self) -> str:
        return self._dialect

    def query(self, sql: str) -> list[Row]:
        try:
            frame = self.session.sql(sql)
            columns = list(frame.columns)
            records = [tuple(row) for row in frame.collect()]
        except Exception as exc:
            raise driver_error(f"{self._dialect}: ", exc) from None
        return _rows(columns, records)

    def __repr__(self) -> str:
        return f"SparkWarehouse(dialect={self._dialect!r})"


def _duckdb_path(rest: str, base_dir: str | None, *, url: bool = True) -> str:
    # SQLAlchemy convention: duckdb:///relative.duckdb, duckdb:////absolute.duckdb; a bare path
    # (``url=False``) is taken as written, so /abs/x.duckdb stays absolute
    path = rest[1:] if url and rest.startswith("/") else rest
    if path in ("", ":memory:"):
        return ":memory:"
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return path


def warehouse_from_url(url: str, *, base_dir: str | None = None) -> Warehouse:
    """Open a warehouse from a URL (credentials stay in the URL; they are never logged or reported).

    :param url: ``duckdb:///rel.duckdb`` | ``duckdb:////abs.duckdb`` | ``duckdb:///:memory:`` |
        ``path/to/file.duckdb`` | ``postgresql://user@host:5432/db`` | ``dialect+driver://…``.
    :param base_dir: directory that relative DuckDB paths resolve against (the config's folder).
    """
    if not url:
        raise WarehouseError("no warehouse URL given")
    if url.startswith("duckdb://"):
        return DuckDBWarehouse(_duckdb_path(url[len("duckdb://") :], base_dir))
    if "://" not in url:
        if url.endswith((".duckdb", ".db", ".ddb")) or url == ":memory:":
            return DuckDBWarehouse(_duckdb_path(url, base_dir, url=False) if url != ":memory:" else url)
        raise WarehouseError(
            f"not a warehouse URL: {redact_url(url)} (use duckdb:///file.duckdb or postgresql://…)"
        )
    scheme = url.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        return DbApiWarehouse(postgres_connector(url), "postgres")
    try:
        import sqlalchemy
    except ImportError:
        raise WarehouseError(
            f"{scheme}:// URLs need SQLAlchemy and the database's dialect installed"
        ) from None
    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:
        raise driver_error(f"cannot open {redact_url(url)}: ", exc) from None
    return SqlAlchemyWarehouse(engine)


def postgres_connector(url: str) -> Callable[[], Any]:
    """A connection factory for a ``postgresql://`` URL (psycopg 3, the ``postgres`` extra).

    The driver is checked here, when the URL is resolved, so a core install without it fails with
    the extra to install instead of a connect-time ``No module named 'psycopg'``.
    """
    try:
        import psycopg
    except ImportError:
        raise WarehouseError(
            f"{redact_url(url)}: PostgreSQL warehouses need psycopg 3, which the core install does not "
            "include: pip install 'dataeng-agents[postgres]'"
        ) from None
    dsn = "postgresql://" + url.split("://", 1)[1]

    def connect() -> Any:
        return psycopg.connect(dsn, connect_timeout=10)

    return connect


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


def connection_factory(factory: Callable[[], Any], dialect: str) -> DbApiWarehouse:
    """Alias of ``DbApiWarehouse(factory, dialect)``, for readability at call sites."""
    return DbApiWarehouse(factory, dialect)
