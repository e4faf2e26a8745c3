"""Warehouse errors say whether a retry may pass, from the real drivers' errors (DuckDB, PostgreSQL).

Orchestrators retry the transient kind only: a dropped connection, a lock, a cancelled statement
may pass later; a missing table, bad SQL or a rejected login fails the same way every time.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.warehouse import DuckDBWarehouse, warehouse_from_url
from dataeng_agents.core.warehouse.runners import DbApiWarehouse


def _error(run: object) -> WarehouseError:
    with pytest.raises(WarehouseError) as caught:
        run()  # type: ignore[operator]
    return caught.value


def test_duckdb_errors(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    wh = DuckDBWarehouse(path)
    assert _error(lambda: wh.query("SELECT * FROM missing")).transient is False
    assert _error(lambda: wh.query("SELEC 1")).transient is False
    assert _error(lambda: wh.query("SELECT 'a'::INT")).transient is False
    assert _error(lambda: DuckDBWarehouse(tmp_path / "nope.duckdb")).transient is False
    # another process holds the write lock: the next run may find it released
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print(1, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"1"
        locked = _error(lambda: wh.query("SELECT * FROM t"))
        assert "lock" in str(locked).lower() and locked.transient is True
    finally:
        holder.kill()
        holder.wait()
    assert wh.query("SELECT * FROM t") == [{"x": 1}]


@pytest.mark.postgres
def test_postgres_errors(postgres_url: str) -> None:
    import psycopg

    wh = warehouse_from_url(postgres_url)
    assert _error(lambda: wh.query("SELECT * FROM no_such_table")).transient is False  # 42P01
    assert _error(lambda: wh.query("SELECT 1/0")).transient is False  # 22012
    base = postgres_url.rsplit("/", 1)[0]
    assert _error(lambda: warehouse_from_url(base + "/no_such_db").query("SELECT 1")).transient is False
    refused = _error(lambda: warehouse_from_url("postgresql://postgres@127.0.0.1:1/test").query("SELECT 1"))
    assert refused.transient is True  # no server (yet): a retry may find it up
    # a statement timeout cancels the query (SQLSTATE 57014): the next run may be faster
    slow = DbApiWarehouse(lambda: psycopg.connect(postgres_url, options="-c statement_timeout=50"))
    started = time.monotonic()
    cancelled = _error(lambda: slow.query("SELECT pg_sleep(5)"))
    assert cancelled.transient is True and time.monotonic() - started < 4


def test_the_classification_survives_pickling_and_errors_without_a_driver_use_the_message() -> None:
    error = WarehouseError("postgres: server closed the connection unexpectedly", transient=True)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is WarehouseError and copy.transient is True and str(copy) == str(error)
    assert WarehouseError('postgres: relation "x" does not exist').transient is False
    assert WarehouseError("postgres: connection refused").transient is True
    assert WarehouseError("x", transient=False).transient is False
