"""How the operators turn core errors into Airflow task outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException


@contextmanager
def permanent_warehouse_errors_fail_at_once() -> Iterator[None]:
    """A warehouse error no retry can clear (a missing table, bad SQL, a rejected login: the core
    classifies it from the driver's error) fails the task without spending its retries; a transient
    one (a dropped connection, a lock, a statement timeout) goes through ``retries`` as usual."""
    from dataeng_agents.core.errors import WarehouseError

    try:
        yield
    except WarehouseError as e:
        if e.transient:
            raise
        raise AirflowFailException(f"warehouse: {e} (not retried: a retry would fail the same way)") from e
