"""Bad and hostile input, as upstream teams (or anyone who can write to a topic) publish it, spread
through a generated stream: every bad record is dead-lettered with its reason, as consumed (key,
value and every header byte for byte), and found by its source partition and offset; everything
valid, however odd its headers, keys, ids or record timestamp, is applied as `simulate` applies it.
Nothing stops a partition, nothing disappears."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.faults.scenario import (
    Raw,
    generated,
    interleave,
    no_fault,
    run_through_fault,
    valid,
)
from tests.integration.harness import event
from worker.engine.partitioning import partition_for
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_RECORD_BYTES = 8192
"""The dead-letter topic's limit in this test (the broker's message.max.bytes)."""
ODD_HEADERS: tuple[tuple[str, bytes | None], ...] = (
    ("trace", None),
    ("blob", b"\xff\xfe\x00"),
    ("hop", b"first"),
    ("hop", b"second"),
)
"""A null header value, one that is not UTF-8, and a name repeated."""
AFTER_YEAR_9999_MS = 300_000_000_000_000
HOSTILE = 'Q"uote\\back{brace}[x]:ü€-'
"""Characters that break text matched inside JSON, Lua patterns, Redis key globs, or ASCII."""


def _order(order_id: str, suffix: str = "") -> list[dict[str, Any]]:
    """An order's life to completion: created with one line item, one work order and one task,
    submitted and approved, the task worked and closed."""
    task, work_order, line_item = f"T{suffix}", f"WO{suffix}", f"LI{suffix}"
    created = {
        "order_id": order_id,
        "state": "new",
        "line_items": [
            {
                "line_item_id": line_item,
                "work_orders": [{"work_order_id": work_order, "tasks": [{"task_id": task}]}],
            }
        ],
    }
    ids = {"order_id": order_id}
    return [
        event("order.created", created, id_=f"{order_id}/created"),
        event("order.approved", ids, id_=f"{order_id}/approved"),
        *(
            event(
                "task.updated", {**ids, "task_id": task, "state": state}, id_=f"{order_id}/{state}"
            )
            for state in ("scheduled", "in_progress", "closed_complete")
        ),
    ]


def _valid(settings: Settings, events: list[dict[str, Any]], **fields: Any) -> list[Raw]:
    partitions = settings.topic_partitions
    return [
        valid(settings.topics.for_event(e["type"]), e, e["data"]["order_id"], partitions, **fields)
        for e in events
    ]


def _bad(settings: Settings, prefix: str) -> list[Raw]:
    """Records that must be dead-lettered, each with a word of the reason it must give."""
    topics, partitions = settings.topics, settings.topic_partitions
    order_id = f"{prefix}bad"
    orders_partition = partition_for(order_id.encode(), partitions)
    service_id = f"{prefix}SVC-forged"
    billing_partition = partition_for(service_id.encode(), partitions)

    def on_orders(value: bytes | None, dead: str, **fields: Any) -> Raw:
        placed = {"key": order_id.encode(), "partition": orders_partition, **fields}
        return Raw(topics.orders, value=value, dead=dead, **placed)

    def on_billing(body: dict[str, Any], dead: str) -> Raw:
        value = json.dumps(body).encode()
        return Raw(topics.billing, service_id.encode(), value, (), billing_partition, dead=dead)

    created = event("order.created", {"order_id": order_id, "state": "new"})

    def envelope(**changes: Any) -> bytes:
        body = {**created, **changes}
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    forged_action = {
        **event("service.action", {}),
        "data": {
            "service_id": service_id,
            "action": "add",
            "outcome": "completed",
            "order_id": order_id,
            "line_item_id": "LI",
            "caused_by": "forged",
            "at": "2026-11-21T08:00:00Z",
        },
    }
    term_end = {**event("service.term.ended", {}), "data": {"service_id": service_id}}
    too_large = envelope(data={"order_id": order_id, "padding": "x" * (2 * MAX_RECORD_BYTES)})
    return [
        on_orders(b"\xff\xfe not JSON", "JSON"),
        on_orders(b"\xff\xfe not JSON, odd headers", "JSON", headers=ODD_HEADERS),
        on_orders(None, "tombstone"),
        on_orders(None, "tombstone", key=None, headers=ODD_HEADERS),
        on_orders(too_large, "padding"),
        on_orders(envelope(specversion=None), "specversion"),
        on_orders(envelope(id=None), "id"),
        on_orders(envelope(id=""), "id"),
        on_orders(envelope(source=None), "source"),
        on_orders(envelope(type=None), "type"),
        on_orders(envelope(time=1_795_000_000), "time"),
        on_orders(envelope(sequence=True), "sequence"),
        on_orders(envelope(sequence=10**23), "sequence"),
        on_orders(envelope(time="2099-01-01T00:00:00Z"), "clock"),
        on_orders(envelope(time="1899-12-31T00:00:00Z"), "time"),
        on_orders(envelope(time="1969-12-31T23:59:59Z"), "1970"),
        on_orders(envelope(time=None), "no time", timestamp_ms=AFTER_YEAR_9999_MS),
        on_orders(envelope(type="task.updated"), "task"),  # a type this topic does not carry
        on_orders(envelope(), "record key", key=b"someone-else"),
        on_orders(envelope(), "partition", key=None, partition=(orders_partition + 1) % partitions),
        on_billing(forged_action, "service.action"),
        on_billing(term_end, "service.term.ended"),
    ]


async def test_bad_records_are_dead_lettered_as_consumed_and_odd_valid_ones_applied(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    settings = settings.model_copy(update={"max_record_bytes": MAX_RECORD_BYTES})
    prefix = f"{settings.group_id}-"
    good = generated(settings, seed=21, orders=12)
    hostile = [
        *_valid(settings, _order(f"{prefix}{HOSTILE}1", HOSTILE)),
        *_valid(settings, _order(f"{prefix}{HOSTILE}2"), headers=ODD_HEADERS),
        *_valid(settings, _order(f"{prefix}keyless"), key=None),
        *_valid(settings, _order(f"{prefix}far-timestamp"), timestamp_ms=AFTER_YEAR_9999_MS),
    ]
    records = _in_time_order(interleave(interleave(good, hostile), _bad(settings, prefix)))
    await run_through_fault(settings, producer, redis, records, no_fault, hold_s=0)


def _in_time_order(records: list[Raw]) -> list[Raw]:
    """Every valid event timed one second after the one published before it (the bad records
    keep theirs): upstream systems publish in event-time order."""
    moment = datetime(2026, 11, 21, 8, tzinfo=UTC)
    timed = []
    for record in records:
        if record.event is not None:
            moment += timedelta(seconds=1)
            stamped = {**record.event, "time": moment.isoformat().replace("+00:00", "Z")}
            record = replace(record, event=stamped, value=json.dumps(stamped).encode())
        timed.append(record)
    return timed


async def test_an_event_whose_order_or_parent_never_comes_is_dead_lettered_as_simulate_does(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """Parked events expire `park_timeout` after their event time, as the stage's event time
    passes it: each goes to the dead-letter topic as consumed, and the order's record ends as the
    simulator's, run until after that time."""
    park_timeout = timedelta(seconds=2)
    settings = settings.model_copy(update={"park_timeout_s": park_timeout.total_seconds()})
    prefix = f"{settings.group_id}-"
    waiting, never = f"{prefix}waits", f"{prefix}never-created"
    orphans = [
        event(
            "task.created",
            {"order_id": waiting, "work_order_id": "WO-never", "task_id": "T-orphan"},
        ),
        event("task.updated", {"order_id": never, "task_id": "T", "state": "in_progress"}),
    ]
    parked = [replace(record, dead="never arrived") for record in _valid(settings, orphans)]
    records = _in_time_order(
        [*generated(settings, seed=22, orders=6), *_valid(settings, _order(waiting)), *parked]
    )
    last = max(datetime.fromisoformat(r.event["time"]) for r in records if r.event is not None)
    until = last + park_timeout + timedelta(seconds=1)
    await run_through_fault(settings, producer, redis, records, no_fault, hold_s=0, until=until)
