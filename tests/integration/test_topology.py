"""`order-status run` checks its topics at start: co-partitioned topics with other partition counts
would send one order's (or service's) events to two groups, so the worker refuses to start, saying
which topics and counts; a deployment whose counts changed since its state was written likewise."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from worker.app import Worker
from worker.engine.errors import Fatal
from worker.settings import Settings, Topics

pytestmark = pytest.mark.integration


def fresh(settings: Settings) -> Settings:
    run = uuid.uuid4().hex[:8]
    topics = Topics(**{name: f"{value}.{run}" for name, value in Topics().model_dump().items()})
    return settings.model_copy(update={"topics": topics, "group_id": f"topology-{run}"})


async def create(settings: Settings, counts: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topic, counts.get(topic, 4), replication_factor=1)
                for topic in settings.topics.all
            ]
        )
    finally:
        await admin.close()


async def start_fails(settings: Settings) -> str:
    redis = Redis.from_url(settings.redis_url)
    worker = Worker(settings, redis)
    try:
        with pytest.raises(Fatal) as failure:
            await worker.start()
    finally:
        await redis.aclose()
    return str(failure.value)


async def test_fulfillment_topics_with_different_partition_counts_stop_the_start(
    settings: Settings,
) -> None:
    settings = fresh(settings)
    await create(settings, {settings.topics.tasks: 2})
    reason = await start_fails(settings)
    assert "fulfillment topics must have one partition count" in reason
    assert f"'{settings.topics.tasks}': 2" in reason


async def test_service_actions_must_have_billings_partition_count(settings: Settings) -> None:
    settings = fresh(settings)
    await create(settings, {settings.topics.service_actions: 2})
    reason = await start_fails(settings)
    assert f"{settings.topics.service_actions} must have the partition count of" in reason


async def test_changed_partition_counts_since_the_state_was_written_stop_the_start(
    settings: Settings, redis: Redis
) -> None:
    settings = fresh(settings)
    await create(settings, {})
    await redis.hset(
        f"order-status:{settings.group_id}:topology",
        mapping={"orders": 8, "services": 4, "activity": 4},
    )
    reason = await start_fails(settings)
    assert "partition counts changed" in reason
