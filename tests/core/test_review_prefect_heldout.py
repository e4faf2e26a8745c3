"""False findings and misses seen on public Prefect repositories held out of the judged corpus
(benchmarks/RESULTS.md, "The reviewer on Prefect repositories"), one hand-minimised snippet each."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dataeng_agents.core.review import ReviewResult, review_paths

HEADER = """\
from prefect import flow, task
"""


def _review(tmp_path: Path, source: str, name: str = "flow.py") -> ReviewResult:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return review_paths([path], config={})


def _hits(result: ReviewResult, rule: str) -> list[str]:
    return [f.message for f in result.findings if f.rule_id == rule]


# ------------------------------------------------------------------ PFT004
def test_pft004_map_of_a_dataframe_or_a_thread_pool_is_no_fan_out(tmp_path: Path) -> None:
    """CBIIT/ChildhoodCancerDataInitiative-Prefect_Pipeline: ``rules_df.map(lambda ...)`` and
    ``df["c"].map(mapping)`` in a flow body are pandas, not Prefect tasks."""
    result = _review(
        tmp_path,
        HEADER
        + """
import pandas as pd
from concurrent.futures import ThreadPoolExecutor


@flow
def transform(path: str, mapping: dict) -> None:
    rules_df = pd.read_csv(path)
    rules_df = rules_df.map(lambda x: x.strip() if isinstance(x, str) else x)
    rules_df["site"] = rules_df["site"].map(mapping).fillna(rules_df["site"])
    with ThreadPoolExecutor() as executor:
        for row in rules_df.itertuples():
            executor.submit(print, row)
""",
    )
    assert _hits(result, "PFT004") == []


def test_pft004_still_reports_tasks_of_this_file_and_imported_tasks(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
from .tasks import load_study


@task(retries=2)
def validate_sheet(sheet: str) -> None: ...


@flow
def validate(sheets: list[str]) -> None:
    validate_sheet.with_options(name="one sheet").map(sheets)


@flow
def load(studies: list[str]) -> None:
    for s in studies:
        load_study.submit(s)
""",
    )
    assert _hits(result, "PFT004") == [
        "flow 'validate' fans out 'validate_sheet.map' without a concurrency limit",
        "flow 'load' fans out 'load_study.submit' without a concurrency limit",
    ]


# ------------------------------------------------------------------ PFT005 / PFT003
def test_pft005_no_cache_policy_is_not_a_cache(tmp_path: Path) -> None:
    """CBIIT/...-Prefect_Pipeline: ``@task(cache_policy=NO_CACHE, persist_result=False)`` switches
    caching off (for a task taking a database driver); there is no cache to read back."""
    result = _review(
        tmp_path,
        HEADER
        + """
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE, name="dump_database", persist_result=False)
def dump_database(driver, dump_file: str) -> None: ...
""",
    )
    assert _hits(result, "PFT005") == []


