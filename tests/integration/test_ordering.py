"""The orderings issue 12 found wrong, each against the worker and the simulator: billing's event
after the service actions it depends on, service actions from orders on different partitions in
event-time order, dead letters holding nothing back, and the bounded wait for a co-partition that
is a moment behind."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from schemas.internal import ServiceAction, ServiceActionData
from tests.integration.harness import (
    consume_until,
    event,
    publish,
    running_worker,
    snapshots,
    unique,
)
from worker.engine.control import Frontier, Routing, watermark_records
from worker.engine.records import CONTENT_TYPE, Outgoing
from worker.engine.timebase import to_us
from worker.publish import Publisher
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = pytest.mark.integration

Body = dict[str, Any]


def at(minute: int) -> str:
    return f"2026-11-21T10:{minute:02d}:00Z"


def line(line_item_id: str, service_id: str, action: str = "add") -> Body:
    return {
        "line_item_id": line_item_id,
        "action": action,
        "service_id": service_id,
        "work_orders": [
            {"work_order_id": f"WO-{line_item_id}", "tasks": [{"task_id": f"T-{line_item_id}"}]}
        ],
    }


def fulfilled(order_id: str, item: Body, minute: int) -> list[Body]:
    """The order created (new), approved, and its one task closed complete."""
    data = {"order_id": order_id, "state": "new", "account_id": "ACC", "line_items": [item]}
    task = {
        "order_id": order_id,
        "task_id": f"T-{item['line_item_id']}",
        "state": "closed_complete",
    }
    return [
        event("order.created", data, time=at(minute)),
        event("order.approved", {"order_id": order_id}, time=at(minute + 1)),
        event("task.updated", task, time=at(minute + 2)),
    ]


async def bill(producer: AIOKafkaProducer, settings: Settings, events: list[Body]) -> None:
    for billing in events:
        await producer.send_and_wait(
            settings.topics.billing,
            json.dumps(billing).encode(),
            key=billing["data"]["service_id"].encode(),
        )


async def service_reaches(settings: Settings, service_id: str, state: str) -> None:
    await consume_until(
        settings,
        [settings.topics.service_status],
        lambda seen: any(
            r.json()["subject"] == service_id and r.json()["data"].get("state") == state
            for r in seen
        ),
        timeout_s=60,
    )


async def test_billing_waits_for_the_service_actions_before_it_in_event_time(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """Backlog: the add line item completes; a minute later billing suspends the service. The
    billing event is read long before the order stage has produced the service's actions."""
    order_id, service_id = unique("O"), unique("SVC")
    orders = fulfilled(order_id, line("LI-1", service_id), minute=0)
    suspended = event("service.nonpay.suspended", {"service_id": service_id}, time=at(3))
    await bill(producer, settings, [suspended])  # on the broker first
    await publish(producer, settings, orders)
    reference = simulate([json.dumps(e) for e in [*orders, suspended]], settings)
    assert reference.services[service_id].service.state == "suspended_for_non_pay"
    async with running_worker(settings):
        await service_reaches(settings, service_id, "suspended_for_non_pay")
    assert await snapshots(redis, settings).service(service_id) == reference.services[service_id]


