"""The HTML report in a real browser: headless Chromium screenshots must show the charts.

Fails (never skips) without Chromium: install it with
``apt-get update && apt-get install -y chromium``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dataeng_agents.core.experiment import analyze_experiment
from dataeng_agents.core.report import to_html
from dataeng_agents.core.warehouse import DuckDBWarehouse
from test_experiment_support import demo_config, sample

INSTALL_HINT = "install it with: apt-get update && apt-get install -y chromium"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    pytest.fail(
        f"headless Chromium is required for the report screenshot test; {INSTALL_HINT}", pytrace=False
    )


def _screenshot(browser: str, html_file: Path, png: Path, profile: Path) -> np.ndarray:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1200,3000",
        "--hide-scrollbars",
        html_file.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-800:]}"
    import matplotlib.image

    img: np.ndarray = matplotlib.image.imread(str(png))[:, :, :3]
    return img


def _chart_pixels(img: np.ndarray) -> int:
    """Saturated, mid-bright pixels: chart lines, markers, bands and bars (tables are black on white)."""
    spread = img.max(axis=2) - img.min(axis=2)
    return int(np.count_nonzero((spread > 0.25) & (img.max(axis=2) > 0.3)))


def test_html_report_renders_its_charts_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    s = sample(tmp_path, users=20_000, seed=8)
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    shots = {}
    for charts in (True, False):
        page = tmp_path / f"report_{charts}.html"
        page.write_text(to_html(report, charts=charts), encoding="utf-8")
        shots[charts] = _screenshot(
            browser, page, tmp_path / f"shot_{charts}.png", tmp_path / f"profile_{charts}"
        )
    with_charts, without = shots[True], shots[False]
    assert with_charts.shape[:2] == (3000, 1200)
    # the page is not blank
    assert float((without < 0.5).mean()) > 0.002
    colored_with, colored_without = _chart_pixels(with_charts), _chart_pixels(without)
    # without charts only the verdict badges and status words are coloured
    assert colored_with - colored_without > 20_000, f"charts missing: {colored_with} vs {colored_without}"
    assert colored_with > 3 * max(colored_without, 1), (colored_with, colored_without)
    # the charts are spread over the page (forest near the top, cumulative and SRM further down)
    rows = np.flatnonzero((with_charts.max(axis=2) - with_charts.min(axis=2) > 0.25).any(axis=1))
    assert rows.max() - rows.min() > 1000
