"""Everything the worker publishes, read from the start in the background while a test runs:
each output's payloads by id (two payloads for one id would be a bug), and the dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from tests.integration.harness import is_control
from worker.settings import Settings

DeadLetter = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]
"""Key, value and headers of a record on the dead-letter topic."""


@dataclass
class Outputs:
    """Everything the worker published, read from the start: payloads by id, dead letters."""

    payloads: dict[str, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    dead: list[DeadLetter] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def at_least(self, outputs: int, timeout_s: float = 60.0) -> None:
        """Until this many outputs (by id) have been read."""
        async with asyncio.timeout(timeout_s):
            while len(self.payloads) < outputs:
                self.arrived.clear()
                await self.arrived.wait()


async def read_outputs(settings: Settings, outputs: Outputs, stop: asyncio.Event) -> None:
    topics = settings.topics
    consumer = AIOKafkaConsumer(
        topics.order_status,
        topics.ops,
        topics.service_status,
        topics.service_actions,
        topics.activity_inputs,
        topics.dead_letter,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for record in records:
                    if record.topic == topics.dead_letter:
                        outputs.dead.append((record.key, record.value, list(record.headers)))
                    elif not is_control(record.headers):
                        assert record.value is not None
                        outputs.payloads[json.loads(record.value)["id"]].add(record.value)
                    outputs.arrived.set()
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def reading_outputs(settings: Settings) -> AsyncIterator[Outputs]:
    """Everything the worker publishes, read in the background while the block runs."""
    outputs, stop = Outputs(), asyncio.Event()
    reading = asyncio.create_task(read_outputs(settings, outputs, stop))
    try:
        yield outputs
    finally:
        stop.set()
        await reading


async def wait_for(outputs: Outputs, expected: set[str], dead: int, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not (expected <= outputs.payloads.keys() and len(outputs.dead) >= dead):
                outputs.arrived.clear()
                await outputs.arrived.wait()
    except TimeoutError:
        missing = sorted(expected - outputs.payloads.keys())
        raise TimeoutError(
            f"after {timeout_s}s, {len(missing)} of {len(expected)} outputs missing (first: "
            f"{missing[:3]}), {len(outputs.dead)} of {dead} dead letters"
        ) from None
    await asyncio.sleep(1.0)  # anything beyond the expected would show now
