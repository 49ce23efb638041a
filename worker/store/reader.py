"""Reading snapshots by entity id, for `order-status show`, the plan view and tests. State is kept
per partition (`worker.store.groups`), so a reader finds an entity's group the way its records were
partitioned (murmur2 of the key), from the partition counts the worker recorded at start."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from worker.engine.errors import Fatal
from worker.engine.partitioning import partition_for
from worker.rules import OrderRecord
from worker.rules.service import ActivityKind, ActivityRecord, ServiceRecord
from worker.store import codecs
from worker.store.groups import GroupKeys, RedisClient

_RECORD_ONCE = """
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HGETALL', KEYS[1])
"""


def topology_key(namespace: str) -> str:
    return f"order-status:{namespace}:topology"


@dataclass(frozen=True, slots=True)
class StageCounts:
    orders: int
    services: int
    activity: int


async def record_topology(
    redis: RedisClient, namespace: str, counts: StageCounts
) -> StageCounts | None:
    """Record the partition counts the state is keyed by; the counts recorded before, if they
    differ (the state of a group is then somewhere else: see the README on changing counts)."""
    key = topology_key(namespace)
    fields = {"orders": counts.orders, "services": counts.services, "activity": counts.activity}
    # The first thing a worker asks Redis: a standalone client would fail later on a MOVED reply.
    if isinstance(redis, Redis) and (await redis.info("cluster")).get("cluster_enabled"):
        raise Fatal("REDIS_URL is a node of a Redis Cluster: set ORDER_STATUS_REDIS_CLUSTER=true")
    # One script: instances starting together record one instance's counts whole, never a mix.
    pairs = [part for field in fields.items() for part in field]
    reply = await cast("Awaitable[list[bytes]]", redis.eval(_RECORD_ONCE, 1, key, *pairs))
    recorded = dict(zip(reply[::2], reply[1::2], strict=True))
    before = StageCounts(*(int(recorded[name.encode()]) for name in fields))
    return None if before == counts else before


class Snapshots:
    """An order's, service's or owner's record, wherever its partition put it."""

    def __init__(self, redis: RedisClient, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._counts: StageCounts | None = None

    async def counts(self) -> StageCounts | None:
        """The partition counts the worker recorded (None: no worker of this group has run
        against this Redis, so it holds nothing of it)."""
        if self._counts is None:
            raw = await self._redis.hgetall(topology_key(self._namespace))
            if raw:
                self._counts = StageCounts(
                    int(raw[b"orders"]), int(raw[b"services"]), int(raw[b"activity"])
                )
        return self._counts

    async def group_keys(self, stage: str, entity_id: str) -> GroupKeys | None:
        """The keys of the stage's group that holds the entity (None: see `counts`)."""
        counts = await self.counts()
        if counts is None:
            return None
        groups = {"orders": counts.orders, "services": counts.services}.get(stage, counts.activity)
        return GroupKeys(self._namespace, stage, partition_for(entity_id.encode(), groups))

    async def _get(self, stage: str, entity_id: str) -> bytes | None:
        keys = await self.group_keys(stage, entity_id)
        if keys is None:
            return None
        raw = await self._redis.get(keys.entity(entity_id))
        assert raw is None or isinstance(raw, bytes)  # a client without decode_responses
        return raw

    async def order(self, order_id: str) -> OrderRecord | None:
        raw = await self._get("orders", order_id)
        return None if raw is None else codecs.ORDERS.decode(raw)

    async def service(self, service_id: str) -> ServiceRecord | None:
        raw = await self._get("services", service_id)
        return None if raw is None else codecs.SERVICES.decode(raw)

    async def activity(self, kind: ActivityKind, owner_id: str) -> ActivityRecord | None:
        raw = await self._get("activity", f"{kind}:{owner_id}")
        return None if raw is None else codecs.ACTIVITY.decode(raw)
