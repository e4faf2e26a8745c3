"""The review writer both adapters call: four formats, advice included, atomic, self-contained HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dataeng_agents.core.commands.data_pipeline import (
    narrate_review,
    render_review_files,
    review_paths,
    write_review,
)
from dataeng_agents.core.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "review"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    src = (FIXTURES / "REL001" / "bad.py.txt").read_text()
    dags = tmp_path_factory.mktemp("dags")
    (dags / "etl.py").write_text(src)
    result = review_paths([dags])
    assert result.findings, "the bad REL001 fixture must produce findings"
    return result, narrate_review(result)


def test_write_review_writes_every_format_with_the_advice(tmp_path: Path, reviewed) -> None:  # type: ignore[no-untyped-def]
    result, advice = reviewed
    paths = write_review(result, advice, tmp_path / "out")
    assert set(paths) == {"json", "md", "sarif", "html"}
    doc = json.loads(Path(paths["json"]).read_text())
    assert [f["id"] for f in doc["findings"]] == [f.id for f in result.findings]
    assert doc["advice"]["summary"] == advice.summary
    sarif = json.loads(Path(paths["sarif"]).read_text())
    assert sarif["version"] == "2.1.0"
    assert len(sarif["runs"][0]["results"]) == len(result.findings)
    md = Path(paths["md"]).read_text()
    assert "## Advice" in md and advice.summary in md
    html = Path(paths["html"]).read_text()
    for finding in result.findings:
        assert finding.id in html
    assert not re.search(r"(src|href)=\"https?://", html), "the HTML must not load anything from outside"


def test_unknown_format_writes_nothing(tmp_path: Path, reviewed) -> None:  # type: ignore[no-untyped-def]
    result, advice = reviewed
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        write_review(result, advice, out, formats=("json", "pdf"))
    assert err.value.field == "formats"
    assert not out.exists()


def test_remote_writer_gets_each_rendered_file(reviewed) -> None:  # type: ignore[no-untyped-def]
    result, advice = reviewed
    written: dict[str, bytes] = {}
    paths = write_review(result, advice, "s3://bucket/reviews", ("json", "md"), writer=written.__setitem__)
    assert paths == {"json": "s3://bucket/reviews/review.json", "md": "s3://bucket/reviews/review.md"}
    assert written[paths["md"]] == render_review_files(result, advice, ("md",))["md"][1]
