"""Jeopardy through the real worker: an order's task stuck past its stall limit is raised once and
cleared once when it moves on, whatever the instances racing for its partition, and after a worker
killed between writing the raise and publishing it.

The clock is event time: the order's task goes quiet at T; an event of another order on the same
partition at T + 49 h moves the partition's frontier past the task's stall limit (48 h, the
default), so its timer fires without anyone waiting; the task closed at T + 50 h clears it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.faults.servers import RedisServer
from tests.integration.harness import (
    Consumed,
    RunningWorker,
    WorkerProcess,
    consume_until,
    event,
    eventually,
    publish,
    running_worker,
    unique,
    worker_env,
)
from worker.dev import create_topics
from worker.embedded import EmbeddedBroker
from worker.engine.partitioning import partition_for
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 21, 10, tzinfo=UTC)
RAISED, CLEARED = "jeopardy.raised", "jeopardy.cleared"


def at(hours: float) -> str:
    return (T + timedelta(hours=hours)).isoformat()


def order_on(partition: int, partitions: int) -> str:
    while partition_for((order_id := unique("O")).encode(), partitions) != partition:
        pass
    return order_id


def stuck(order_id: str) -> list[dict[str, Any]]:
    """An order whose only task starts at T + 1 min and is heard of no more."""
    task = {"task_id": "T-1", "state": "scheduled"}
    work_order = {"work_order_id": "WO-1", "state": "scheduled", "tasks": [task]}
    created = {
        "order_id": order_id,
        "state": "new",
        "line_items": [{"line_item_id": "LI-1", "work_orders": [work_order]}],
    }
    started = {"order_id": order_id, "task_id": "T-1", "state": "in_progress"}
    return [
        event("order.created", created, time=at(0)),
        event("task.updated", started, time=at(0.02)),
    ]


def tick(order_id: str) -> dict[str, Any]:
    """Another order's creation at T + 49 h: the partition's event time passes the stall limit."""
    return event("order.created", {"order_id": order_id}, time=at(49))


def closing(order_id: str) -> dict[str, Any]:
    done = {"order_id": order_id, "task_id": "T-1", "state": "closed_complete"}
    return event("task.updated", done, time=at(50))


def jeopardy(seen: list[Consumed], kind: str | None = None) -> dict[str, set[bytes]]:
    """Each jeopardy event's id (of one kind, or both) with every payload it was published with."""
    payloads: dict[str, set[bytes]] = {}
    for record in seen:
        published = record.json()
        if published["type"] in ((kind,) if kind else (RAISED, CLEARED)):
            payloads.setdefault(published["id"], set()).add(record.value)
    return payloads


def expected_ids(settings: Settings, events: list[dict[str, Any]]) -> set[str]:
    reference = simulate([json.dumps(e) for e in events], settings)
    return {e["id"] for e in reference.emitted if e["type"] in (RAISED, CLEARED)}


def counted(running: RunningWorker, name: str) -> float:
    worker = running.worker
    assert worker is not None
    return sum(
        float(sample.value)
        for metric in worker.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == f"order_status_{name}_total"
    )


async def test_two_instances_racing_raise_and_clear_each_jeopardy_once(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    partitions = settings.topic_partitions
    # Two stuck orders and one clock per partition, so both instances have work after the split.
    orders = [order_on(p, partitions) for p in range(partitions) for _ in range(2)]
    clocks = [tick(order_on(p, partitions)) for p in range(partitions)]
    first = [*(e for order_id in orders for e in stuck(order_id)), *clocks]
    closings = [closing(order_id) for order_id in orders]
    expected = expected_ids(settings, [*first, *closings])
    assert len(expected) == 2 * len(orders)  # one raised and one cleared each, in the reference

    async with running_worker(settings) as one:
        await publish(producer, settings, first)
        await consume_until(
            settings, [settings.topics.ops], lambda seen: len(jeopardy(seen, RAISED)) == 8
        )
        async with running_worker(settings) as two:
            # The first half races the second instance's join; the rest goes after it.
            await publish(producer, settings, closings[: len(closings) // 2])

            async def joined() -> bool:
                return bool(two.reports)

            await eventually(joined, True, timeout_s=30)
            await publish(producer, settings, closings[len(closings) // 2 :])
            seen = await consume_until(
                settings, [settings.topics.ops], lambda seen: len(jeopardy(seen, CLEARED)) == 8
            )
            await asyncio.sleep(1)  # anything published twice would be there by now
            seen = await consume_until(
                settings, [settings.topics.ops], lambda got: len(got) >= len(seen)
            )
            assert two.records("orders") > 0  # the second instance took part
            assert counted(one, "jeopardy_raised") == 8
            assert counted(one, "jeopardy_cleared") + counted(two, "jeopardy_cleared") == 8

    payloads = jeopardy(seen)
    assert payloads.keys() == expected
    assert all(len(values) == 1 for values in payloads.values())


async def test_a_raise_written_but_not_published_when_the_worker_is_killed_is_published_once(
    settings: Settings, own_broker: EmbeddedBroker, own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"bootstrap_servers": own_broker.bootstrap_servers, "redis_url": own_redis.url}
    )
    await create_topics(settings)
    order_id = unique("O")
    clock = tick(order_on(partition_for(order_id.encode(), settings.topic_partitions), 4))
    events = [*stuck(order_id), clock, closing(order_id)]
    expected = expected_ids(settings, events)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    redis = Redis.from_url(own_redis.url)
    worker = WorkerProcess(worker_env(settings), str(tmp_path / "worker.log"))
    await producer.start()
    worker.start()
    try:
        await publish(producer, settings, events[:2])
        await consume_until(
            settings,
            [settings.topics.order_status],
            lambda seen: any(
                r.json()["type"] == "task.state.changed"
                and r.json()["data"]["state"] == "in_progress"
                for r in seen
            ),
            timeout_s=30,
        )
        # Writes wait: the worker takes the clock's event and cannot commit what it raises...
        await redis.client_pause(30_000, all=False)
        await publish(producer, settings, [clock])
        await asyncio.sleep(1.5)
        # ... then the broker stops and the writes go on: the raise is written, not published.
        own_broker.pause()
        await redis.client_unpause()

        async def raise_written() -> bool:
            return any(RAISED.encode() in entry for entry in await _outbox(redis))

        await eventually(raise_written, True, every_s=0.05)
        worker.kill()
        own_broker.resume()
        worker.start()  # the next owner publishes what the outbox holds, then goes on
        await publish(producer, settings, events[3:])
        seen = await consume_until(
            settings,
            [settings.topics.ops],
            lambda seen: len(jeopardy(seen, CLEARED)) == 1,
            timeout_s=60,
        )
        assert worker.terminate() == 0
    finally:
        await producer.stop()
        await redis.aclose()
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()

    payloads = jeopardy(seen)
    assert payloads.keys() == expected  # raised once (its id), cleared once
    assert all(len(values) == 1 for values in payloads.values())
    assert await _outbox(Redis.from_url(own_redis.url)) == []


async def _outbox(redis: Redis) -> list[bytes]:
    entries: list[bytes] = []
    async for key in redis.scan_iter(match="*:outbox"):
        entries.extend(e for e in await redis.lrange(key, 0, -1) if isinstance(e, bytes))
    return entries
