"""One truth: whatever the arrival order, the worker ends where `order-status simulate` does.

A generated stream (orders sharing accounts and products, billing's non-pay events, duplicates,
stale updates, children before parents, unreadable records) is published (a) as a backlog, (b) live
at a steady rate, (c) live with the worker SIGKILLed and a second instance joining. Each run ends
with every order, service and account/product/location snapshot and the set of output ids equal to
the simulator's, no id published with two payloads, and every unreadable record on the dead-letter
topic byte for byte. `DIFFERENTIAL_SEEDS=n` runs n seeds of each (CI runs a few).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from redis.asyncio import Redis

from tests.integration.harness import (
    WorkerProcess,
    assert_snapshots_equal,
    running_worker,
    worker_env,
)
from tests.integration.outputs import Outputs, reading_outputs, wait_for
from tests.integration.streams import Feed, Published, feed
from worker.settings import Settings
from worker.simulate import Simulation, simulate
from worker.store.groups import RedisClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDS = [20261202 + n for n in range(int(os.environ.get("DIFFERENTIAL_SEEDS", "2")))]
ORDERS = 40


async def send(producer: AIOKafkaProducer, settings: Settings, record: Published) -> RecordMetadata:
    return await producer.send_and_wait(
        record.topic(settings), record.value(), key=record.key.encode()
    )


async def publish_backlog(
    producer: AIOKafkaProducer, settings: Settings, records: Sequence[Published]
) -> list[RecordMetadata]:
    futures = [
        await producer.send(record.topic(settings), record.value(), key=record.key.encode())
        for record in records
    ]
    return list(await asyncio.gather(*futures))


async def publish_live(
    producer: AIOKafkaProducer, settings: Settings, stream: Feed, per_second: float
) -> tuple[Feed, list[RecordMetadata]]:
    """Each record stamped with the moment it is sent, sent after the previous was acknowledged,
    at most `per_second`: live input as upstream systems publish it."""
    sent: list[Published] = []
    metadata: list[RecordMetadata] = []
    gap = 1 / per_second
    last = datetime.now(UTC)
    for record in stream.records:
        moment = max(datetime.now(UTC), last)
        last = moment
        stamped = stream_with(record, moment)
        metadata.append(await send(producer, settings, stamped))
        sent.append(stamped)
        await asyncio.sleep(gap)
    return Feed(sent), metadata


def stream_with(record: Published, moment: datetime) -> Published:
    return Feed([record]).stamped([moment]).records[0]


async def check(
    settings: Settings,
    redis: RedisClient,
    published: Feed,
    metadata: list[RecordMetadata],
    outputs: Outputs,
    reference: Simulation,
) -> None:
    expected = {event["id"] for event in reference.emitted}
    doubled = {i: p for i, p in outputs.payloads.items() if len(p) > 1}
    assert not doubled, f"ids published with two payloads: {list(doubled)[:3]}"
    assert outputs.payloads.keys() == expected
    await assert_snapshots_equal(redis, settings, reference)
    # Every unreadable record, byte for byte, found by its source.
    by_source = {
        (
            dict(headers)["dlq-source-topic"],
            dict(headers)["dlq-source-partition"],
            dict(headers)["dlq-source-offset"],
        ): (key, value)
        for key, value, headers in outputs.dead
    }
    for record, meta in zip(published.records, metadata, strict=True):
        if record.event is None:
            source = (meta.topic.encode(), str(meta.partition).encode(), str(meta.offset).encode())
            assert by_source[source] == (record.key.encode(), record.garbage), source
    # At least once: a dead letter may be published again after a crash, by the same source.
    assert len(by_source) == len(published.garbage())


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_backlog_ends_where_the_simulator_does(
    seed: int, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    stream = feed(seed, ORDERS, f"{settings.group_id}-")
    reference = simulate(stream.lines(), settings)
    metadata = await publish_backlog(producer, settings, stream.records)
    async with reading_outputs(settings) as outputs, running_worker(settings):
        expected = {event["id"] for event in reference.emitted}
        await wait_for(outputs, expected, len(stream.garbage()), timeout_s=120)
    await check(settings, redis, stream, metadata, outputs, reference)


@pytest.mark.parametrize("seed", SEEDS)
async def test_live_input_at_a_steady_rate_ends_where_the_simulator_does(
    seed: int, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    stream = feed(seed, ORDERS // 2, f"{settings.group_id}-")
    async with reading_outputs(settings) as outputs, running_worker(settings):
        published, metadata = await publish_live(producer, settings, stream, per_second=400)
        reference = simulate(published.lines(), settings)
        expected = {event["id"] for event in reference.emitted}
        await wait_for(outputs, expected, len(stream.garbage()), timeout_s=120)
    await check(settings, redis, published, metadata, outputs, reference)


@pytest.mark.parametrize("seed", SEEDS)
async def test_live_input_with_kills_and_a_second_instance_ends_where_the_simulator_does(
    seed: int, settings: Settings, producer: AIOKafkaProducer, redis: Redis, tmp_path: Path
) -> None:
    stream = feed(seed, ORDERS // 2, f"{settings.group_id}-")
    rng = random.Random(seed)
    env = worker_env(settings, ORDER_STATUS_BATCH_MAX_RECORDS="50")
    first = WorkerProcess(env, str(tmp_path / "first.log"))
    second = WorkerProcess(env, str(tmp_path / "second.log"))
    kill_at = sorted(rng.sample(range(len(stream.records) // 5, len(stream.records)), 2))
    join_at = len(stream.records) // 2
    published: list[Published] = []
    metadata: list[RecordMetadata] = []
    async with reading_outputs(settings) as outputs:
        first.start()
        try:
            last = datetime.now(UTC)
            for index, record in enumerate(stream.records):
                if index in kill_at:
                    first.kill()  # whatever it was doing
                    first.start()
                if index == join_at:
                    second.start()
                last = max(datetime.now(UTC), last)
                stamped = stream_with(record, last)
                metadata.append(await send(producer, settings, stamped))
                published.append(stamped)
                await asyncio.sleep(1 / 400)
            reference = simulate(Feed(published).lines(), settings)
            expected = {event["id"] for event in reference.emitted}
            try:
                await wait_for(outputs, expected, len(stream.garbage()), timeout_s=180)
            except TimeoutError as timeout:
                logs = "\n".join(worker.log_tail() for worker in (first, second))
                raise AssertionError(f"{timeout}\n{logs}") from None
            assert first.terminate() == 0
            assert second.terminate() == 0
        finally:
            for worker in (first, second):
                if worker.process and worker.process.poll() is None:
                    worker.kill()
    await check(settings, redis, Feed(published), metadata, outputs, reference)
