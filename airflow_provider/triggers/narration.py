"""Trigger that waits, in the triggerer, for the Message Batch holding a task's LLM narration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: Consecutive failed polls tolerated before the trigger gives up (a 529 or a network blip must
#: not fail a batch that is still being processed and already paid for).
MAX_CONSECUTIVE_POLL_FAILURES = 5


class NarrationBatchTrigger(BaseTrigger):
    """
    Poll an Anthropic Message Batch with the async client until it has ended.

    The trigger only waits: it never submits, so a triggerer restart (which re-creates the trigger
    from :meth:`serialize`) polls the same batch again instead of paying for a second one. The
    client is built by the official ``AnthropicHook`` from the ``anthropic`` connection, so the
    key never travels through the trigger's serialized kwargs.

    :param conn_id: The Anthropic connection id (connection type ``anthropic``).
    :param batch_id: The batch to wait for.
    :param poll_interval: Seconds between polls.
    :param end_time: Wall-clock deadline (``time.time()`` seconds); a ``timeout`` event is fired after it.
    """

    def __init__(self, conn_id: str, batch_id: str, poll_interval: float, end_time: float) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.batch_id = batch_id
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "batch_id": self.batch_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        client = await AnthropicHook(conn_id=self.conn_id).get_async_conn()
        failures = 0
        try:
            while True:
                try:
                    batch = await client.messages.batches.retrieve(self.batch_id)
                except Exception as e:
                    failures += 1
                    if failures >= MAX_CONSECUTIVE_POLL_FAILURES or time.time() > self.end_time:
                        yield TriggerEvent(
                            {
                                "status": "error",
                                "batch_id": self.batch_id,
                                "message": f"{type(e).__name__}: {e}",
                            }
                        )
                        return
                    self.log.warning("Polling batch %s failed (%s); retrying.", self.batch_id, e)
                    await asyncio.sleep(self.poll_interval)
                    continue
                failures = 0
                if batch.processing_status == "ended":
                    counts = batch.request_counts
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "batch_id": self.batch_id,
                            "request_counts": {
                                "succeeded": counts.succeeded,
                                "errored": counts.errored,
                                "canceled": counts.canceled,
                                "expired": counts.expired,
                            },
                        }
                    )
                    return
                if time.time() > self.end_time:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "batch_id": self.batch_id,
                            "message": f"Batch {self.batch_id} had not ended by the deadline.",
                        }
                    )
                    return
                self.log.info(
                    "Batch %s is %s; next poll in %ss.",
                    self.batch_id,
                    batch.processing_status,
                    self.poll_interval,
                )
                await asyncio.sleep(self.poll_interval)
        finally:
            await client.close()
