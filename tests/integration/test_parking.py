"""Events that name an order (or parent) that never arrives wait, then go to the dead-letter
topic with what they waited for; the housekeeping timer of the running app does it."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.harness import consume_until, event, publish, unique
from worker.app import build_app
from worker.settings import Settings
from worker.store.snapshots import Stores

pytestmark = pytest.mark.integration


async def test_an_event_for_an_order_that_never_arrives_is_dead_lettered_after_the_timeout(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    settings = settings.model_copy(update={"park_timeout_s": 1.0, "expiry_interval_s": 0.2})
    orphan_order, known_order = unique("O"), unique("O")
    orphan = event(
        "task.updated", {"order_id": orphan_order, "task_id": "T-1", "state": "in_progress"}
    )
    app = build_app(settings, Redis.from_url(settings.redis_url)).app
    await app.start()  # the consumers and the housekeeping timer
    try:
        await publish(
            producer,
            settings,
            [
                orphan,
                event("order.created", {"order_id": known_order, "line_items": []}),
            ],
        )
        dead = await consume_until(
            settings, [settings.topics.dead_letter], lambda seen: len(seen) >= 1, timeout_s=30
        )
    finally:
        await app.stop()

    assert json.loads(dead[0].value)["id"] == orphan["id"]
    reason = dead[0].headers["dlq-error"].decode()
    assert reason.startswith(f"order {orphan_order} never arrived (parked since")
    assert dead[0].key == orphan_order.encode()
    record = await Stores(redis).orders.get(orphan_order)
    assert record is not None
    assert record.parked == []
    assert orphan["id"] in record.applied  # a redelivery of it is not parked again
