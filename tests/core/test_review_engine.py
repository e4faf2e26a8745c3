"""Engine behaviour: malformed input, no code execution, resolution, config, suppression, outputs, CLI."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.review import ReviewResult, load_config, review_paths
from dataeng_agents.core.review.config import config_from_dict, parse_exceptions
from dataeng_agents.core.review.cron import validate_schedule_string
from dataeng_agents.core.review.models import FileReport, Finding
from typer.testing import CliRunner

GOOD_DAG = textwrap.dedent("""
    from __future__ import annotations
    from datetime import timedelta
    import pendulum
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG(
        dag_id="{dag_id}",
        schedule="@daily",
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        default_args={{"owner": "data-team", "retries": 2, "execution_timeout": timedelta(minutes=30)}},
    ) as dag:
        BashOperator(task_id="echo", bash_command="echo hi")
""")


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def _rules(result: ReviewResult) -> set[str]:
    return {f.rule_id for f in result.findings}


# ------------------------------------------------------------------ malformed input
def test_malformed_inputs_are_reported_per_file_and_the_run_continues(tmp_path: Path) -> None:
    root = tmp_path / "dags"
    _write(root / "good.py", GOOD_DAG.format(dag_id="good"))
    _write(root / "syntax.py", "from airflow.sdk import DAG\nwith DAG(:\n")
    (root / "latin1.py").write_bytes(b"from airflow.sdk import DAG\nname = '\xff\xfe caf\xe9'\n")
    (root / "empty.py").write_bytes(b"")
    big = (
        "from airflow.sdk import DAG\n"
        + "x = 1  # padding padding padding padding padding padding\n" * 90_000
    )
    _write(root / "big.py", big)
    assert (root / "big.py").stat().st_size > 5_000_000
    (root / "folder.py").mkdir()
    _write(root / "folder.py" / "inner.py", GOOD_DAG.format(dag_id="inner"))
    os.symlink(root / "loop_a.py", root / "loop_b.py")
    os.symlink(root / "loop_b.py", root / "loop_a.py")
    os.symlink(root, root / "self_link")  # a directory loop must not be followed

    result = review_paths([root, root / "loop_a.py"], profile="default")

    by_path = {Path(f.path).name: f for f in result.files}
    assert by_path["good.py"].status == "reviewed" and by_path["good.py"].dags == ["good"]
    assert by_path["inner.py"].status == "reviewed"
    assert by_path["syntax.py"].status == "error" and "syntax error at line 2" in (
        by_path["syntax.py"].error or ""
    )
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (by_path["syntax.py"].error or "").endswith(f"(parsed by Python {python})")
    assert by_path["latin1.py"].status == "error" and "0xff" in (by_path["latin1.py"].error or "")
    assert by_path["empty.py"].status == "reviewed" and by_path["empty.py"].error == "empty file"
    assert by_path["big.py"].status == "reviewed"  # 5.1 MB is under the default 10 MB limit
    assert by_path["folder.py"].status == "error" and "directory" in (by_path["folder.py"].error or "")
    assert by_path["loop_a.py"].status == "error" and "loop" in (by_path["loop_a.py"].error or "")
    assert by_path["loop_b.py"].status == "error"
    assert result.exit_code("error") == 1  # unreadable files fail the CI gate


def test_file_over_the_size_limit_is_an_error_not_a_crash(tmp_path: Path) -> None:
    p = _write(tmp_path / "big.py", "x = 1\n" * 1000)
    cfg = config_from_dict({"max_file_bytes": 100})
    result = review_paths([p], config=cfg)
    assert result.files[0].status == "error" and "over the 100-byte limit" in (result.files[0].error or "")


def test_missing_path_is_reported(tmp_path: Path) -> None:
    result = review_paths([tmp_path / "nope.py"])
    assert result.files[0].status == "error"


def test_static_mode_never_imports_reviewed_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    dag = _write(
        tmp_path / "evil.py",
        f"""
        from pathlib import Path
        from airflow.sdk import DAG, task
        Path({str(marker)!r}).write_text("imported")

        @task
        def t():
            Path({str(marker)!r}).write_text("executed")

        with DAG(dag_id="evil", schedule=None):
            t()
    """,
    )
    result = review_paths([dag], profile="strict")
    assert not marker.exists()
    assert result.files[0].status == "reviewed" and result.files[0].dags == ["evil"]


# ------------------------------------------------------------------ model / resolution
def test_default_args_resolution_order_and_unknown(tmp_path: Path) -> None:
    dag = _write(
        tmp_path / "d.py",
        """
        import pendulum
        from datetime import timedelta
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.bash import BashOperator
        BASE = {"owner": "team", "execution_timeout": timedelta(minutes=5)}
        ARGS = {**BASE, "retries": 0}

        with DAG(dag_id="a", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), default_args=ARGS):
            BashOperator(task_id="override", bash_command="x", retries=3)
            BashOperator(task_id="inherits", bash_command="x")

        with DAG(dag_id="b", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                 default_args=make_args()):
            BashOperator(task_id="dynamic", bash_command="x")
    """,
    )
    result = review_paths([dag], profile="strict")
    rel001 = [f for f in result.findings if f.rule_id == "REL001"]
    assert [f.subject for f in rel001] == ["a.inherits"]  # task kwarg wins over default_args retries=0
    assert not any(f.rule_id in {"REL002", "OBS003"} and f.subject.startswith("a.") for f in result.findings)
    unknown = {(u.rule_id, u.subject) for u in result.unresolved}
    assert ("REL001", "b.dynamic") in unknown and ("OBS003", "b.dynamic") in unknown
    assert not any(f.subject == "b.dynamic" and f.rule_id == "REL001" for f in result.findings)


def test_taskflow_decorator_dag_and_dynamic_mapping(tmp_path: Path) -> None:
    dag = _write(
        tmp_path / "tf.py",
        '''
        import pendulum
        from airflow.decorators import dag, task

        @dag(schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
        def flowing():
            """Docs."""
            @task(retries=2)
            def numbers():
                return [1, 2, 3]

            @task
            def double(x):
                return x * 2

            double.expand(x=numbers())

        flowing()
    ''',
    )
    import ast

    from dataeng_agents.core.review.airflow_model import build_module

    src = dag.read_text()
    mod = build_module(str(dag), src, ast.parse(src))
    assert [d.name for d in mod.dags] == ["flowing"]
    tasks = {t.name: t for t in mod.dags[0].tasks}
    assert set(tasks) == {"numbers", "double"} and tasks["double"].mapped and not tasks["numbers"].mapped
    assert ("numbers", "double") in mod.dags[0].edges
    result = review_paths([dag], profile="strict", airflow_version="3.3")
    assert "SCH008" in _rules(result)  # airflow.decorators is the Airflow 2 import path
    assert [f.subject for f in result.findings if f.rule_id == "REL001"] == ["flowing.double"]


def test_target_airflow_version_changes_the_verdict(tmp_path: Path) -> None:
    dag = _write(
        tmp_path / "v.py",
        """
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator
        with DAG(dag_id="v", schedule_interval="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
                 default_args={"sla": 60}):
            BashOperator(task_id="t", bash_command="x")
    """,
    )
    af2 = review_paths([dag], profile="strict", airflow_version="2.10")
    af3 = review_paths([dag], profile="strict", airflow_version="3.3")
    sch005 = lambda r: [f.message for f in r.findings if f.rule_id == "SCH005"]  # noqa: E731
    assert "deprecated" in sch005(af2)[0] and "removed in Airflow 3" in sch005(af3)[0]
    assert "SCH008" in _rules(af3) and "SCH008" not in _rules(af2)
    assert any("removed in Airflow 3" in f.message for f in af3.findings if f.rule_id == "OBS002")
    assert not any(f.rule_id == "OBS002" for f in af2.findings)  # an SLA is lateness monitoring on Airflow 2
    with pytest.raises(ConfigError) as exc:
        review_paths([dag], airflow_version="latest")
    assert exc.value.field == "airflow_version"


def test_duplicate_dag_id_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "one.py", GOOD_DAG.format(dag_id="same"))
    _write(tmp_path / "two.py", GOOD_DAG.format(dag_id="same"))
    result = review_paths([tmp_path])
    dup = [f for f in result.findings if f.rule_id == "SCH006"]
    assert len(dup) == 1 and dup[0].path.endswith("two.py") and "one.py" in dup[0].message


def test_cron_validation() -> None:
    assert validate_schedule_string("0 5 * * 1-5") is None
    assert validate_schedule_string("*/15 * * * *") is None
    assert validate_schedule_string("0 0 1 jan,jul *") is None
    assert validate_schedule_string("@daily") is None
    assert "5 fields" in (validate_schedule_string("0 5 * *") or "")
    assert "out of range" in (validate_schedule_string("61 * * * *") or "")
    assert "unknown preset" in (validate_schedule_string("@sometimes") or "")


# ------------------------------------------------------------------ config, profiles, suppression
def test_profiles(tmp_path: Path) -> None:
    dag = _write(
        tmp_path / "p.py",
        """
        import pendulum
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.bash import BashOperator
        with DAG(dag_id="p", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
            BashOperator(task_id="t", bash_command="x")
    """,
    )
    default = review_paths([dag], profile="default")
    examples = review_paths([dag], profile="examples")
    strict = review_paths([dag], profile="strict")
    assert {"REL001", "OBS001", "OBS003", "OBS004"} <= _rules(default)
    assert not {"REL001", "OBS001", "OBS003", "OBS004"} & _rules(examples)
    assert {f.severity.value for f in default.findings if f.rule_id == "OBS004"} == {"info"}
    assert {f.severity.value for f in strict.findings if f.rule_id == "OBS004"} == {"warn"}
    assert (
        default.exit_code("warn") == 1 and default.exit_code("error") == 0 and default.exit_code("never") == 0
    )


def test_inline_and_file_suppression_and_exceptions_file(tmp_path: Path) -> None:
    src = GOOD_DAG.format(dag_id="s").replace(
        'bash_command="echo hi")', 'bash_command="echo {{ params.x }}", sla=5)  # dataeng: ignore[OBS002]'
    )
    dag = _write(tmp_path / "s.py", src + "\n# dataeng: ignore-file[OBS004]\n")
    result = review_paths([dag], profile="default")
    assert "OBS004" not in _rules(result)
    assert result.suppressed >= 1
    plain = review_paths(
        [_write(tmp_path / "plain" / "s.py", GOOD_DAG.format(dag_id="s"))], profile="default"
    )
    assert "OBS004" in _rules(plain)

    exc_file = _write(tmp_path / "exceptions.txt", "# legacy DAGs\nplain/*.py OBS001,OBS004\n")
    cfg = config_from_dict({"exceptions_file": str(exc_file)})
    excepted = review_paths([tmp_path / "plain"], config=cfg)
    assert not {"OBS001", "OBS004"} & _rules(excepted) and excepted.suppressed >= 2
    with pytest.raises(ConfigError) as err:
        parse_exceptions("x.py NOPE01\n", "exc.txt")
    assert err.value.field == "exc.txt:1"


def test_pyproject_config(tmp_path: Path) -> None:
    _write(
        tmp_path / "pyproject.toml",
        """
        [tool.dataeng.review]
        profile = "examples"
        disable = ["SCH009"]
        approved_tags = ["finance"]

        [tool.dataeng.review.severity]
        REL003 = "error"
    """,
    )
    cfg = load_config(search_from=tmp_path)
    assert cfg.profile == "examples" and cfg.severity_of("REL003").value == "error"
    assert not cfg.enabled("SCH009") and not cfg.enabled("OBS001")
    assert load_config(search_from=tmp_path, profile="strict").profile == "strict"

    _write(tmp_path / "bad" / "pyproject.toml", '[tool.dataeng.review.severity]\nREL003 = "loud"\n')
    with pytest.raises(ConfigError) as err:
        load_config(search_from=tmp_path / "bad")
    assert err.value.field.startswith("tool.dataeng.review.severity")
    _write(tmp_path / "bad2" / "pyproject.toml", '[tool.dataeng.review]\ndisable = ["XYZ999"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(search_from=tmp_path / "bad2")
    assert err.value.field == "tool.dataeng.review.disable[0]"


# ------------------------------------------------------------------ outputs
def test_finding_ids_are_stable_and_outputs_render(tmp_path: Path) -> None:
    dag = _write(
        tmp_path / "o.py", GOOD_DAG.format(dag_id="o").replace("echo hi", "echo {{ dag_run.conf['x'] }}")
    )
    r1, r2 = review_paths([dag]), review_paths([dag])
    assert [f.id for f in r1.findings] == [f.id for f in r2.findings]
    assert len({f.id for f in r1.findings}) == len(r1.findings)
    # the engine computes ids inline (hot path): they must stay what the public helper gives
    assert [f.id for f in r1.findings] == [
        Finding.make_id(f.rule_id, f.path, f.subject, f.message) for f in r1.findings
    ]
    # the engine builds the report of a reviewed file without validation: it must equal the validated one
    report = r1.files[0]
    validated = FileReport(path=report.path, kind=report.kind, dags=report.dags, tasks=report.tasks)
    validated.suppressed, validated.findings = report.suppressed, report.findings
    assert report == validated and report.model_fields_set == validated.model_fields_set
    assert report.model_dump_json() == validated.model_dump_json()
    doc = json.loads(r1.to_json())
    assert doc["findings"][0]["id"] == r1.findings[0].id
    md = r1.to_markdown()
    assert "SEC004" in md and "| Severity | Rule |" in md
    sarif = r1.to_sarif()
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note"}
        assert res["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    assert {"error": "error", "warn": "warning"}[
        next(f for f in r1.findings if f.rule_id == "SEC004").severity.value
    ] == next(r for r in run["results"] if r["ruleId"] == "SEC004")["level"]


def test_cli_review_formats_and_exit_codes(tmp_path: Path) -> None:
    from dataeng_agents.core.cli import app

    clean = _write(tmp_path / "clean" / "c.py", GOOD_DAG.format(dag_id="c"))
    bad = _write(
        tmp_path / "bad" / "b.py", GOOD_DAG.format(dag_id="b").replace("echo hi", "echo {{ params.x }}")
    )
    runner = CliRunner()
    res = runner.invoke(app, ["review", str(clean), "--profile", "examples", "--fail-on", "warn"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["review", str(bad), "--format", "json"])
    assert res.exit_code == 1
    assert "SEC004" in {f["rule_id"] for f in json.loads(res.output)["findings"]}
    res = runner.invoke(app, ["review", str(bad), "--format", "sarif", "--fail-on", "never"])
    assert res.exit_code == 0 and json.loads(res.output)["version"] == "2.1.0"
    out = tmp_path / "r.md"
    res = runner.invoke(app, ["review", str(bad), "--format", "markdown", "-o", str(out), "--explain"])
    assert res.exit_code == 1 and "## Advice" in out.read_text()
    res = runner.invoke(app, ["review", str(bad), "--profile", "loud"])
    assert res.exit_code == 2 and "profile" in res.output


def test_cli_pipeline_rules_writes_docs(tmp_path: Path) -> None:
    from dataeng_agents.core.cli import app
    from dataeng_agents.core.review import RULES

    res = CliRunner().invoke(app, ["pipeline", "rules", "--json", "--write-docs", str(tmp_path / "rules")])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout if hasattr(res, "stdout") else res.output)
    assert len(listed) == len(RULES)
    pages = sorted(p.stem for p in (tmp_path / "rules").glob("*.md"))
    assert pages == sorted([*RULES, "index"])


def test_progress_bar_path_over_many_files(tmp_path: Path) -> None:
    for i in range(12):
        _write(tmp_path / f"d{i}.py", GOOD_DAG.format(dag_id=f"d{i}"))
    result = review_paths([tmp_path], progress=True)
    assert len(result.files) == 12 and all(f.status == "reviewed" for f in result.files)


def test_config_as_file_or_dict(tmp_path: Path) -> None:
    dag = _write(tmp_path / "dags" / "c.py", GOOD_DAG.format(dag_id="c"))
    standalone = _write(tmp_path / "dataeng-review.toml", 'profile = "examples"\ndisable = ["SCH009"]\n')
    by_file = review_paths([dag], config=str(standalone))
    assert by_file.profile == "examples"
    by_dict = review_paths([dag], profile="strict", config={"disable": ["OBS004"]})
    assert by_dict.profile == "strict" and "OBS004" not in _rules(by_dict)
    with pytest.raises(ConfigError) as err:
        review_paths([dag], config={"max_tasks_per_dag": 0})
    assert err.value.field == "tool.dataeng.review.max_tasks_per_dag"


def test_queue_walks_find_what_ast_walk_finds_in_its_order() -> None:
    """The rules report the first string or clock call they meet: the fast walks must keep ``ast.walk``'s order."""
    import ast

    from dataeng_agents.core.review.pyast import calls_under, string_nodes

    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "tests" / "core" / "fixtures" / "review").rglob("*.py"))
    files += sorted((root / "dags_examples").rglob("*.py")) + sorted((root / "core" / "review").glob("*.py"))
    subtrees = 0
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.stmt | ast.expr):
                subtrees += 1
                walked = list(ast.walk(node))
                assert string_nodes(node) == [
                    n for n in walked if isinstance(n, ast.Constant | ast.JoinedStr)
                ], f
                assert calls_under(node) == [n for n in walked if isinstance(n, ast.Call)], f
    assert subtrees > 10_000


