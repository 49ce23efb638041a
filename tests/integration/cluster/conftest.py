"""A real local Redis Cluster (three primaries, a replica each: `bench.scale_cluster`) for the tests
of this package, started once and torn down after them; the settings that point the worker at it
and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import RedisCluster

from bench.scale_cluster import LocalCluster, local_cluster
from tests.integration.harness import WorkerProcess
from worker.config import redis_client
from worker.settings import Settings


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster_settings(settings: Settings, redis_cluster: LocalCluster) -> Settings:
    return settings.model_copy(update={"redis_url": redis_cluster.url, "redis_cluster": True})


@pytest.fixture
async def cluster_redis(cluster_settings: Settings) -> AsyncIterator[RedisCluster]:
    client = redis_client(cluster_settings)
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


def fail_if_exited(workers: list[WorkerProcess], logs: list[Path]) -> None:
    """A worker process that stopped on its own (not killed by the test) fails the test at once,
    with its last log lines, instead of at the test's timeout."""
    for worker, log in zip(workers, logs, strict=True):
        if worker.process is not None and worker.process.poll() not in (None, -9):
            tail = log.read_text().splitlines()[-3:]
            pytest.fail(f"{log.name}: exited with {worker.process.returncode}: {tail}")
