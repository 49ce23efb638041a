"""Bytes from Kafka, snapshot in Redis, state changes on the outbound topic, offsets committed."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from redis.asyncio import Redis

from tests.integration.harness import (
    Consumed,
    RunningWorker,
    consume_until,
    event,
    outbox_entries,
    publish,
    running_worker,
    snapshots,
    unique,
)
from worker.settings import Settings

pytestmark = pytest.mark.integration


def _changes(records: list[Consumed]) -> list[tuple[str, str, str | None, str]]:
    return [
        (body["type"], body["subject"], body["data"]["previous"], body["data"]["state"])
        for body in (record.json() for record in records)
        if body["type"].endswith(".state.changed")
    ]


def _order_reached(order_id: str, state: str):  # type: ignore[no-untyped-def]
    def done(records: list[Consumed]) -> bool:
        return any(
            body["type"] == "order.state.changed"
            and body["data"]["order_id"] == order_id
            and body["data"]["state"] == state
            for body in (record.json() for record in records)
        )

    return done


def at(minute: int) -> str:
    return f"2026-11-21T10:{minute:02d}:00Z"


def _order(order_id: str) -> dict[str, object]:
    return {
        "order_id": order_id,
        "state": "new",
        "account_id": "ACC-1",
        "line_items": [
            {
                "line_item_id": "LI-1",
                "service_id": "SVC-1",
                "work_orders": [
                    {
                        "work_order_id": "WO-1",
                        "state": "scheduled",
                        "tasks": [{"task_id": "T-1"}, {"task_id": "T-2"}],
                    }
                ],
            }
        ],
    }


async def test_an_order_runs_to_completed_through_the_broker_and_redis(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id = unique("O")
    await publish(
        producer,
        settings,
        [
            event("order.created", _order(order_id), id_=f"{order_id}-1"),
            event("order.approved", {"order_id": order_id}),
            event("task.updated", {"order_id": order_id, "task_id": "T-1", "state": "in_progress"}),
            event(
                "task.updated", {"order_id": order_id, "task_id": "T-1", "state": "closed_complete"}
            ),
            event(
                "task.updated", {"order_id": order_id, "task_id": "T-2", "state": "closed_complete"}
            ),
        ],
    )

    records = await consume_until(
        settings, [settings.topics.order_status], _order_reached(order_id, "completed")
    )

    assert _changes(records) == [
        ("task.state.changed", "T-1", None, "open"),
        ("task.state.changed", "T-2", None, "open"),
        ("workorder.state.changed", "WO-1", None, "scheduled"),
        ("lineitem.state.changed", "LI-1", None, "new"),
        ("order.state.changed", order_id, None, "new"),
        ("lineitem.state.changed", "LI-1", "new", "scheduled"),
        ("order.state.changed", order_id, "new", "acknowledged"),
        ("task.state.changed", "T-1", "open", "in_progress"),
        ("workorder.state.changed", "WO-1", "scheduled", "in_progress"),
        ("lineitem.state.changed", "LI-1", "scheduled", "in_progress"),
        ("order.state.changed", order_id, "acknowledged", "in_progress"),
        ("task.state.changed", "T-1", "in_progress", "closed_complete"),
        ("task.state.changed", "T-2", "open", "closed_complete"),
        ("workorder.state.changed", "WO-1", "in_progress", "closed_complete"),
        ("lineitem.state.changed", "LI-1", "in_progress", "completed"),
        ("order.state.changed", order_id, "in_progress", "completed"),
    ]
    assert {record.key for record in records} == {order_id.encode()}
    first = records[0].json()
    assert first["data"]["caused_by"] == f"{order_id}-1"
    assert first["data"]["labels"] == {
        "servicenow": "Open",
        "nextian": "Pending",
        "psa": "Open",
        "tmf": "acknowledged",
    }

    stored = await snapshots(redis, settings).order(order_id)
    assert stored is not None
    assert stored.order is not None
    assert stored.order.state == "completed"
    assert {task.state for task in stored.order.tasks.values()} == {"closed_complete"}
    assert stored.order.work_orders["WO-1"].state == "closed_complete"
    assert stored.order.line_items["LI-1"].state == "completed"
    assert await outbox_entries(redis, settings) == 0  # everything acknowledged


async def test_unreadable_bytes_are_dead_lettered_and_the_next_record_is_processed(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id = unique("O")
    garbage = b"\xff\x00 not a CloudEvent"
    bad_state = event(
        "task.updated", {"order_id": order_id, "task_id": "T-1", "state": "almost_done"}
    )
    await producer.send_and_wait(settings.topics.tasks, garbage, key=order_id.encode())
    await publish(producer, settings, [bad_state, event("order.created", _order(order_id))])

    dead = await consume_until(settings, [settings.topics.dead_letter], lambda seen: len(seen) >= 2)
    status = await consume_until(
        settings, [settings.topics.order_status], _order_reached(order_id, "new")
    )

    unreadable, invalid = sorted(dead, key=lambda record: record.value != garbage)
    assert unreadable.value == garbage  # the original bytes, untouched
    assert unreadable.headers["dlq-source-topic"] == settings.topics.tasks.encode()
    assert unreadable.headers["dlq-source-offset"] == b"0"
    assert {"dlq-source-partition", "dlq-error"} <= unreadable.headers.keys()
    assert unreadable.headers["dlq-error"].startswith(b"record: Invalid JSON")
    assert unreadable.key == order_id.encode()
    assert invalid.headers["dlq-error"].startswith(b"task.updated.data.state: Input should be")
    assert _changes(status)[-1] == ("order.state.changed", order_id, None, "new")


async def test_offsets_are_committed_after_the_batch_so_a_restart_reprocesses_nothing(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id = unique("O")
    async with running_worker(settings) as first:
        await publish(producer, settings, [event("order.created", _order(order_id))])
        await consume_until(
            settings, [settings.topics.order_status], _order_reached(order_id, "new")
        )
    assert first.records("orders") == 1

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        partitions = [TopicPartition(settings.topics.orders, p) for p in range(4)]
        offsets = await admin.list_consumer_group_offsets(settings.group_id, partitions=partitions)
    finally:
        await admin.close()
    assert sum(meta.offset for meta in offsets.values() if meta.offset > 0) == 1

    order_two = unique("O")
    async with running_worker(settings) as second:
        await publish(producer, settings, [event("order.created", _order(order_two))])
        await consume_until(
            settings, [settings.topics.order_status], _order_reached(order_two, "new")
        )
    assert second.records("orders") == 1  # only the new record


async def test_the_same_event_delivered_twice_changes_nothing_the_second_time(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id = unique("O")
    created = event("order.created", _order(order_id))
    start = event("task.updated", {"order_id": order_id, "task_id": "T-1", "state": "in_progress"})
    marker = event(
        "task.updated", {"order_id": order_id, "task_id": "T-2", "state": "closed_complete"}
    )
    await publish(producer, settings, [created, start, created, start, marker])

    records = await consume_until(
        settings,
        [settings.topics.order_status],
        lambda seen: any(
            r.json()["subject"] == "T-2" and r.json()["data"]["previous"] == "open" for r in seen
        ),
    )

    caused_by = [record.json()["data"]["caused_by"] for record in records]
    assert caused_by.count(start["id"]) == 4  # task, work order, line item, order: once each
    ids = [record.json()["id"] for record in records]
    assert len(ids) == len(set(ids))
