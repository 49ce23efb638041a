"""Readiness's dependency checks against a real Redis and a real broker, each private to the test
so it can be blocked: the probe fails while one does not answer and recovers when it answers
again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from worker.embedded import EmbeddedBroker, embedded_redis
from worker.observe import Health, broker_check, redis_check

pytestmark = pytest.mark.integration

CHECK_TIMEOUT_S = 0.5


@pytest.fixture
def private_redis() -> Iterator[str]:
    with embedded_redis() as url:
        yield url


@pytest.fixture
def private_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker.start()
    try:
        yield broker
    finally:
        broker.resume()
        broker.stop()


@pytest.fixture
def health() -> Health:
    checked = Health(["g"], stall_after_s=60, check_timeout_s=CHECK_TIMEOUT_S)
    checked.assigned("g", [])
    return checked


async def test_ready_fails_while_redis_is_paused_and_recovers(
    private_redis: str, health: Health
) -> None:
    redis = Redis.from_url(private_redis)
    admin = Redis.from_url(private_redis)
    try:
        health.add_check("redis", redis_check(redis))
        assert (await health.ready()).healthy
        await admin.client_pause(1500, all=True)
        blocked = await health.ready()
        assert not blocked.healthy
        assert blocked.detail["checks"]["redis"] == f"no answer within {CHECK_TIMEOUT_S:g}s"
        await asyncio.sleep(1.6)
        assert (await health.ready()).healthy
    finally:
        await redis.aclose()
        await admin.aclose()


async def test_ready_fails_while_the_broker_is_stopped_and_recovers(
    private_broker: EmbeddedBroker, health: Health
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=private_broker.bootstrap_servers, request_timeout_ms=5000
    )
    await consumer.start()
    try:
        health.add_check("broker", broker_check(consumer))
        assert (await health.ready()).healthy
        private_broker.pause()
        blocked = await health.ready()
        assert not blocked.healthy
        assert blocked.detail["checks"]["broker"] == f"no answer within {CHECK_TIMEOUT_S:g}s"
        private_broker.resume()
        assert (await health.ready()).healthy
    finally:
        await consumer.stop()