def test_pft003_a_retried_flow_whose_tasks_all_say_no_cache_redoes_all_work(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
from prefect.cache_policies import NO_CACHE


@task(retries=2, cache_policy=NO_CACHE)
def extract() -> list[int]: ...


@flow(retries=2)
def pipeline() -> None:
    extract()
""",
    )
    assert _hits(result, "PFT003") == [
        "flow 'pipeline' retries, but none of its tasks caches its result: a retry redoes all work"
    ]


# ------------------------------------------------------------------ REL008
def test_rel008_a_handler_that_exits_does_not_swallow_the_error(tmp_path: Path) -> None:
    """CBIIT/...-Prefect_Pipeline (11 findings): ``except Exception: logger.error(...); sys.exit(1)``
    raises SystemExit, so the run still fails."""
    result = _review(
        tmp_path,
        HEADER
        + """
import sys


@task(retries=1)
def read_template(path: str) -> str:
    try:
        return open(path).read()
    except BaseException as err:
        print(f"Issue occurred while opening file {path}: {err}")
        sys.exit(1)


@task(retries=1)
def read_other(path: str) -> str:
    try:
        return open(path).read()
    except Exception as err:
        print(err)
        return ""
""",
    )
    assert _hits(result, "REL008") == ["task 'read_other' catches a broad exception without re-raising"]


# ------------------------------------------------------------------ SEC003
def test_sec003_bind_markers_in_formatted_sql_are_not_formatting(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO and nishantnayar/prefect-trading (12 of 17 findings): a ``%s`` in an
    f-string or a ``.format`` text is a DB-API bind marker; a ``{placeholders}`` list built of markers
    is one too; a placeholder in a commented-out SQL line formats nothing."""
    result = _review(
        tmp_path,
        HEADER
        + """
@task(retries=1)
def load(cur, table: str, df, ids: list[int], lookback: int, where_sql: str) -> None:
    cur.execute(f"SELECT status FROM etl.run_log {where_sql} WHERE rn <= %s", (lookback,))
    cur.execute("DELETE FROM src.{t} WHERE (year * 100 + month) >= %s".format(t=table), (202401,))
    placeholders = ", ".join(["%s"] * len(df.columns))
    cur.execute(f"INSERT INTO {table} (a, b) VALUES ({placeholders}) ON CONFLICT DO NOTHING", (1, 2))
    named = ", ".join([f":p{j}" for j in range(len(ids))])
    cur.execute(f"SELECT id FROM items WHERE id IN ({named})", ids)
    cur.execute(f'''
        SELECT a FROM items
        WHERE active = 'S'
        --- AND supplier IN ({",".join(map(str, ids))})
    ''')
""",
    )
    assert _hits(result, "SEC003") == []


def test_sec003_still_reports_values_formatted_into_sql(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
@task(retries=1)
def load(cur, ids: list[int], since: str) -> None:
    id_list = ", ".join(str(i) for i in ids)
    cur.execute(f"SELECT a FROM items WHERE supplier IN ({id_list})")
    cur.execute("SELECT a FROM items WHERE since > '%s'" % since)
    cur.execute(f"SELECT a FROM items WHERE since > {since} -- newer rows")
""",
    )
    assert len(_hits(result, "SEC003")) == 3


# ------------------------------------------------------------------ REL006
def test_rel006_drop_or_truncate_before_the_insert_is_a_full_refresh(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO (9 of 15 findings): DROP TABLE IF EXISTS, CREATE TABLE, then INSERT in
    the same task rebuilds the table; a rerun does not duplicate rows."""
    result = _review(
        tmp_path,
        HEADER
        + """
from psycopg2.extras import execute_values


@task(retries=1)
def copy_table(cur, table: str, columns: str, values: list) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    cur.execute(f"CREATE TABLE {table} (a int, b text)")
    execute_values(cur, f"INSERT INTO {table} ({columns}) VALUES %s", values)


@task(retries=1)
def reload_table(cur, rows: list) -> None:
    cur.execute("TRUNCATE TABLE src.stock")
    cur.executemany("INSERT INTO src.stock (a, b) VALUES (%s, %s)", rows)


@task(retries=1)
def append_rows(cur, rows: list) -> None:
    cur.executemany("INSERT INTO src.stock (a, b) SELECT TRUNCATE(a, 2), b FROM staging", rows)
""",
    )
    assert _hits(result, "REL006") == [
        "task 'append_rows' runs a plain INSERT INTO: a retry or rerun duplicates rows"
    ]


# ------------------------------------------------------------------ SEC001
def test_sec001_odbc_connection_string_and_positional_uri_are_hard_coded_secrets(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO: an ODBC connection string with ``PWD=`` (bound to a name that is no
    secret name, split over adjacent literals) and a URI with a password passed positionally to
    ``create_engine`` were not reported (the redactor found the first; the code check did not)."""
    result = _review(
        tmp_path,
        HEADER
        + """
import pyodbc
from sqlalchemy import create_engine

SQLSERVER_CONN_STR = (
    "DRIVER={ODBC Driver 17 for SQL Server};"
    "SERVER=10.54.200.92;"
    "UID=data-sync;"
    "PWD=aladelta10$"
)
TEMPLATE = "DRIVER={driver};SERVER={server};UID={user};PWD={password}"


@task(retries=1)
def extract(server: str, user: str, pwd: str) -> None:
    pyodbc.connect(f"DRIVER={{ODBC Driver 18}};SERVER={server};UID={user};PWD={pwd}")
    pyodbc.connect("Server=db;Database=sales;User Id=etl;Password=Sales2024!;")
    create_engine("postgresql+psycopg2://diarco_data:aladelta10$@localhost/diarco_data")
    create_engine("postgresql+psycopg2://localhost/diarco_data")
""",
    )
    assert _hits(result, "SEC001") == [
        "a connection string with a password is hard-coded (in 'SQLSERVER_CONN_STR')",
        "a connection string with a password is hard-coded",
        "a connection URI with an embedded password is hard-coded",
    ]


def test_connection_string_password_needs_a_literal_value_and_another_key() -> None:
    from dataeng_agents.core.security import literal_secret

    assert literal_secret("CONN", "DRIVER={x};UID=u;PWD={ab;c1};") is not None  # ODBC braces
    assert literal_secret("CONN", "Server=db;PWD={password}") is None  # a .format template
    assert literal_secret("CONN", "Server=db;Password=changeme;") is None  # a placeholder
    assert literal_secret("CONN", "Server=db;Password=$DB_PASS;") is None  # a reference
    assert literal_secret("CONN", "PWD=abc123") is None  # no connection string around it


# ------------------------------------------------------------------ REL005
def test_rel005_a_clock_that_only_times_the_task_is_not_reported(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO, nishantnayar/prefect-trading, Cam0505/CamOnPrefect (8 of 20): ``inicio
    = datetime.now()`` ... ``(datetime.now() - inicio).total_seconds()`` measures a duration, and a
    throttle (``if (now - last).total_seconds() >= 3600: last = now``) compares two clock readings."""
    result = _review(
        tmp_path,
        HEADER
        + """
import time
from datetime import datetime, timedelta


@task(retries=1)
def replicate(tables: list[str]) -> float:
    inicio = datetime.now()
    for t in tables:
        print(t)
    return (datetime.now() - inicio).total_seconds()


@task(retries=1)
def stream(messages) -> None:
    last = datetime.now()
    for m in messages:
        now = datetime.now()
        if (now - last).total_seconds() >= 3600:
            last = now
    start = time.time()
    print(f"took {time.time() - start:.1f}s")


@task(retries=1)
def window(cur) -> None:
    since = datetime.now() - timedelta(days=1)
    cur.execute("SELECT a FROM t WHERE ts > %s", (since,))
""",
    )
    assert _hits(result, "REL005") == ["'datetime.now()' inside task 'window': results depend on run time"]
