"""The scaffold's Prefect flow, for each architecture and the two example requests, runs in the
Prefect test harness: extract-load, dbt build and the checks, against DuckDB; a failing check fails
the flow run.

The flow runs dbt through prefect-dbt where it is installed, else the dbt CLI. prefect-dbt brings
dbt-core into the flow's environment, whose pins would downgrade this environment's mypy (2.x ->
1.19), so it is not installed here: its branch runs against a stand-in with prefect-dbt 0.7's
interface (``PrefectDbtSettings`` refuses unknown fields; ``invoke(args)`` runs dbt in-process,
so the profile reads this process's environment). The real prefect-dbt 0.7.25 with dbt-core 1.11
ran the same test in a separate environment when the branch was written."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scaffold_support import ALL_KEYS, build, isolated_pipeline


@pytest.fixture
def isolated() -> Iterator[None]:
    with isolated_pipeline(("scaffold_flow_",)):
        yield


def _flow(out: Path, name: str) -> Any:
    path = out / "flows" / f"{name}_flow.py"
    spec = importlib.util.spec_from_file_location(f"scaffold_flow_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, f"{name}_flow")


@pytest.mark.parametrize("key", ALL_KEYS)
def test_scaffold_flow_runs(key: str, tmp_path: Path, prefect_server: str, isolated: None) -> None:
    built = build(key, tmp_path)
    flow = _flow(tmp_path, built.project.name)
    result = flow(start=built.start, end=built.end)
    cfg = built.module("pipeline_config")
    assert set(result["loaded"]) == set(cfg.SOURCES) and all(v > 0 for v in result["loaded"].values())
    assert set(result["checks"]) == set(cfg.SINKS)
    assert all(c["row_count"] > 0 for c in result["checks"].values())
    if key == "iot_kappa":
        # an interval with no data fails its row-count check, and so the flow run
        module: Any = sys.modules[f"scaffold_flow_{built.project.name}"]
        module.check_sink = module.check_sink.with_options(retries=0)  # fail now, not after the retry delay
        state = flow.with_options(retries=0)(
            start=built.end, end=built.end + (built.end - built.start), return_state=True
        )
        assert state.is_failed()


def _prefect_dbt_stand_in() -> types.ModuleType:
    """A ``prefect_dbt`` with prefect-dbt 0.7's surface whose runner runs the dbt CLI in this process's
    environment (as the real one runs dbt in-process); it records what it was asked."""
    from pydantic import BaseModel, ConfigDict

    class PrefectDbtSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")  # as the real settings: `target=` is refused
        profiles_dir: Path
        project_dir: Path
        log_level: str = "info"
        target_path: Path | None = None

    class PrefectDbtRunner:
        calls: ClassVar[list[dict[str, Any]]] = []

        def __init__(self, settings: PrefectDbtSettings | None = None, raise_on_failure: bool = True) -> None:
            assert settings is not None
            self.settings = settings

        def invoke(self, args: list[str], **kwargs: Any) -> None:
            assert not kwargs, f"dbt CLI flags only, got {kwargs}"
            PrefectDbtRunner.calls.append({"args": args, "env": dict(os.environ)})
            cmd = [os.environ["DBT_EXECUTABLE"], *args, "--project-dir", str(self.settings.project_dir)]
            cmd += ["--profiles-dir", str(self.settings.profiles_dir)]
            proc = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]

    module = types.ModuleType("prefect_dbt")
    module.PrefectDbtSettings = PrefectDbtSettings  # type: ignore[attr-defined]
    module.PrefectDbtRunner = PrefectDbtRunner  # type: ignore[attr-defined]
    return module


def test_scaffold_flow_runs_dbt_through_prefect_dbt(
    tmp_path: Path, prefect_server: str, isolated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = _prefect_dbt_stand_in()
    monkeypatch.setitem(sys.modules, "prefect_dbt", stand_in)
    built = build("postgres_snowflake", tmp_path)
    os.environ.pop("DBT_DUCKDB_PATH", None)
    flow = _flow(tmp_path, built.project.name)
    # the same interval as this spec's run above: its cached loads would skip this warehouse
    module: Any = sys.modules[f"scaffold_flow_{built.project.name}"]
    module.load_source = module.load_source.with_options(refresh_cache=True)

    result = flow(start=built.start, end=built.end)

    assert all(c["row_count"] > 0 for c in result["checks"].values())
    (call,) = stand_in.PrefectDbtRunner.calls  # type: ignore[attr-defined]
    assert call["args"] == ["build", "--target", "duckdb"]
    assert call["env"]["DBT_DUCKDB_PATH"] == str(tmp_path / "warehouse.duckdb")  # the profile's input
    assert "DBT_DUCKDB_PATH" not in os.environ  # the task put the environment back
