"""Timers on a cluster, across instances: term ends and parked events' expiry live in each
partition group's timers (in the group's slot), so they move with the group in a rebalance and fire
once, on whichever instance owns the group when its event time passes them."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import RedisCluster

from tests.integration.harness import (
    Consumed,
    consume_until,
    event,
    publish,
    running_worker,
    snapshots,
    unique,
)
from tests.integration.test_services import (
    Body,
    changes,
    created,
    every,
    fulfilled,
    line,
    reached,
    stamped,
    term,
)
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTITIES = 8  # services with a term, and orphan events: over every partition of four
TIMEOUT_S = 8.0  # a term's end and the park timeout after the input's time


async def test_term_ends_and_parked_events_expire_once_across_instances_through_a_rebalance(
    cluster_settings: Settings, cluster_redis: RedisCluster, producer: AIOKafkaProducer
) -> None:
    settings = cluster_settings.model_copy(update={"park_timeout_s": TIMEOUT_S})
    services = [unique("SVC") for _ in range(ENTITIES)]
    orphans = [
        event("task.updated", {"order_id": unique("O"), "task_id": "T-1", "state": "in_progress"})
        for _ in range(ENTITIES)
    ]

    def inputs_at(moment: datetime) -> list[Body]:
        """Each service's order, its term ending TIMEOUT_S after `moment`; then the orphans."""
        orders = []
        for service_id in services:
            order_id = unique("O")
            items = [line("LI-1", service_id, term=term(moment + timedelta(seconds=TIMEOUT_S)))]
            orders += [created(order_id, unique("ACC"), items), *fulfilled(order_id, items)]
        return [stamped(body, moment) for body in [*orders, *orphans]]

    def expired(seen: list[Consumed]) -> bool:
        dead = [record for record in seen if record.topic == settings.topics.dead_letter]
        return len(dead) >= ENTITIES and every(*(reached(s, "expired") for s in services))(seen)

    topics = [settings.topics.service_status, settings.topics.dead_letter]
    async with running_worker(settings), running_worker(settings):
        moment = datetime.now(UTC)  # the instances are up: time the input, and the timers, now
        end = moment + timedelta(seconds=TIMEOUT_S)
        inputs = inputs_at(moment)
        await publish(producer, settings, inputs)
        in_service = every(*(reached(s, "in_service") for s in services))
        await consume_until(settings, [settings.topics.service_status], in_service)
        assert datetime.now(UTC) < end  # every timer is still pending
        async with running_worker(settings):  # a third instance: groups and their timers move
            await consume_until(settings, topics, expired, timeout_s=TIMEOUT_S + 30)
            await asyncio.sleep(1.0)  # a second firing would show now
            records = await consume_until(settings, topics, expired)

    for service_id in services:
        moves = [(data["previous"], data["state"]) for data in changes(records, service_id)]
        assert moves == [(None, "new"), ("new", "in_service"), ("in_service", "expired")]
    dead = Counter(
        json.loads(record.value)["id"]
        for record in records
        if record.topic == settings.topics.dead_letter
    )
    assert dead == Counter({orphan["id"]: 1 for orphan in orphans})
    reference = simulate(
        [json.dumps(body) for body in inputs], settings, until=end + timedelta(seconds=1)
    )
    reader = snapshots(cluster_redis, settings)
    for service_id in services:
        assert await reader.service(service_id) == reference.services[service_id]
