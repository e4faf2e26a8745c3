"""Run plumbing shared by the analysis and the design: a progress bar with per-step timings, timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any


class Steps:
    """A rich progress bar on stderr (when enabled) plus per-step timings."""

    def __init__(self, enabled: bool | Callable[[str], None], total: int, title: str) -> None:
        self.timings: dict[str, float] = {}
        self._progress: Any = None
        self._task: Any = None
        self._callback = enabled if callable(enabled) else None
        if enabled is True:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(title, total=total)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._callback is not None:
            self._callback(name)
        if self._progress is not None:
            self._progress.update(self._task, description=name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)
            if self._progress is not None:
                self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()