# ------------------------------------------------------------------ helper modules beside the DAGs
def test_helper_modules_beside_the_dags_are_checked_for_hard_coded_secrets(tmp_path: Path) -> None:
    """EWECORP/PREFECT_DIARCO keeps its SQL Server and SFTP passwords in utils/config.py, a module
    that imports neither Airflow nor Prefect: the secret check runs there too, through the CLI gate."""
    from dataeng_agents.core.cli import app

    _write(tmp_path / "dags" / "orders.py", GOOD_DAG.format(dag_id="orders"))
    _write(
        tmp_path / "dags" / "common" / "settings.py",
        """
        import os

        SFTP_CONFIG = {"host": "sftp.example.org", "username": "etl", "password": "aladelta10$"}
        WAREHOUSE_URI = os.environ["WAREHOUSE_URI"]
        GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
        REPO_READER = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
        """,
    )
    _write(tmp_path / "dags" / "common" / "dates.py", "def ds(d):\n    return d.isoformat()\n")
    res = CliRunner().invoke(app, ["review", str(tmp_path / "dags"), "--format", "json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.output)
    kinds = {Path(f["path"]).name: f["kind"] for f in out["files"]}
    assert kinds == {"orders.py": "airflow", "settings.py": "python", "dates.py": "python"}
    secrets = sorted(
        (f["line"], f["message"]) for f in out["findings"] if Path(f["path"]).name == "settings.py"
    )
    assert secrets == [
        (4, "'password' is assigned a hard-coded secret"),
        (7, "a GitHub token is hard-coded (in 'REPO_READER')"),
    ]
    assert [f for f in out["findings"] if Path(f["path"]).name == "dates.py"] == []
