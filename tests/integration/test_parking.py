"""Events that name an order (or parent) that never arrives wait, then go to the dead-letter topic
with what they waited for: a timer of the order, due when the park timeout has passed in event
time (the stage's frontier, which follows the clock while the input is idle)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.harness import (
    consume_until,
    event,
    publish,
    running_worker,
    snapshots,
    unique,
)
from worker.settings import Settings

pytestmark = pytest.mark.integration


async def test_an_event_for_an_order_that_never_arrives_is_dead_lettered_after_the_timeout(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    settings = settings.model_copy(update={"park_timeout_s": 1.0})
    orphan_order, known_order = unique("O"), unique("O")
    now = datetime.now(UTC).isoformat()
    orphan = event(
        "task.updated",
        {"order_id": orphan_order, "task_id": "T-1", "state": "in_progress"},
        time=now,
    )
    async with running_worker(settings):
        await publish(
            producer,
            settings,
            [orphan, event("order.created", {"order_id": known_order, "line_items": []}, time=now)],
        )
        dead = await consume_until(
            settings, [settings.topics.dead_letter], lambda seen: len(seen) >= 1, timeout_s=30
        )

    assert json.loads(dead[0].value)["id"] == orphan["id"]
    reason = dead[0].headers["dlq-error"].decode()
    assert reason.startswith(f"order {orphan_order} never arrived (parked since")
    assert dead[0].key == orphan_order.encode()
    record = await snapshots(redis, settings).order(orphan_order)
    assert record is not None
    assert record.parked == []
