"""The error policy's other half: an error that is no fault of a dependency (a bug in the rules)
stops the worker without committing, and nothing is lost once it is fixed; a stale update is
refused and reported, never applied."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.harness import consume_until, event, publish, running_worker, unique
from worker import rules
from worker.app import Worker
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _one_task_order(order_id: str) -> dict[str, Any]:
    """order.created data: one line item, one work order, one task T-1."""
    work_order = {"work_order_id": "WO-1", "tasks": [{"task_id": "T-1"}]}
    line_item = {"line_item_id": "LI-1", "work_orders": [work_order]}
    return {"order_id": order_id, "state": "new", "line_items": [line_item]}


async def test_a_bug_in_the_rules_stops_the_worker_without_committing_and_nothing_is_lost(
    settings: Settings, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event that makes the rules fail is a bug, not bad input (the rules refuse bad input):
    the worker stops, commits nothing of that batch, and once fixed applies it."""
    order_id, poison_id = unique("O"), unique("poison")
    real_apply = rules.apply

    def apply_with_a_bug(*args: Any, **kwargs: Any) -> rules.Outcome:
        if any(item.event.id == poison_id for item in args[2]):
            raise RuntimeError("a bug in the rules")
        return real_apply(*args, **kwargs)

    created = _one_task_order(order_id)
    poison = event(
        "task.updated",
        {"order_id": order_id, "task_id": "T-1", "state": "on_hold"},
        id_=poison_id,
        time="2026-11-21T10:01:00Z",
    )
    events = [
        event("order.created", created, time="2026-11-21T10:00:00Z"),
        poison,
        event(
            "task.updated",
            {"order_id": order_id, "task_id": "T-1", "state": "in_progress"},
            time="2026-11-21T10:02:00Z",
        ),
    ]
    monkeypatch.setattr(rules, "apply", apply_with_a_bug)
    redis = Redis.from_url(settings.redis_url)
    worker = Worker(settings, redis)
    await worker.start()
    try:
        await publish(producer, settings, events)
        with pytest.raises(RuntimeError, match="a bug in the rules"):
            await asyncio.wait_for(worker.wait(), 30)
    finally:
        await redis.aclose()
    monkeypatch.setattr(rules, "apply", real_apply)  # the fix is deployed

    async with running_worker(settings):
        status = await consume_until(
            settings,
            [settings.topics.order_status],
            lambda seen: any(
                r.json()["data"].get("state") == "in_progress" and r.json()["subject"] == "T-1"
                for r in seen
            ),
        )
    task_changes = [r.json()["data"]["state"] for r in status if r.json()["subject"] == "T-1"]
    assert task_changes == ["open", "on_hold", "in_progress"]  # every event, once each


async def test_a_lower_sequence_after_a_higher_one_is_ignored_and_reported(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id = unique("O")
    created = _one_task_order(order_id)
    newer = event(
        "task.updated",
        {"order_id": order_id, "task_id": "T-1", "state": "in_progress"},
        sequence=3,
        time="2026-11-21T10:01:00Z",
    )
    older = event(
        "task.updated",
        {"order_id": order_id, "task_id": "T-1", "state": "scheduled"},
        sequence=2,
        time="2026-11-21T10:02:00Z",
    )
    async with running_worker(settings) as worker:
        await publish(producer, settings, [event("order.created", created), newer, older])
        ops = await consume_until(settings, [settings.topics.ops], lambda seen: len(seen) >= 1)
    assert sum(report.count("update.stale") for report in worker.reports) == 1  # counted
    stale = ops[0].json()
    assert stale["type"] == "update.stale"
    assert stale["data"] == {
        "order_id": order_id,
        "entity": "task",
        "id": "T-1",
        "source": "/tests",
        "sequence": 2,
        "applied_sequence": 3,
        "caused_by": older["id"],
    }
