"""Transient faults are waited out, never dead-lettered; a poison record never blocks the rest;
stale updates are ignored and reported."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from bench.generator import StreamSpec, generate
from tests.integration.harness import (
    Consumed,
    OwnRedis,
    consume_until,
    event,
    publish,
    running_worker,
    snapshots,
    unique,
)
from worker import rules
from worker.app import Worker
from worker.dev import create_topics
from worker.embedded import EmbeddedBroker
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 5.0


def _stream(settings: Settings, orders: int = 30) -> list[dict[str, Any]]:
    return generate(StreamSpec(orders=orders, seed=5, prefix=f"{settings.group_id}-"))


async def _produce(
    producer: AIOKafkaProducer, settings: Settings, events: list[dict[str, Any]]
) -> None:
    sends = [
        await producer.send(
            settings.topics.for_event(e["type"]),
            json.dumps(e).encode(),
            key=e["data"]["order_id"].encode(),
        )
        for e in events
    ]
    await asyncio.gather(*sends)


async def _assert_nothing_lost(
    settings: Settings, stream: list[dict[str, Any]], redis_url: str
) -> None:
    """Every input applied once to its order, nothing left waiting, every order run to its end.

    (Exact equality with the reference model is the crash test's claim. Under a fault that
    blocks a batch for seconds the order of events across topics is best effort.)"""
    expected = simulate([json.dumps(e) for e in stream], settings)
    finals = [f"order {order_id}" for order_id in expected.records]

    def every_order_final(seen: list[Consumed]) -> bool:
        ended = {
            f"order {r.json()['subject']}"
            for r in seen
            if r.json()["type"] == "order.state.changed"
            and r.json()["data"]["state"] in ("completed", "canceled", "partial", "failed")
        }
        return ended >= set(finals)

    await consume_until(settings, [settings.topics.order_status], every_order_final, timeout_s=90)
    client = Redis.from_url(redis_url)
    try:
        reader = snapshots(client, settings)
        for order_id, reference in expected.records.items():
            assert await reader.order(order_id) == reference, order_id
    finally:
        await client.aclose()


async def _no_dead_letters(settings: Settings) -> None:
    dead = await consume_until(
        settings, [settings.topics.dead_letter], lambda seen: True, timeout_s=5
    )
    assert dead == []


async def test_redis_stopped_for_five_seconds_mid_stream_loses_nothing(
    settings: Settings, producer: AIOKafkaProducer, own_redis: OwnRedis
) -> None:
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    stream = _stream(settings)
    half = len(stream) // 2
    async with running_worker(settings):
        await _produce(producer, settings, stream[:half])
        await consume_until(settings, [settings.topics.order_status], lambda seen: len(seen) >= 50)
        own_redis.stop()
        await _produce(producer, settings, stream[half:])
        await asyncio.sleep(OUTAGE_S)
        own_redis.start()
        await _assert_nothing_lost(settings, stream, own_redis.url)
    await _no_dead_letters(settings)


async def test_the_broker_paused_for_five_seconds_loses_nothing(
    settings: Settings, own_broker: EmbeddedBroker
) -> None:
    settings = settings.model_copy(update={"bootstrap_servers": own_broker.bootstrap_servers})
    await create_topics(settings)
    stream = _stream(settings)
    half = len(stream) // 2
    kafka = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await kafka.start()
    try:
        async with running_worker(settings):
            await _produce(kafka, settings, stream[:half])
            await consume_until(
                settings, [settings.topics.order_status], lambda seen: len(seen) >= 50
            )
            own_broker.pause()
            await asyncio.sleep(OUTAGE_S)
            own_broker.resume()
            await _produce(kafka, settings, stream[half:])
            await _assert_nothing_lost(settings, stream, settings.redis_url)
    finally:
        await kafka.stop()
    await _no_dead_letters(settings)


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