async def test_service_actions_of_orders_on_different_partitions_apply_in_event_time(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """The services stage alone, the test in the orders stage's place: a service added by an order
    of group 0, suspended by one of group 1, resumed by one of group 2, their actions reaching the
    internal topic latest first. The stage applies them in event-time order, waiting for each
    group's watermark: in service, suspended, in service again."""
    settings = settings.model_copy(update={"stages": ["services", "activity"]})
    service_id, topic = unique("SVC"), settings.topics.service_actions
    minute = datetime(2026, 11, 21, 10, tzinfo=UTC)

    def action(origin: int, sequence: int, kind: str, outcome: str, at: int) -> Outgoing:
        moment = minute + timedelta(minutes=at)
        cause = unique("cause")
        data = ServiceActionData(
            service_id=service_id,
            action=kind,
            outcome=outcome,
            order_id=f"O-{origin}",
            line_item_id=f"LI-{origin}",
            caused_by=cause,
            at=moment,
        )
        body = ServiceAction(id=unique("action"), subject=service_id, time=moment, data=data)
        routing = Routing(origin, sequence, to_us(moment))
        value = body.model_dump_json().encode()
        return Outgoing(topic, service_id.encode(), value, [CONTENT_TYPE, *routing.headers()])

    def watermark(origin: int) -> list[Outgoing]:
        below = {origin: Frontier(to_us(minute + timedelta(minutes=30)), idle=False)}
        return watermark_records(topic, 4, below, 4)

    records = [
        action(2, 0, "resume", "completed", 20),
        *watermark(2),
        action(1, 0, "suspend", "completed", 10),
        *watermark(1),
        action(0, 0, "add", "created", 0),
        action(0, 1, "add", "completed", 2),
        *watermark(0),
        *watermark(3),
    ]
    async with running_worker(settings):
        await asyncio.sleep(1)  # in its group, reading the internal topic
        publisher = Publisher(bootstrap_servers=settings.bootstrap_servers)
        await publisher.start()
        try:
            for record in records:
                await publisher.publish([record])
        finally:
            await publisher.stop()
        await consume_until(
            settings,
            [settings.topics.service_status],
            lambda seen: sum(r.json()["subject"] == service_id for r in seen) >= 4,
            timeout_s=60,
        )
    stored = await snapshots(redis, settings).service(service_id)
    assert stored is not None
    assert stored.service is not None
    assert [change.state for change in stored.service.history] == [
        "new",
        "in_service",
        "suspended_for_non_pay",
        "in_service",
    ]


async def test_an_unreadable_record_holds_nothing_back(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """Backlog: created, approved, garbage on the tasks topic, the task closed complete, then a
    cancellation requested and approved: completed, as the simulator says."""
    order_id = unique("O")
    created, approved, closed = fulfilled(order_id, line("LI-1", unique("SVC")), minute=0)
    command = {"order_id": order_id, "actor": "customer"}
    cancellation = [
        event("order.cancellation.requested", command, time=at(5)),
        event("order.cancellation.approved", command, time=at(6)),
    ]
    await publish(producer, settings, [created, approved])
    await producer.send_and_wait(settings.topics.tasks, b"\xff garbage", key=order_id.encode())
    await publish(producer, settings, [closed, *cancellation])
    reference = simulate([json.dumps(e) for e in [created, approved, closed, *cancellation]])
    assert reference.records[order_id].order.state == "completed"
    async with running_worker(settings):
        await consume_until(
            settings,
            [settings.topics.ops],
            lambda seen: any(r.json()["data"]["caused_by"] == cancellation[1]["id"] for r in seen),
            timeout_s=60,
        )
    assert await snapshots(redis, settings).order(order_id) == reference.records[order_id]


@pytest.mark.parametrize(("idle_ms", "in_order"), [(500, True), (0, False)])
async def test_a_co_partition_a_moment_behind_is_waited_for_within_the_idle_time(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis, idle_ms: int, in_order: bool
) -> None:
    """Live: the task update (later in event time) reaches the broker 100 ms before the order's
    hold (earlier in event time). Waiting up to max.task.idle.ms for the empty orders partition
    applies them in event-time order; not waiting applies them as they came."""
    settings = settings.model_copy(update={"max_task_idle_ms": idle_ms})
    order_id = unique("O")
    now = datetime.now(UTC)
    created = event(
        "order.created",
        {"order_id": order_id, "state": "new", "line_items": [line("LI-1", unique("SVC"))]},
        time=(now - timedelta(seconds=2)).isoformat(),
    )
    hold = event(
        "order.hold.requested",
        {"order_id": order_id},
        time=(now + timedelta(milliseconds=1)).isoformat(),
    )
    started = event(
        "task.updated",
        {"order_id": order_id, "task_id": "T-LI-1", "state": "in_progress"},
        time=(now + timedelta(milliseconds=2)).isoformat(),
    )
    async with running_worker(settings):
        await publish(producer, settings, [created])
        await consume_until(settings, [settings.topics.order_status], lambda seen: len(seen) > 0)
        await publish(producer, settings, [started])
        await asyncio.sleep(0.1)
        await publish(producer, settings, [hold])
        await consume_until(
            settings,
            [settings.topics.order_status],
            lambda seen: (
                any(r.json()["data"].get("state") == "on_hold" for r in seen)
                and any(r.json()["subject"] == "T-LI-1" for r in seen)
            ),
            timeout_s=30,
        )
    stored = await snapshots(redis, settings).order(order_id)
    assert stored is not None
    reference = simulate([json.dumps(e) for e in (created, hold, started)], settings)
    # In event-time order the hold comes first: the order stays on hold while its task starts.
    assert (stored == reference.records[order_id]) is in_order
