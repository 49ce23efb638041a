"""Scale-out on a real Redis Cluster: the crash test's input (its generator, seed and size, with the
differential tests' shared accounts, billing events and unreadable records) through three worker
processes in one group, one SIGKILLed and one more added mid-stream (each a rebalance), ends with
every output present by id, none with two payloads, every snapshot and dead letter as
`order-status simulate` says, and every key of the worker in one partition group's slot."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import RedisCluster

from tests.integration.cluster.conftest import fail_if_exited
from tests.integration.harness import WorkerProcess, worker_env
from tests.integration.outputs import reading_outputs, wait_for
from tests.integration.streams import feed
from tests.integration.test_determinism import check, publish_backlog
from worker.settings import Settings
from worker.simulate import simulate
from worker.store.reader import topology_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CRASH_TEST_SEED, CRASH_TEST_ORDERS = 20261122, 200  # tests/integration/test_crash.py


async def test_three_workers_on_a_cluster_one_killed_one_added_lose_and_double_nothing(
    cluster_settings: Settings,
    cluster_redis: RedisCluster,
    producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    settings = cluster_settings
    stream = feed(CRASH_TEST_SEED, CRASH_TEST_ORDERS, f"{settings.group_id}-")
    reference = simulate(stream.lines(), settings)
    expected = {event["id"] for event in reference.emitted}
    metadata = await publish_backlog(producer, settings, stream.records)

    env = worker_env(settings, ORDER_STATUS_BATCH_MAX_RECORDS="200")
    logs = [tmp_path / f"worker-{n}.log" for n in range(4)]
    workers = [WorkerProcess(env, str(log)) for log in logs]
    killed = added = False
    async with reading_outputs(settings) as outputs:
        for worker in workers[:3]:
            worker.start()
        try:
            async with asyncio.timeout(240):
                while not expected <= outputs.payloads.keys():
                    outputs.arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(outputs.arrived.wait(), 1.0)
                    fail_if_exited(workers, logs)
                    if not killed and len(outputs.payloads) >= 0.3 * len(expected):
                        workers[0].kill()  # whatever it was doing: the others take its groups
                        killed = True
                    if not added and len(outputs.payloads) >= 0.6 * len(expected):
                        workers[3].start()
                        added = True
            await wait_for(outputs, expected, len(stream.garbage()), timeout_s=30)
            assert [worker.terminate() for worker in workers[1:]] == [0, 0, 0]
        finally:
            for worker in workers:
                if worker.process and worker.process.poll() is None:
                    worker.kill()

    assert (killed, added) == (True, True)
    await check(settings, cluster_redis, stream, metadata, outputs, reference)
    # Every key the worker wrote is in one partition group's slot, but for the partition counts
    # recorded once at start.
    keys = {key.decode() async for key in cluster_redis.scan_iter(match=f"*{settings.group_id}*")}
    untagged = {key for key in keys if not key.startswith(f"{{{settings.group_id}:")}
    assert untagged == {topology_key(settings.group_id)}
