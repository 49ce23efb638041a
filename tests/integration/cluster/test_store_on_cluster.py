"""The store on a real Redis Cluster: the standalone store tests run unchanged on it (one code
path), a batch spanning groups on every primary is one call, and a replica promoted by a failover
(which never saw the scripts) runs them."""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from bench.scale_cluster import LocalCluster
from tests.integration.harness import unique
from tests.integration.test_store import (  # the same tests, on the cluster
    entry,
    test_a_write_read_at_an_older_version_is_refused,
    test_acknowledging_drops_exactly_the_published_entries_from_the_head,
    test_records_read_back_through_the_cache_and_from_redis,
    test_scripts_flushed_from_redis_are_loaded_again,
    test_timers_due_before_a_moment_and_the_first_one_after_recovery,
)
from worker.engine.errors import Fatal
from worker.rules import OrderRecord
from worker.store import codecs
from worker.store.groups import GroupWrite, StageStore
from worker.store.reader import StageCounts, record_topology

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_write_read_at_an_older_version_is_refused",
    "test_acknowledging_drops_exactly_the_published_entries_from_the_head",
    "test_records_read_back_through_the_cache_and_from_redis",
    "test_scripts_flushed_from_redis_are_loaded_again",
    "test_timers_due_before_a_moment_and_the_first_one_after_recovery",
]

GROUPS = range(12)
COMMIT_SHA = hashlib.sha1(files("worker.store").joinpath("commit.lua").read_bytes()).hexdigest()


@pytest.fixture
def redis(cluster_redis: RedisCluster) -> RedisCluster:
    """What the imported tests call `redis`: here, the cluster."""
    return cluster_redis


def orders_store(redis: RedisCluster) -> StageStore[OrderRecord]:
    return StageStore(redis, unique("ns"), "orders", codecs.ORDERS.encode, codecs.ORDERS.decode)


def node_of(redis: RedisCluster, store: StageStore[OrderRecord], group: int) -> ClusterNode:
    node = redis.get_node_from_key(store.keys(group).meta)
    assert node is not None
    return node


async def commit_every_group(store: StageStore[OrderRecord]) -> None:
    writes: dict[int, GroupWrite[OrderRecord]] = {}
    for group in GROUPS:
        meta = (await store.recover(group)).meta
        write = writes[group] = GroupWrite(meta, {f"O-{group}": OrderRecord(order_id=f"O-{group}")})
        keys = store.keys(group)
        write.ops.extend(
            [
                ("Z", keys.timers, 1000 + group, f"O-{group}"),
                ("R", keys.outbox, entry(f"e{group}").encode()),
            ]
        )
    committed = await store.commit(writes)
    assert all(result.written for result in committed.values())


async def test_a_batch_of_groups_on_every_primary_is_written_read_and_acknowledged(
    cluster_redis: RedisCluster,
) -> None:
    store = orders_store(cluster_redis)
    await cluster_redis.initialize()
    assert len({node_of(cluster_redis, store, group).name for group in GROUPS}) == 3
    await commit_every_group(store)
    loaded = await store.load({group: [f"O-{group}"] for group in GROUPS})
    assert loaded == {g: {f"O-{g}": OrderRecord(order_id=f"O-{g}")} for g in GROUPS}
    assert await store.due(dict.fromkeys(GROUPS, 2000), 10) == {
        group: [f"O-{group}"] for group in GROUPS
    }
    await store.acknowledge({group: [f"e{group}"] for group in GROUPS})
    for group in GROUPS:
        recovered = await store.recover(group)
        assert (recovered.meta.version, recovered.leftovers) == (1, [])


async def test_a_replica_promoted_by_a_failover_runs_the_scripts_it_never_loaded(
    cluster_redis: RedisCluster, redis_cluster: LocalCluster
) -> None:
    store = orders_store(cluster_redis)
    await cluster_redis.initialize()
    await commit_every_group(store)  # every primary has run (and cached) the commit script
    primary = node_of(cluster_redis, store, 0)
    replica = next(node for node in redis_cluster.replicas() if node.primary_port() == primary.port)
    with replica.client() as client:
        client.script_flush()  # a primary before an earlier test's failover would have it
        assert client.script_exists(COMMIT_SHA) == [False]
    redis_cluster.fail_over(replica)

    await commit_every_group(store)

    assert node_of(cluster_redis, store, 0).port == replica.port
    with replica.client() as client:
        assert client.script_exists(COMMIT_SHA) == [True]


async def test_a_standalone_client_pointed_at_a_cluster_stops_saying_to_set_the_setting(
    redis_cluster: LocalCluster,
) -> None:
    node = redis_cluster.primaries()[0]
    client = Redis(host="127.0.0.1", port=node.port)
    with pytest.raises(Fatal, match="set ORDER_STATUS_REDIS_CLUSTER=true"):
        await record_topology(client, unique("ns"), StageCounts(4, 4, 4))
    await client.aclose()
