"""The analysis window of a scheduled run: which exposures a daily (or hourly) report reads.

Kept free of heavy imports: the Airflow operator validates its ``window`` argument at DAG-parse time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal, get_args

from dataeng_agents.core.errors import InputError

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig

DataInterval = tuple[datetime | date, datetime | date]
AnalysisWindow = Literal["cumulative", "data_interval", "all"]
ANALYSIS_WINDOWS: tuple[str, ...] = get_args(AnalysisWindow)

__all__ = ["ANALYSIS_WINDOWS", "AnalysisWindow", "DataInterval", "analysis_interval"]


def analysis_interval(
    config: ExperimentConfig,
    window: AnalysisWindow,
    interval_start: datetime | date | None,
    interval_end: datetime | date | None,
) -> DataInterval | None:
    """The ``data_interval`` a scheduled run analyses, from its window and the run's interval.

    :param config: the experiment config (its ``start`` opens the cumulative window).
    :param window: ``cumulative``: every exposure from the experiment's start up to the end of the
        run's interval (the daily-report view; the default ``sequential`` method keeps daily looks
        valid); ``data_interval``: only the run's interval; ``all``: the config's whole period.
    :param interval_start: start of the scheduler's data interval; ``None`` (a run without one)
        reads from the experiment's start.
    :param interval_end: end of the scheduler's data interval; ``None`` analyses the config's period.
    :returns: ``(start, end)`` for :func:`analyze_experiment`, or ``None`` for the config's period.
    :raises InputError: an unknown ``window``.
    """
    if window not in ANALYSIS_WINDOWS:
        raise InputError("window", f"unknown window {window!r}; choose from {list(ANALYSIS_WINDOWS)}")
    if window == "all" or interval_end is None:
        return None
    if window == "cumulative" and config.start is not None:
        first = config.start
        if not isinstance(first, datetime):
            first = datetime(first.year, first.month, first.day, tzinfo=UTC)
        elif first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
        return (first, interval_end)
    if interval_start is None:
        return None if config.start is None else (config.start, interval_end)
    return (interval_start, interval_end)
