"""Trigger that waits, in the triggerer, for the Message Batches holding a task's LLM narration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: Consecutive failed polls tolerated before the trigger gives up (each poll already retries
#: 429/529/5xx with backoff in the core; this bounds outages that outlast those retries).
MAX_CONSECUTIVE_POLL_FAILURES = 5


class NarrationBatchTrigger(BaseTrigger):
    """
    Poll Anthropic Message Batches with the async client until all of them have ended.

    The trigger only waits: it never submits, so a triggerer restart (which re-creates the trigger
    from :meth:`serialize`) polls the same batches again instead of paying for new ones. The client
    is built by the official ``AnthropicHook.get_async_conn()`` from the ``anthropic`` connection,
    so the key never travels through the trigger's serialized kwargs; each poll is the core's
    ``apoll_batch`` (bounded retries on 429/529/5xx, honouring ``retry-after``).

    :param conn_id: The Anthropic connection id (connection type ``anthropic``).
    :param batch_ids: The batches to wait for.
    :param poll_interval: Seconds between polls.
    :param end_time: Wall-clock deadline (``time.time()`` seconds); a ``timeout`` event fires after it.
    """

    def __init__(self, conn_id: str, batch_ids: list[str], poll_interval: float, end_time: float) -> None:
        BaseTrigger.__init__(self)  # named: mypy exempts airflow's unannotated calls by their full name
        self.conn_id = conn_id
        self.batch_ids = list(batch_ids)
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "batch_ids": self.batch_ids,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
        from dataeng_agents.core.agents import apoll_batch

        client = await AnthropicHook(conn_id=self.conn_id).get_async_conn()
        pending = list(self.batch_ids)
        counts: dict[str, dict[str, int]] = {}
        failures = 0
        try:
            while True:
                for batch_id in list(pending):
                    try:
                        status = await apoll_batch(client, batch_id)
                    except Exception as e:
                        failures += 1
                        if failures >= MAX_CONSECUTIVE_POLL_FAILURES or time.time() > self.end_time:
                            yield TriggerEvent(
                                {
                                    "status": "error",
                                    "batch_ids": self.batch_ids,
                                    "message": f"polling {batch_id}: {type(e).__name__}: {e}",
                                }
                            )
                            return
                        self.log.warning("Polling batch %s failed (%s); retrying.", batch_id, e)
                        break
                    failures = 0
                    if status.ended:
                        pending.remove(batch_id)
                        counts[batch_id] = dict(status.request_counts)
                    else:
                        self.log.info("Batch %s is %s.", batch_id, status.processing_status)
                if not pending:
                    yield TriggerEvent(
                        {"status": "success", "batch_ids": self.batch_ids, "request_counts": counts}
                    )
                    return
                if time.time() > self.end_time:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "batch_ids": self.batch_ids,
                            "message": f"batches {pending} had not ended by the deadline",
                        }
                    )
                    return
                # never sleep past the deadline: the task must resume before Airflow's own timeout
                await asyncio.sleep(max(0.0, min(self.poll_interval, self.end_time - time.time())))
        finally:
            await client.close()
