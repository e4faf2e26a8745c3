"""Reading back what a flow run published, from the Prefect API (artifacts, events)."""

from __future__ import annotations

import time
from typing import Any


def run_artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The keyed artifacts of one flow run (and of its task runs)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def run_events(name: str, resource_id: str, flow_run_id: Any, timeout: float = 60.0) -> list[Any]:
    """The run's events (written asynchronously: client worker -> server -> persister), polled."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(name=[name]), resource=EventResourceFilter(id=[resource_id])
                ),
                limit=50,
            )
        mine = [e for e in page.events if e.payload.get("flow_run_id") == str(flow_run_id)]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.5)
