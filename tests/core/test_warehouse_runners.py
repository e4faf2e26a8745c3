"""Runner contracts: URL parsing, row normalisation, connection ownership, error messages."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.warehouse import (
    DbApiWarehouse,
    DuckDBWarehouse,
    SqlAlchemyWarehouse,
    Warehouse,
    redact_url,
    warehouse_from_url,
)


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.description = [("VARIANT",), ("Units",), ("Day",), ("Total",)]

    def execute(self, sql: str) -> None:
        self.conn.executed.append(sql)
        if "boom" in sql:
            raise RuntimeError('relation "boom" does not exist\nLINE 1: SELECT ...')

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [("control", 10, date(2024, 3, 1), Decimal("12.5")), (None, 2, datetime(2024, 3, 2, 6), None)]

    def close(self) -> None:
        self.conn.cursors_closed += 1


class FakeConnection:
    def __init__(self) -> None:
        self.executed: list[str] = []
        self.cursors_closed = 0
        self.rollbacks = 0
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        self.closed = True


def test_dbapi_rows_are_normalised_and_callers_connection_stays_open() -> None:
    conn = FakeConnection()
    wh = DbApiWarehouse(conn, "snowflake")
    assert isinstance(wh, Warehouse) and wh.dialect == "snowflake"
    rows = wh.query("SELECT 1")
    assert rows == [
        {"variant": "control", "units": 10, "day": "2024-03-01", "total": 12.5},
        {"variant": None, "units": 2, "day": "2024-03-02T06:00:00", "total": None},
    ]
    assert conn.rollbacks == 1 and conn.cursors_closed == 1 and not conn.closed
    with pytest.raises(WarehouseError) as info:
        wh.query("SELECT boom")
    assert str(info.value) == 'snowflake: relation "boom" does not exist'
    assert conn.rollbacks == 2 and not conn.closed


def test_dbapi_factory_connections_are_closed() -> None:
    made: list[FakeConnection] = []

    def factory() -> FakeConnection:
        made.append(FakeConnection())
        return made[-1]

    wh = DbApiWarehouse(factory, "redshift")
    wh.query("SELECT 1")
    with pytest.raises(WarehouseError):
        wh.query("SELECT boom")
    assert len(made) == 2 and all(c.closed for c in made)

    def refuse() -> Any:
        raise OSError("connection refused")

    with pytest.raises(WarehouseError, match="redshift: cannot connect: connection refused"):
        DbApiWarehouse(refuse, "redshift").query("SELECT 1")


def test_duckdb_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    assert warehouse_from_url(f"duckdb:///{db}").path == str(db)  # type: ignore[attr-defined]
    assert warehouse_from_url("duckdb:///w.duckdb", base_dir=str(tmp_path)).path == str(db)  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)
    assert warehouse_from_url("duckdb:///w.duckdb").path == "w.duckdb"  # type: ignore[attr-defined]
    assert warehouse_from_url("w.duckdb").dialect == "duckdb"
    assert warehouse_from_url("duckdb:///:memory:").query("SELECT 42 AS x") == [{"x": 42}]
    with pytest.raises(WarehouseError, match="database file not found"):
        warehouse_from_url("duckdb:///missing.duckdb")
    with pytest.raises(WarehouseError, match="not a warehouse URL"):
        warehouse_from_url("exposures.csv")
    with pytest.raises(WarehouseError, match="Catalog Error"):
        DuckDBWarehouse(db).query("SELECT * FROM nope")


def test_duckdb_opens_files_read_only(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    with pytest.raises(WarehouseError, match="read-only"):
        DuckDBWarehouse(db).query("DROP TABLE t")
    assert DuckDBWarehouse(db).query("SELECT x FROM t") == [{"x": 1}]


def test_sqlalchemy_engine_and_url_dialects() -> None:
    import sqlalchemy

    sqlite = sqlalchemy.create_engine("sqlite://")
    with pytest.raises(WarehouseError, match="unsupported SQLAlchemy dialect 'sqlite'"):
        SqlAlchemyWarehouse(sqlite)
    wh = SqlAlchemyWarehouse(sqlite, dialect="duckdb")
    assert wh.query("SELECT 1 AS One, '00:00:00' AS t") == [{"one": 1, "t": "00:00:00"}]
    pg = warehouse_from_url("postgresql+psycopg://u:pw@127.0.0.1:1/db")
    assert isinstance(pg, SqlAlchemyWarehouse) and pg.dialect == "postgres"
    assert isinstance(warehouse_from_url("postgres://u@h/db"), DbApiWarehouse)


def test_redact_url() -> None:
    assert redact_url("postgresql://analyst:s3cret@db:5432/prod") == "postgresql://analyst:***@db:5432/prod"
    assert redact_url("postgresql://analyst@db/prod") == "postgresql://analyst@db/prod"
    assert redact_url("duckdb:///x.duckdb") == "duckdb:///x.duckdb"
