"""Issue 13's differences, through the real worker (broker and Redis), each ending where
`order-status simulate` does: a line item without work orders holds its order; a task stays on
hold while its fallout is open; identity is per source; `sequence` is compared per source."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.harness import running_worker, snapshots, unique
from worker.rules import OrderRecord
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = pytest.mark.integration

Body = dict[str, Any]


def cloud_event(
    type_: str,
    data: Body,
    minute: int,
    *,
    source: str = "/tests",
    id_: str | None = None,
    sequence: int | None = None,
) -> Body:
    event: Body = {
        "specversion": "1.0",
        "id": id_ or unique("evt"),
        "source": source,
        "type": type_,
        "time": f"2026-11-21T10:{minute:02d}:00Z",
        "data": data,
    }
    if sequence is not None:
        event["sequence"] = sequence
    return event


async def through_the_worker(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis, events: list[Body]
) -> OrderRecord:
    """Publish the events in this order, wait until the worker applied every one, and check the
    order's snapshot against the reference; the snapshot."""
    order_id = events[0]["data"]["order_id"]
    async with running_worker(settings) as worker:
        for event in events:
            await producer.send_and_wait(
                settings.topics.for_event(event["type"]),
                json.dumps(event).encode(),
                key=order_id.encode(),
            )
        await worker.applied("orders", len(events))
    reference = simulate([json.dumps(event) for event in events], settings)
    stored = await snapshots(redis, settings).order(order_id)
    assert stored == reference.records[order_id]
    assert stored is not None
    return stored


def order(order_id: str, *line_items: Body) -> Body:
    return cloud_event(
        "order.created",
        {"order_id": order_id, "state": "new", "line_items": list(line_items)},
        0,
    )


def with_task(line_item_id: str) -> Body:
    work_order = {
        "work_order_id": f"WO-{line_item_id}",
        "tasks": [{"task_id": f"T-{line_item_id}"}],
    }
    return {"line_item_id": line_item_id, "work_orders": [work_order]}


async def test_seed_003_a_line_item_without_work_orders_holds_the_order_open(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id = unique("O")
    task = {"order_id": order_id, "task_id": "T-LI-1"}
    events = [
        order(order_id, with_task("LI-1"), {"line_item_id": "LI-2"}),
        cloud_event("order.approved", {"order_id": order_id}, 1),
        cloud_event("task.updated", {**task, "state": "closed_complete"}, 2),
        cloud_event(
            "workorder.created",
            {"order_id": order_id, "line_item_id": "LI-2", "work_order_id": "WO-LI-2"},
            3,
        ),
    ]
    stored = await through_the_worker(settings, producer, redis, events)
    assert stored.order is not None
    assert stored.order.state != "completed"  # LI-2 had no work order yet: the order stays open
    assert "WO-LI-2" in stored.order.work_orders  # and the work order created later is accepted


async def test_seed_001_a_task_stays_on_hold_while_its_fallout_is_open(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id = unique("O")
    task = {"order_id": order_id, "task_id": "T-LI-1"}
    fallout = {**task, "fallout_id": "F-1"}
    events = [
        order(order_id, with_task("LI-1")),
        cloud_event("order.approved", {"order_id": order_id}, 1),
        cloud_event(
            "task.fallout.raised",
            {**fallout, "category": "provisioning failure", "reason": "port down"},
            2,
        ),
        cloud_event("task.updated", {**task, "state": "in_progress"}, 3),  # refused: still open
    ]
    stored = await through_the_worker(settings, producer, redis, events)
    assert stored.order is not None
    assert stored.order.tasks["T-LI-1"].state == "on_hold"


async def test_identity_is_per_source_an_id_another_source_used_is_applied(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id = unique("O")
    task = {"order_id": order_id, "task_id": "T-LI-1"}
    events = [
        order(order_id, with_task("LI-1")),
        cloud_event("order.approved", {"order_id": order_id}, 1),
        cloud_event("task.updated", {**task, "state": "scheduled"}, 2, source="/wfm", id_="ext-1"),
        cloud_event(
            "task.updated", {**task, "state": "in_progress"}, 3, source="/provisioning", id_="ext-1"
        ),
    ]
    stored = await through_the_worker(settings, producer, redis, events)
    assert stored.order is not None
    assert stored.order.tasks["T-LI-1"].state == "in_progress"


async def test_sequences_are_compared_per_source(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id = unique("O")
    task = {"order_id": order_id, "task_id": "T-LI-1"}
    fallout = {**task, "fallout_id": "F-1"}
    events = [
        order(order_id, with_task("LI-1")),
        cloud_event("order.approved", {"order_id": order_id}, 1),
        cloud_event("task.updated", {**task, "state": "in_progress"}, 2, source="/wfm", sequence=7),
        cloud_event(
            "task.fallout.raised",
            {**fallout, "category": "inventory allocation failure", "reason": "no port"},
            3,
            source="/fallout",
            sequence=1,
        ),
        cloud_event(
            "task.fallout.resolved",
            {**fallout, "resolution": "port found"},
            4,
            source="/fallout",
            sequence=2,
        ),
    ]
    stored = await through_the_worker(settings, producer, redis, events)
    assert stored.order is not None
    assert stored.order.tasks["T-LI-1"].state == "resolved"  # neither fallout event was stale
