"""Redis faults, injected into a Redis of the test's own and a TCP proxy in front of it: a
connection dropped, a Redis that stops answering (shorter and longer than the consumer's
max.poll.interval.ms), a failover through a read-only replica, out of memory, and data loss."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from tests.integration.faults.conftest import REDIS_TIMEOUT_S
from tests.integration.faults.scenario import (
    Raw,
    Sent,
    check,
    generated,
    reference,
    run_through_fault,
    send,
    settle,
    thirds,
)
from tests.integration.faults.servers import RedisServer, TcpProxy, redis_server
from tests.integration.harness import publish, running_worker, unique
from tests.integration.outputs import Outputs, reading_outputs
from tests.integration.test_services import (
    bill,
    created,
    fulfilled,
    line,
    nonpay,
    reached,
    service_status,
)
from worker.app import Worker
from worker.config import redis_client
from worker.engine.errors import Fatal
from worker.settings import Settings
from worker.store.reader import Snapshots, StageCounts, record_topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS = 12


async def test_connections_dropped_again_and_again_lose_nothing(
    proxied: Settings, producer: AIOKafkaProducer, proxy: TcpProxy, own_redis_client: Redis
) -> None:
    @contextlib.asynccontextmanager
    async def drops() -> AsyncIterator[None]:
        async def keep_dropping() -> None:
            while True:
                proxy.drop()
                await asyncio.sleep(0.25)

        dropping = asyncio.create_task(keep_dropping())
        try:
            yield
        finally:
            dropping.cancel()

    records = generated(proxied, seed=11, orders=ORDERS)
    await run_through_fault(proxied, producer, own_redis_client, records, drops, hold_s=1.0)


async def test_a_redis_that_stops_answering_for_longer_than_the_socket_timeout_loses_nothing(
    proxied: Settings, producer: AIOKafkaProducer, proxy: TcpProxy, own_redis_client: Redis
) -> None:
    @contextlib.asynccontextmanager
    async def blackhole() -> AsyncIterator[None]:
        proxy.blackhole()
        yield
        proxy.forward()

    records = generated(proxied, seed=12, orders=ORDERS)
    hold_s = 3 * REDIS_TIMEOUT_S
    await run_through_fault(proxied, producer, own_redis_client, records, blackhole, hold_s)


async def test_an_outage_longer_than_max_poll_interval_rejoins_and_loses_nothing(
    proxied: Settings, producer: AIOKafkaProducer, proxy: TcpProxy, own_redis_client: Redis
) -> None:
    """The batch in hand outlives max.poll.interval.ms: the consumer leaves its group, and the
    stage must rejoin and resume from Redis once Redis answers, not wedge or skip."""
    max_poll_interval_ms = 2500
    settings = proxied.model_copy(update={"max_poll_interval_ms": max_poll_interval_ms})

    @contextlib.asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        proxy.blackhole()
        proxy.drop()
        yield
        proxy.forward()

    records = generated(settings, seed=13, orders=ORDERS)
    hold_s = 2 * max_poll_interval_ms / 1000
    await run_through_fault(settings, producer, own_redis_client, records, outage, hold_s)


async def test_a_failover_through_a_read_only_replica_loses_nothing(
    proxied: Settings,
    producer: AIOKafkaProducer,
    proxy: TcpProxy,
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    """The proxy moves to a replica in sync with the primary, which answers READONLY until it is
    promoted (REPLICAOF NO ONE): a failover as Sentinel or an operator makes it."""
    with redis_server(tmp_path / "replica") as replica:
        with replica.client() as client:
            client.replicaof("127.0.0.1", own_redis.port)

        @contextlib.asynccontextmanager
        async def failover() -> AsyncIterator[None]:
            with own_redis.client() as primary:
                primary.client_pause(5000, all=False)  # writes wait while the replica catches up
                await _in_sync(primary, replica)
                proxy.target = replica.port
                proxy.drop()
                primary.client_unpause()
            yield
            with replica.client() as client:
                client.replicaof("NO", "ONE")

        records = generated(proxied, seed=14, orders=ORDERS)
        replica_client = Redis.from_url(replica.url)
        try:
            await run_through_fault(proxied, producer, replica_client, records, failover, 1.0)
        finally:
            await replica_client.aclose()


async def _in_sync(primary: SyncRedis, replica: RedisServer) -> None:
    """Until the replica has everything the primary wrote."""
    async with asyncio.timeout(10):
        while True:
            offset = primary.info("replication")["master_repl_offset"]
            with replica.client() as client:
                info = client.info("replication")
            if info.get("master_link_status") == "up" and info.get("slave_repl_offset") == offset:
                return
            await asyncio.sleep(0.05)


async def test_redis_out_of_memory_stops_the_worker_uncommitted_and_a_restart_loses_nothing(
    settings: Settings, producer: AIOKafkaProducer, own_redis: RedisServer, own_redis_client: Redis
) -> None:
    """OOM is no transient fault (memory does not free itself): the worker stops with an error
    and commits nothing of the batch; once Redis has memory again, a restart applies it all."""
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    before, during, after = thirds(generated(settings, seed=15, orders=ORDERS))
    async with reading_outputs(settings) as outputs:
        worker = Worker(settings, redis_client(settings))
        await worker.start()
        try:
            sent = await send(producer, before)
            await outputs.at_least(len(reference(settings, sent).emitted) // 2)
            with own_redis.client() as client:  # full: every write is refused
                client.config_set("maxmemory-policy", "noeviction")
                client.config_set("maxmemory", 1)
            sent += await send(producer, during)
            with pytest.raises(OutOfMemoryError):
                await asyncio.wait_for(worker.wait(), 60)
        finally:
            await worker.redis.aclose()
        with own_redis.client() as client:
            client.config_set("maxmemory", 0)
        sent += await send(producer, after)
        async with running_worker(settings):
            expected = await settle(settings, outputs, sent)
    await check(settings, own_redis_client, outputs, sent, expected)


async def test_a_redis_that_lost_the_workers_data_stops_it_with_a_clear_error(
    settings: Settings, producer: AIOKafkaProducer, own_redis: RedisServer
) -> None:
    """Redis emptied under a running worker (a restart without persistence, a failover to an empty
    replica: here FLUSHALL): the worker stops rather than compute from empty state, and so does
    every restart, naming the group and both offsets, until an operator restores Redis."""
    settings = settings.model_copy(update={"redis_url": own_redis.url, "commit_interval_ms": 0})
    before, during, _ = thirds(generated(settings, seed=16, orders=ORDERS))
    async with reading_outputs(settings) as outputs:
        await _lose_redis_under_a_running_worker(
            settings, producer, own_redis, outputs, before, during
        )
    restarted = Worker(settings, redis_client(settings))
    await restarted.start()
    try:
        with pytest.raises(Fatal, match=r"Redis has lost .* offset \w+ of .* offset is \d+"):
            await asyncio.wait_for(restarted.wait(), 60)
    finally:
        await restarted.redis.aclose()


async def test_a_redis_that_lost_data_before_any_offset_commit_stops_the_worker_and_is_rebuilt(
    settings: Settings, producer: AIOKafkaProducer, own_redis: RedisServer, own_redis_client: Redis
) -> None:
    """Redis emptied before the worker committed any offset to Kafka: Kafka cannot tell, but the
    worker can (the group's version went back to nothing), so it stops all the same; restarted,
    it computes everything again from the first offset, with the same outputs."""
    settings = settings.model_copy(
        update={"redis_url": own_redis.url, "commit_interval_ms": 3_600_000}
    )
    before, during, after = thirds(generated(settings, seed=17, orders=ORDERS))
    async with reading_outputs(settings) as outputs:
        sent = await _lose_redis_under_a_running_worker(
            settings, producer, own_redis, outputs, before, during
        )
        async with running_worker(settings):
            sent += await send(producer, after)
            expected = await settle(settings, outputs, sent)
    await check(settings, own_redis_client, outputs, sent, expected)


async def _lose_redis_under_a_running_worker(
    settings: Settings,
    producer: AIOKafkaProducer,
    own_redis: RedisServer,
    outputs: Outputs,
    before: list[Raw],
    during: list[Raw],
) -> list[Sent]:
    """Input applied, then Redis emptied and more input: the worker stops with an error saying
    so; what was sent."""
    worker = Worker(settings, redis_client(settings))
    await worker.start()
    try:
        sent = await send(producer, before)
        await outputs.at_least(len(reference(settings, sent).emitted) // 2)
        with own_redis.client() as client:
            client.flushall()
        sent += await send(producer, during)
        with pytest.raises(Fatal, match="Redis has lost"):
            await asyncio.wait_for(worker.wait(), 60)
    finally:
        await worker.redis.aclose()
    return sent


async def test_a_redis_restarted_with_its_append_only_file_loses_nothing(
    proxied: Settings, producer: AIOKafkaProducer, own_redis: RedisServer, own_redis_client: Redis
) -> None:
    @contextlib.asynccontextmanager
    async def restarted() -> AsyncIterator[None]:
        own_redis.stop()
        yield
        own_redis.start()

    records = generated(proxied, seed=18, orders=ORDERS)
    await run_through_fault(proxied, producer, own_redis_client, records, restarted, hold_s=1.0)


async def test_instances_starting_together_record_one_instances_partition_counts(
    redis: Redis,
) -> None:
    """The partition counts the state is keyed by are recorded whole by one instance: two
    deployments starting at once with different topics never leave a mix that neither has."""
    namespace = unique("topology")
    claims = [StageCounts(n, n + 100, n + 200) for n in range(1, 21)]
    answers = await asyncio.gather(*(record_topology(redis, namespace, c) for c in claims))
    recorded = await Snapshots(redis, namespace).counts()
    assert recorded in claims
    assert [answer is None for answer in answers].count(True) == 1
    assert all(answer in (None, recorded) for answer in answers)


async def test_too_few_replicas_in_sync_are_waited_for_and_nothing_is_lost(
    proxied: Settings, producer: AIOKafkaProducer, own_redis: RedisServer, own_redis_client: Redis
) -> None:
    """A primary with `min-replicas-to-write` refuses writes (NOREPLICAS) while too few replicas
    are in sync: a state that ends when they catch up, so the worker waits, never stops."""

    @contextlib.asynccontextmanager
    async def no_replicas() -> AsyncIterator[None]:
        with own_redis.client() as client:
            client.config_set("min-replicas-to-write", 1)
            yield
            client.config_set("min-replicas-to-write", 0)

    records = generated(proxied, seed=19, orders=ORDERS)
    await run_through_fault(proxied, producer, own_redis_client, records, no_replicas, hold_s=1.0)


async def test_a_worker_fenced_out_by_another_writer_takes_its_groups_up_again_losing_nothing(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """Another writer (a zombie instance) moves the groups' versions while batches are in hand:
    each such batch is refused and abandoned, and the stage takes the group up again from Redis,
    reading again what it had fetched past the state there."""

    @contextlib.asynccontextmanager
    async def another_writer() -> AsyncIterator[None]:
        done = asyncio.Event()

        async def keep_writing() -> None:
            while not done.is_set():
                async for meta in redis.scan_iter(match=f"{{{settings.group_id}:*}}:meta"):
                    await redis.hincrby(meta, "v", 1)
                await asyncio.sleep(0.2)

        writing = asyncio.create_task(keep_writing())
        try:
            yield
        finally:
            done.set()
            await writing

    records = generated(settings, seed=20, orders=ORDERS)
    await run_through_fault(settings, producer, redis, records, another_writer, hold_s=1.0)


async def test_a_stage_taken_up_again_while_its_upstream_is_idle_applies_what_comes_next(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """A stage that takes its groups up again (here: fenced out by another writer) starts from
    the offsets in Redis, past the watermarks the upstream stage announced before. An upstream
    stage that went idle meanwhile must say so again, or billing's events, which wait in event
    time for the order stage's service actions, would be held for good."""
    order_id, service_id, account = unique("O"), unique("SVC"), unique("ACC")
    items = [line("LI-1", service_id)]
    async with running_worker(settings):
        await publish(producer, settings, [created(order_id, account, items)])
        await publish(producer, settings, fulfilled(order_id, items))
        await service_status(settings, reached(service_id, "in_service"))
        await asyncio.sleep(3 * settings.idle_timeout_ms / 1000)  # the order stage is idle
        async for meta in redis.scan_iter(match=f"{{{settings.group_id}:services:*}}:meta"):
            await redis.hincrby(meta, "v", 1)  # the next write finds another writer's version
        await bill(producer, settings, [nonpay("suspended", service_id)])
        await service_status(settings, reached(service_id, "suspended_for_non_pay"))
