"""Issue 14: false errors and silent gaps seen on other people's DAGs and flows, one test each."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from dataeng_agents.core.review import ReviewResult, review_paths
from dataeng_agents.core.review.models import Severity

HEADER = """\
from datetime import datetime, timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
"""


def _review(tmp_path: Path, source: str, name: str = "dag.py", **kw: object) -> ReviewResult:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return review_paths([path], **kw)  # type: ignore[arg-type]


def _hits(result: ReviewResult, rule: str) -> list[str]:
    return [f.message for f in result.findings if f.rule_id == rule]


# ------------------------------------------------------------------ SEC001
def test_sec001_kubernetes_secret_references_and_key_paths_are_not_secrets(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
from airflow.providers.cncf.kubernetes.secret import Secret
from airflow.providers.ssh.hooks.ssh import SSHHook

secret_env = Secret(deploy_type="env", deploy_target="DB_PASSWORD", secret="airflow-secrets", key="password")
hook = SSHHook(ssh_conn_id="box", key_file="/root/.ssh/id_rsa")
ssh_private_key = "/root/.ssh/id_rsa"
password_conn_id = "warehouse"
token = "{{ var.value.api_token }}"
""",
    )
    assert _hits(result, "SEC001") == []


def test_sec001_names_of_secret_objects_and_keys_are_not_secrets(tmp_path: Path) -> None:
    """Seen in a public repository's custom operators (Ferlab-Ste-Justine/clin-pipelines-dags): a
    Kubernetes secret's name and the key names inside it, bound to secret-looking keywords."""
    result = _review(
        tmp_path,
        HEADER
        + """
from lib.operators import SparkOperator, NextflowOperator

with DAG("etl", schedule=None, start_date=datetime(2024, 1, 1)):
    SparkOperator(task_id="varsome", spark_secret="varsome", spark_class="bio.Varsome")
    NextflowOperator(
        task_id="nextflow",
        minio_credentials_secret_name="cqgc-qa-minio-app-nextflow",
        minio_credentials_secret_access_key="access_key",
        minio_credentials_secret_secret_key="secret_key",
    )
    SparkOperator(task_id="db", db_secret="warehouse-creds")
""",
    )
    assert _hits(result, "SEC001") == []


@pytest.mark.parametrize(
    "kwarg",
    [
        'client_secret="varsome"',  # a secret value's name: any literal is a secret
        'jwt_secret="supersecretvalue"',
        'spark_secret="S3cr3tValue42"',  # not an object name: mixed case and digits
        'db_secret="a8f5f167f44f4964e6c998dee827110c"',
        'password="lappis_graphql"',
        'aws_secret_access_key="wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"',
    ],
)
def test_sec001_still_finds_literal_secrets_next_to_those_names(tmp_path: Path, kwarg: str) -> None:
    source = HEADER + f"from lib.operators import SparkOperator\n\nSparkOperator(task_id='x', {kwarg})\n"
    assert len(_hits(_review(tmp_path, source), "SEC001")) == 1


@pytest.mark.parametrize(
    "line",
    [
        'STRIPE = "sk_live_51Habcdefghijklmnopqrstuvwx"',
        'headers = {"Authorization": "Bearer 8f3a9c2e7b1d4f6a0c5e9b2d7f1a3c8e"}',
        'hook = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx"',
        'cmd = BashOperator(task_id="dump", bash_command="mysqldump -u root -pS3cr3tPass db > /tmp/x.sql")',
        'gh = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"',
        'resp = requests.get("https://api.example.com", auth=("admin", "hunter2hunter2"))',
        'URI = "postgresql://etl:pa55word@db.internal:5432/dw"',
    ],
)
def test_sec001_finds_value_shaped_secrets_whatever_the_name(tmp_path: Path, line: str) -> None:
    result = _review(tmp_path, HEADER + "import requests\n\n" + line + "\n")
    assert len(_hits(result, "SEC001")) == 1, [f.message for f in result.findings]


