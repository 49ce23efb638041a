"""The integration tests' worker, settings and clients, on the suite's broker and Redis
(`tests/conftest.py`). Every test gets its own topics, consumer group and order ids, so tests share
one broker and one Redis without seeing each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.faults.servers import RedisServer, redis_server
from tests.integration.harness import RunningWorker, new_settings, running_worker
from worker.embedded import EmbeddedBroker
from worker.settings import Settings


@pytest.fixture
async def settings(bootstrap_servers: str, redis_url: str) -> Settings:
    return await new_settings(bootstrap_servers, redis_url)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[RunningWorker]:
    async with running_worker(settings) as running:
        yield running


@pytest.fixture
async def producer(bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own (append-only, so it keeps its data over a restart)."""
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, to pause without stopping the others' tests."""
    broker = EmbeddedBroker.start()
    yield broker
    broker.stop()
