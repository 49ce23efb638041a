"""A Redis Cluster failover mid-stream loses nothing: while a worker applies a backlog, each primary
in turn hands its slots to its replica (CLUSTER FAILOVER, as for maintenance); the worker follows
the moved slots, runs its scripts on the new primaries, and ends where `order-status simulate`
does, every output present once by id."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import RedisCluster

from bench.scale_cluster import LocalCluster
from tests.integration.harness import running_worker
from tests.integration.outputs import reading_outputs, wait_for
from tests.integration.streams import feed
from tests.integration.test_determinism import check, publish_backlog
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_every_primary_failing_over_mid_stream_loses_nothing(
    cluster_settings: Settings,
    cluster_redis: RedisCluster,
    redis_cluster: LocalCluster,
    producer: AIOKafkaProducer,
) -> None:
    settings = cluster_settings.model_copy(update={"batch_max_records": 100})
    stream = feed(11, 80, f"{settings.group_id}-")
    reference = simulate(stream.lines(), settings)
    expected = {event["id"] for event in reference.emitted}
    metadata = await publish_backlog(producer, settings, stream.records)
    replicas = redis_cluster.replicas()  # one of each primary
    failed_over: list[int] = []
    outputs_by_then: list[int] = []  # how many outputs were out when each failover was done
    async with reading_outputs(settings) as outputs, running_worker(settings):
        async with asyncio.timeout(120):
            for share in (0.2, 0.4, 0.6):
                while len(outputs.payloads) < share * len(expected):
                    outputs.arrived.clear()
                    await outputs.arrived.wait()
                replica = replicas[len(failed_over)]
                await asyncio.to_thread(redis_cluster.fail_over, replica)
                failed_over.append(replica.port)
                outputs_by_then.append(len(outputs.payloads))
        await wait_for(outputs, expected, len(stream.garbage()), timeout_s=60)

    assert sorted(node.port for node in redis_cluster.primaries()) == sorted(failed_over)
    assert max(outputs_by_then) < len(expected)  # every failover came mid-stream
    await check(settings, cluster_redis, stream, metadata, outputs, reference)