def test_sec001_in_a_prefect_flow(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        """
from prefect import flow, task

@task(retries=2, timeout_seconds=60)
def call() -> None:
    client(api_key="sk-proj-abcdefghijklmnopqrstuvwxyz0123456789AB")

@flow
def main() -> None:
    call()
""",
        name="flow.py",
    )
    assert len(_hits(result, "SEC001")) == 1


# ------------------------------------------------------------------ DAG arguments through **kwargs / factories
def test_sch007_dag_passed_through_kwargs(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
dag = DAG("etl", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
common = {"dag": dag, "retries": 3}
BashOperator(task_id="a", bash_command="echo a", **common)
""",
    )
    assert [m for m in _hits(result, "SCH007") if "outside any DAG" in m] == []


FACTORY = (
    HEADER
    + """
default_args = {"owner": "data-team", "retries": 0}


def create_dag(dag_id, schedule, args):
    dag = DAG(dag_id, schedule=schedule, default_args=args, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
              catchup=False)
    with dag:
        BashOperator(task_id="load", bash_command="echo {{ ds }}")
    return dag


for name in ["orders", "users"]:
    globals()[name] = create_dag(name, "@daily", {"owner": "data-team", "retries": 10})
"""
)


def test_local_factory_parameters_are_not_the_module_defaults(tmp_path: Path) -> None:
    result = _review(tmp_path, FACTORY)
    assert result.files[0].dags == ["create_dag()"]
    assert _hits(result, "REL001") == []  # default_args is the factory's parameter: unknown, not retries=0
    assert any(u.rule_id == "REL001" for u in result.unresolved)


@pytest.mark.parametrize(
    "source",
    [
        "from airflow.sdk import DAG\nfrom common.factory import create_dag\n\ndag = create_dag('orders', '@daily')\n",
        "from gusty import create_dags\nimport airflow\n\ncreate_dags('/dags/gusty', globals())\n",
        (
            "from airflow.sdk import DAG\nfrom cosmos import DbtTaskGroup, ProjectConfig\n\n"
            "with DAG('dbt', schedule='@daily', catchup=False, tags=['dbt'], description='x') as dag:\n"
            "    DbtTaskGroup(group_id='models', project_config=ProjectConfig('/dbt'))\n"
        ),
        (
            "from cosmos import DbtDag, ProjectConfig\nimport airflow\n\n"
            "dbt_dag = DbtDag(dag_id='dbt_daily', project_config=ProjectConfig('/dbt'), schedule='@daily')\n"
        ),
    ],
)
def test_dag_factories_are_reported_as_not_fully_resolved(tmp_path: Path, source: str) -> None:
    result = _review(tmp_path, source)
    assert result.files[0].status == "reviewed"
    opaque = [u for u in result.unresolved if u.rule_id == "*"]
    assert opaque and "not reviewed statically" in opaque[0].reason
    assert result.summary()["unresolved"] >= 1


def test_cosmos_dbt_dag_is_a_dag(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        "from cosmos import DbtDag, ProjectConfig\nimport airflow\n\n"
        "d = DbtDag(dag_id='dbt_daily', project_config=ProjectConfig('/dbt'))\n",
    )
    assert result.files[0].dags == ["dbt_daily"]
    assert _hits(result, "SCH001")  # no schedule: it is a DAG like any other


# ------------------------------------------------------------------ files that hang or hide
@pytest.mark.timeout(30)
def test_fifo_and_device_named_py_are_errors_not_hangs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    os.symlink("/dev/zero", tmp_path / "zero.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    result = review_paths([tmp_path])
    errors = {Path(f.path).name: f.error for f in result.files if f.status == "error"}
    assert set(errors) == {"pipe.py", "zero.py"}
    assert "FIFO" in (errors["pipe.py"] or "") and "device" in (errors["zero.py"] or "")
    assert result.exit_code("never") == 0 and result.exit_code("error") == 1
    direct = review_paths([tmp_path / "pipe.py"])  # also when named directly
    assert direct.files[0].status == "error"


def test_unreadable_subdirectory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "dag.py").write_text("x = 1\n")
    (tmp_path / "ok.py").write_text("x = 1\n")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str] = ".") -> object:  # root reads any folder: simulate chmod 000
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = review_paths([tmp_path])
    errors = [f for f in result.files if f.status == "error"]
    assert [Path(f.path).name for f in errors] == ["locked"] and "cannot list" in (errors[0].error or "")
    assert result.exit_code() == 1


# ------------------------------------------------------------------ stable ids
def test_finding_ids_do_not_depend_on_line_numbers(tmp_path: Path) -> None:
    source = (
        HEADER
        + """
DAG_ID = "orders"
with DAG(DAG_ID, schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="load", bash_command="echo")
    BashOperator(task_id="load", bash_command="echo")
"""
    )
    before = _review(tmp_path, source)
    after = _review(tmp_path, "# a comment\n\n" + source)
    assert before.files[0].dags == ["orders"]
    assert {f.id for f in before.findings} == {f.id for f in after.findings}
    assert [f.line + 2 for f in before.findings] == [f.line for f in after.findings]


# ------------------------------------------------------------------ severity by target version
def test_severity_depends_on_the_target_version(tmp_path: Path) -> None:
    source = (
        HEADER
        + """
with DAG("legacy", schedule_interval="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
    BashOperator(task_id="load", bash_command="echo")
"""
    )
    old = _review(tmp_path, source, airflow_version="2.10")
    new = _review(tmp_path, source, airflow_version="3.3")
    assert {f.severity for f in old.findings if f.rule_id == "SCH005"} == {Severity.warn}
    assert {f.severity for f in new.findings if f.rule_id == "SCH005"} == {Severity.error}
    assert old.exit_code("error") == 0


def test_from_airflow_import_dag_is_fine_on_airflow_3(tmp_path: Path) -> None:
    result = _review(tmp_path, "from airflow import DAG\nfrom airflow.operators.bash import BashOperator\n")
    assert [f.subject for f in result.findings if f.rule_id == "SCH008"] == [
        "airflow.operators.bash.BashOperator"
    ]


def test_obs004_sees_doc_md_and_reads_well(tmp_path: Path) -> None:
    documented = _review(
        tmp_path,
        HEADER
        + """
dag = DAG("etl", schedule=None, tags=["x"], start_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
dag.doc_md = __doc__
""",
    )
    assert _hits(documented, "OBS004") == []
    bare = _review(tmp_path, HEADER + 'dag = DAG("etl", schedule=None)\n')
    assert _hits(bare, "OBS004") == ["DAG 'etl' has no tags and no description"]


def test_rel008_is_a_warning(tmp_path: Path) -> None:
    from dataeng_agents.core.review import RULES

    assert RULES["REL008"].severity is Severity.warn


# ------------------------------------------------------------------ Prefect
def test_prefect_1_max_retries_and_dataframe_returns(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        """
import pandas as pd
from prefect import Flow, task

@task(max_retries=3, timeout=600)
def extract():
    return pd.read_csv("s3://bucket/orders.csv")
""",
        name="flow.py",
    )
    assert _hits(result, "PFT001") == [] and _hits(result, "PFT002") == []
    assert _hits(result, "PERF007") == []


def test_plain_insert_in_a_prefect_task(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        """
from prefect import task

@task(retries=2, timeout_seconds=60)
def load(conn):
    conn.execute("INSERT INTO sales SELECT * FROM staging_sales")
""",
        name="flow.py",
    )
    assert len(_hits(result, "REL006")) == 1


# ------------------------------------------------------------------ SARIF
def test_sarif_marks_a_file_that_could_not_be_reviewed(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from airflow.sdk import DAG\nwith DAG(:\n")
    sarif = review_paths([tmp_path]).to_sarif()
    run = sarif["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False
    (res,) = [r for r in run["results"] if r["ruleId"] == "REVIEW-ERROR"]
    assert res["level"] == "error" and res["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ].endswith("broken.py")
    assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == "REVIEW-ERROR"
    json.dumps(sarif)


# ------------------------------------------------------------------ recall
def test_catchup_backlog(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
with DAG("hourly", schedule="@hourly", start_date=pendulum.datetime(2016, 1, 1, tz="UTC"), catchup=True,
         max_active_runs=1) as dag:
    BashOperator(task_id="load", bash_command="echo")
""",
    )
    (msg,) = _hits(result, "SCH010")
    assert "2016-01-01" in msg and "more than 10,000 runs" in msg


def test_blocking_past_without_alerting(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
with DAG("hourly", schedule="@hourly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False,
         default_args={"depends_on_past": True, "wait_for_downstream": True}) as dag:
    BashOperator(task_id="load", bash_command="echo")
""",
    )
    assert len(_hits(result, "REL012")) == 1


def test_xcom_push_of_a_query_result_and_now_in_a_template(tmp_path: Path) -> None:
    result = _review(
        tmp_path,
        HEADER
        + """
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import task

with DAG("x", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
    @task
    def extract(ti=None):
        ti.xcom_push(key="rows", value=PostgresHook("pg").get_records("select * from orders"))

    BashOperator(task_id="stamp", bash_command="echo {{ macros.datetime.now() }}")
    extract()
""",
    )
    assert len(_hits(result, "PERF007")) == 1
    assert any("template" in m for m in _hits(result, "REL005"))


# ------------------------------------------------------------------ PERF008
def _transfers_dag(n: int) -> str:
    tasks = "".join(
        f"    SQLExecuteQueryOperator(task_id='copy_{i}', conn_id='wh', source_conn_id='wh', sql='select 1')\n"
        for i in range(n)
    )
    return (
        HEADER
        + "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator\n\n"
        + "with DAG('copies', schedule='@daily', start_date=datetime(2024, 1, 1), catchup=False):\n"
        + tasks
    )


def test_perf008_counts_a_task_once_when_two_of_its_conn_ids_name_the_connection(tmp_path: Path) -> None:
    """Three transfers from and to the same warehouse are three tasks, not six (threshold 5)."""
    assert _hits(_review(tmp_path, _transfers_dag(3)), "PERF008") == []
    assert _hits(_review(tmp_path, _transfers_dag(6), name="six.py"), "PERF008") == [
        "6 tasks of DAG 'copies' use connection 'wh' without a pool"
    ]


# ------------------------------------------------------------------ REL010
def test_rel010_reads_the_trigger_rule_from_default_args(tmp_path: Path) -> None:
    """``default_args={"trigger_rule": "all_done"}`` makes every task ALL_DONE: the leaf is reported."""
    dag = (
        HEADER
        + "with DAG('cleanup', schedule='@daily', start_date=datetime(2024, 1, 1), catchup=False,\n"
        + "         default_args={'trigger_rule': %s}):\n"
        + "    work = BashOperator(task_id='work', bash_command='exit 1')\n"
        + "    cleanup = BashOperator(task_id='cleanup', bash_command='rm -rf /tmp/x')\n"
        + "    work >> cleanup\n"
    )
    assert _hits(_review(tmp_path, dag % "'all_done'"), "REL010") == [
        "leaf task 'cleanup' runs with ALL_DONE and no ONE_FAILED watcher exists: "
        "the DAG run succeeds even when a task failed"
    ]
    assert _hits(_review(tmp_path, dag % "'all_success'", name="ok.py"), "REL010") == []


# ------------------------------------------------------------------ REL005
@pytest.mark.parametrize(
    ("statement", "severity"),
    [
        # a record of when something happened (seen in Ferlab-Ste-Justine/clin-pipelines-dags): a warning
        ("entry.lastUpdate = datetime.now().isoformat()", Severity.warn),
        ("row['updated_at'] = datetime.now().strftime('%Y-%m-%d %H:%M')", Severity.warn),
        ("save(loaded_ts=datetime.now().isoformat())", Severity.warn),
        # the wall clock as the data's date or window: an error
        ("run_date = datetime.now().strftime('%Y-%m-%d')", Severity.error),
        ("start_updated = datetime.now().isoformat()", Severity.error),
        ("save(datetime.now().isoformat())", Severity.error),
        ("since = datetime.now() - timedelta(days=1)", Severity.error),
    ],
)
def test_rel005_a_clock_stamp_is_a_warning_and_a_clock_window_an_error(
    tmp_path: Path, statement: str, severity: Severity
) -> None:
    source = (
        HEADER
        + "from airflow.sdk import task\n\n\n"
        + "@task\n"
        + "def refresh(entry, row, save):\n"
        + f"    {statement}\n\n\n"
        + "with DAG('stamps', schedule='@daily', start_date=datetime(2024, 1, 1), catchup=False):\n"
        + "    refresh(None, {}, print)\n"
    )
    result = _review(tmp_path, source)
    assert [f.severity for f in result.findings if f.rule_id == "REL005"] == [severity]


# ------------------------------------------------------------------ SEC003
def test_sec003_a_placeholder_anywhere_inside_a_values_list_is_a_value(tmp_path: Path) -> None:
    """Greenstand/treetracker-airflow-dags (judged corpus): geometry points pasted into a function call
    inside VALUES are values, whatever the bind markers beside them; a list of bind markers in VALUES,
    and identifiers after the list (ON CONFLICT ... SET), are not."""
    source = (
        HEADER
        + """
from airflow.sdk import task


@task
def segment(cur, points: list[str], columns: list[str]) -> None:
    cur.execute(f"INSERT INTO seg (id, hull) VALUES (%s, (SELECT ST_Buffer({points[0]}, 0.00001)))", (1,))
    cur.execute(f"INSERT INTO seg (id, hull) VALUES (%s, ST_Collect(ARRAY[{', '.join(points)}]))", (1,))
    placeholders = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    cur.execute(f"INSERT INTO seg ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT (id) DO UPDATE SET {updates}")


with DAG("segments", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False):
    segment(None, [], [])
"""
    )
    result = _review(tmp_path, source)
    assert [f.line for f in result.findings if f.rule_id == "SEC003"] == [12, 13]


# ------------------------------------------------------------------ SEC006
def test_sec006_a_secret_logged_as_it_is_and_what_is_not_one(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO prints `f"PG:/{PG_USER}:{PG_PASSWORD}@..."` in two flows. What is computed
    from a secret (its length, a prefix, a flag), a pagination cursor and a bare `token` (Greenstand's
    tree tokens, rows of wallet.token) are not reported."""
    source = (
        HEADER
        + """
import logging

from airflow.sdk import BaseHook, task

log = logging.getLogger(__name__)
PG_PASSWORD = BaseHook.get_connection("pg").password


@task
def load(params: dict, api_key: str, access_token: str, next_token: str, token: dict) -> None:
    conn = BaseHook.get_connection("warehouse")
    print(conn.password)
    log.info(f"PG:/etl:{PG_PASSWORD}@db/dw")
    log.warning("key %s", api_key)
    log.warning("key %s" % api_key)
    print("auth: {}".format(access_token))
    print("Bearer " + access_token)
    print("db password", params["password"])
    print(len(api_key), api_key[:4], api_key.startswith("PK"), bool(conn.password))
    is_secret = True
    print(f"{'***' if is_secret else conn.login}")
    log.info("next page %s", next_token)
    print("token", token)


with DAG("logs", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False):
    load({}, "", "", "", {})
"""
    )
    result = _review(tmp_path, source)
    assert sorted(f.line for f in result.findings if f.rule_id == "SEC006") == [18, 19, 20, 21, 22, 23, 24]
    assert {f.severity for f in result.findings if f.rule_id == "SEC006"} == {Severity.warn}


def test_sec006_in_a_prefect_flow(tmp_path: Path) -> None:
    source = """\
from prefect import flow, get_run_logger, task
from prefect.blocks.system import Secret


@task(retries=1, timeout_seconds=60)
def extract() -> None:
    password = Secret.load("pg").get()
    get_run_logger().info(f"using {password}")


@flow(retries=1, timeout_seconds=600)
def nightly() -> None:
    extract()
"""
    result = _review(tmp_path, source, name="flow.py")
    assert [(f.rule_id, f.line) for f in result.findings if f.rule_id == "SEC006"] == [("SEC006", 8)]
