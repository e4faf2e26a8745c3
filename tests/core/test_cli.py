"""The ``dataeng`` command line as a whole: every command under the one error wrapper, the same exit
codes everywhere, and a command imports only what it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from dataeng_agents.core.cli import COMMANDS, app
from dataeng_agents.core.cli._guard import is_guarded
from typer.testing import CliRunner


def _walk(command: Any, prefix: str = "") -> list[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(prefix.strip(), command)]
    out: list[tuple[str, Any]] = []
    for name in command.list_commands(None):
        out += _walk(command.get_command(None, name), f"{prefix} {name}")
    return out


def test_every_command_runs_under_the_error_wrapper() -> None:
    commands = _walk(typer.main.get_command(app))
    names = {name for name, _ in commands}
    assert {"stats analyze", "experiment analyze", "experiment rollout-check", "review", "demo"} <= names
    assert {name.split()[0] for name in names} == set(COMMANDS)
    unguarded = [name for name, command in commands if not is_guarded(command.callback)]
    assert unguarded == []


def test_every_command_uses_annotated_parameters() -> None:
    # one typer style: `name: Annotated[T, typer.Option(...)] = default`, never `= typer.Option(default)`
    import inspect

    for name, command in _walk(typer.main.get_command(app)):
        signature = inspect.signature(command.callback.__wrapped__)
        for parameter in signature.parameters.values():
            default = parameter.default
            assert not isinstance(default, typer.models.ParameterInfo), f"{name}: {parameter.name}"


def _invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(app, args)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.exception
    )
    return result


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["stats", "analyze", "{bad}"], "variants"),
        (["agent", "ask", "nobody", "why?"], "nobody"),
        (["pipeline", "design", "{bad}"], "sources"),
        (["review", "{dag}", "--profile", "nope"], "profile"),
        (["experiment", "analyze", "{missing}"], "missing.yaml"),
        (["experiment", "explore", "{missing}"], "missing.yaml"),
    ],
)
def test_usage_and_config_errors_exit_2_with_one_line_naming_the_field(
    tmp_path: Path, args: list[str], field: str
) -> None:
    (tmp_path / "bad.json").write_text(
        json.dumps({"control": "nope", "variants": [{"name": "a"}], "metrics": []})
    )
    (tmp_path / "bad.yaml").write_text("name: x\nsources: [{kind: carrier-pigeon}]\n")
    (tmp_path / "dag.py").write_text("x = 1\n")
    paths = {
        "{bad}": "bad.json" if args[0] == "stats" else "bad.yaml",
        "{dag}": "dag.py",
        "{missing}": "missing.yaml",
    }
    argv = [str(tmp_path / paths[a]) if a in paths else a for a in args]
    result = _invoke(argv)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert field in lines[0]
    assert "Traceback" not in result.output


def test_unknown_command_and_option_are_usage_errors() -> None:
    assert _invoke(["nope"]).exit_code == 2
    assert _invoke(["stats", "analyze", "--nope"]).exit_code == 2


def test_stats_analyze_imports_only_the_statistics_engine() -> None:
    # a fresh interpreter: which heavy libraries and which other command modules the command loaded
    example = Path(__file__).resolve().parents[2] / "core" / "examples" / "stats_analyze_example.json"
    code = (
        "import sys, io, contextlib\n"
        f"sys.argv = ['dataeng', 'stats', 'analyze', {str(example)!r}]\n"
        "from dataeng_agents.core.cli import main\n"
        "out = io.StringIO()\n"
        "try:\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ('duckdb', 'sqlglot', 'matplotlib', 'anthropic', 'yaml', 'rich', 'jinja2')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('dataeng_agents.core.cli.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.strip().splitlines()[-1]
    assert loaded == "['dataeng_agents.core.cli._guard', 'dataeng_agents.core.cli.stats']", loaded
