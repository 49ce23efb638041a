"""Reading snapshots by entity id, for `order-status show`, the plan view and tests. State is kept
per partition (`worker.store.groups`), so a reader finds an entity's group the way its records were
partitioned (murmur2 of the key), from the partition counts the worker recorded at start."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from worker.engine.errors import Fatal
from worker.engine.partitioning import partition_for
from worker.rules import OrderRecord
from worker.rules.service import ActivityKind, ActivityRecord, ServiceRecord
from worker.store import codecs
from worker.store.groups import GroupKeys, RedisClient


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
    await redis.hsetnx(key, "orders", counts.orders)
    await redis.hsetnx(key, "services", counts.services)
    await redis.hsetnx(key, "activity", counts.activity)
    recorded = await redis.hgetall(key)
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

    async def _get(self, stage: str, entity_id: str) -> bytes | None:
        counts = await self.counts()
        if counts is None:
            return None
        groups = {"orders": counts.orders, "services": counts.services}.get(stage, counts.activity)
        keys = GroupKeys(self._namespace, stage, partition_for(entity_id.encode(), groups))
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
