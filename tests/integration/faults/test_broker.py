"""The broker stops answering (SIGSTOP: no connection closes, nothing answers) for longer than the
consumer's session timeout, with input before, during and after: the worker waits, rejoins and
loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.faults.scenario import generated, run_through_fault
from worker.dev import create_topics
from worker.embedded import EmbeddedBroker
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAUSE_S = 3.0


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker.start()
    yield broker
    broker.resume()
    broker.stop()


async def test_the_broker_paused_past_the_session_timeout_loses_nothing(
    settings: Settings, own_broker: EmbeddedBroker, redis: Redis
) -> None:
    settings = settings.model_copy(update={"bootstrap_servers": own_broker.bootstrap_servers})
    assert settings.session_timeout_ms < PAUSE_S * 1000
    await create_topics(settings)

    @contextlib.asynccontextmanager
    async def paused() -> AsyncIterator[None]:
        own_broker.pause()
        # Resumed on a timer: what is sent meanwhile waits in the producer, as upstream's would.
        asyncio.get_running_loop().call_later(PAUSE_S, own_broker.resume)
        yield

    records = generated(settings, seed=41, orders=12)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await run_through_fault(settings, producer, redis, records, paused, hold_s=PAUSE_S)
    finally:
        await producer.stop()
