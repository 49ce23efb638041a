"""The plan view's indexes in Redis (issue 15): written by the orders stage in the same atomic step
as each order's snapshot, read by `PlanStore`, the `PlanReader` the plan's routes are given.

Beside the snapshots of orders group q (`worker.store.groups`), under the same hash tag:
  {N:orders:q}:plan:versions    hash: order id -> writes of its snapshot (the live update polls it)
  {N:orders:q}:plan:states      hash: order id -> its state ("" before order.created)
  {N:orders:q}:plan:counts      hash: state -> how many of the group's orders are in it (not
                                counting deleted ones)
  {N:orders:q}:plan:list:NAME   sorted set: order id -> when the worker last wrote it (ms since the
                                epoch), for each overview list (`PlanList`); the newest
                                `LIST_CAP` per group are kept
  {N:orders:q}:plan:timeline:ID list: the order's latest status and ops events, newest first
                                (`timeline_events` of them, abridged: see `_abridged`)

Orders written before these indexes existed are found by id, and enter the lists and the counts
with their next write.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from worker.rules import Emitted, OrderRecord, Stream
from worker.rules.service import ServiceRecord
from worker.rules.states import OrderState
from worker.store.groups import GroupKeys, Op, RedisClient
from worker.store.reader import Snapshots
from worker.web.indexes import PlanList, order_lists
from worker.web.reader import ListedOrder, Overview

STAGE: Final = "orders"
LIST_CAP: Final = 100
"""Orders kept on each list per group: the overview shows the newest few of all groups."""
# What an order's timeline holds: its state changes and what operations are told about it.
_TIMELINE_STREAMS: Final = frozenset({Stream.STATUS, Stream.OPS})
_TIMELINE_FIELDS: Final = {"id", "type", "time", "data"}
_TIMELINE_OMITS: Final = {"data": {"labels"}}


class PlanKeys:
    """The plan's keys of one orders group, under its hash tag."""

    def __init__(self, tag: str) -> None:
        self.versions = f"{tag}:plan:versions"
        self.states = f"{tag}:plan:states"
        self.counts = f"{tag}:plan:counts"
        self._tag = tag

    def list(self, name: PlanList) -> str:
        return f"{self._tag}:plan:list:{name}"

    def timeline(self, order_id: str) -> str:
        return f"{self._tag}:plan:timeline:{order_id}"


def plan_ops(
    keys_tag: str,
    order_id: str,
    before: OrderRecord | None,
    after: OrderRecord,
    emitted: Sequence[Emitted],
    written_at: datetime,
    timeline_events: int,
) -> list[Op]:
    """What a write of an order changes in the plan's indexes (for `commit.lua`); its timeline
    keeps the latest `timeline_events` (none: 0)."""
    keys = PlanKeys(keys_tag)
    score = int(written_at.timestamp() * 1000)
    ops: list[Op] = [("H", keys.versions, order_id, 1)]
    counted_before, counted_after = _counted_state(before), _counted_state(after)
    if counted_before != counted_after:
        if counted_before is not None:
            ops.append(("H", keys.counts, counted_before, -1))
        if counted_after is not None:
            ops.append(("H", keys.counts, counted_after, 1))
    ops.append(("h", keys.states, order_id, _state(after)))
    listed_before = order_lists(before) if before is not None else frozenset()
    listed = order_lists(after)
    for name in (PlanList.RECENTLY_CHANGED, *sorted(listed)):
        ops.append(("Z", keys.list(name), score, order_id))
        ops.append(("T", keys.list(name), LIST_CAP))
    ops.extend(("z", keys.list(name), order_id) for name in sorted(listed_before - listed))
    if timeline_events > 0:
        timeline = keys.timeline(order_id)
        # Only the newest can stay (a backlog's batch brings an order dozens of events).
        kept = [item for item in emitted if item.stream in _TIMELINE_STREAMS][-timeline_events:]
        ops.extend(("L", timeline, timeline_events, _abridged(item)) for item in kept)
    return ops


def _abridged(emitted: Emitted) -> str:
    """The event as the timeline reads it, in about half the bytes: its id, type, time
    and data, without each state's labels (the page looks them up) and fields without a value."""
    return emitted.event.model_dump_json(
        include=_TIMELINE_FIELDS, exclude=_TIMELINE_OMITS, exclude_none=True
    )


def _text(raw: bytes | str) -> str:
    """A reply of a client with or without decode_responses."""
    return raw.decode() if isinstance(raw, bytes) else raw


def _state(record: OrderRecord) -> str:
    return record.order.state.value if record.order is not None else ""


def _counted_state(record: OrderRecord | None) -> str | None:
    """The state the order counts in (None: not created yet, or deleted)."""
    if record is None or record.order is None or record.deleted:
        return None
    return record.order.state.value


class PlanStore:
    """The worker's snapshots and the plan's indexes, as the plan pages read them."""

    def __init__(self, redis: RedisClient, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._snapshots = Snapshots(redis, namespace)

    async def order(self, order_id: str) -> OrderRecord | None:
        return await self._snapshots.order(order_id)

    async def service(self, service_id: str) -> ServiceRecord | None:
        return await self._snapshots.service(service_id)

    async def order_version(self, order_id: str) -> int:
        keys = await self._keys(order_id)
        if keys is None:
            return 0
        version = await self._redis.hget(keys.versions, order_id)
        return int(version) if version is not None else 0

    async def timeline(self, order_id: str, limit: int) -> list[dict[str, Any]]:
        keys = await self._keys(order_id)
        if keys is None or limit <= 0:
            return []
        events = await self._redis.lrange(keys.timeline(order_id), 0, limit - 1)
        return [json.loads(event) for event in events]

    async def overview(self, limit: int) -> Overview:
        """Each list's newest `limit` orders over every group, and the counts of all groups."""
        groups = [PlanKeys(GroupKeys(self._namespace, STAGE, q).tag) for q in await self._groups()]
        names = list(PlanList)
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys in groups:
                pipe.hgetall(keys.counts)
                for name in names:
                    pipe.zrevrange(keys.list(name), 0, limit - 1, withscores=True)
            replies: list[Any] = await pipe.execute()
        counts: Counter[OrderState] = Counter()
        newest: dict[PlanList, list[tuple[float, str, int]]] = {name: [] for name in names}
        per_group = 1 + len(names)
        for index in range(len(groups)):
            group_counts, *lists = replies[index * per_group : (index + 1) * per_group]
            counts.update({OrderState(_text(state)): int(n) for state, n in group_counts.items()})
            for name, members in zip(names, lists, strict=True):
                newest[name].extend((score, _text(member), index) for member, score in members)
        chosen = {
            name: heapq.nlargest(limit, entries, key=lambda entry: (entry[0], entry[1]))
            for name, entries in newest.items()
        }
        states = await self._states(groups, [entry for each in chosen.values() for entry in each])
        return Overview(
            lists={
                name.value: [
                    ListedOrder(
                        order_id=order_id,
                        state=states[order_id],
                        changed_at=datetime.fromtimestamp(score / 1000, UTC),
                    )
                    for score, order_id, _ in entries
                ]
                for name, entries in chosen.items()
            },
            counts={state: count for state, count in counts.items() if count > 0},
        )

    async def _states(
        self, groups: list[PlanKeys], listed: Iterable[tuple[float, str, int]]
    ) -> dict[str, OrderState | None]:
        wanted: dict[int, set[str]] = {}
        for _, order_id, index in listed:
            wanted.setdefault(index, set()).add(order_id)
        asked = [(index, sorted(order_ids)) for index, order_ids in wanted.items()]
        answers = await asyncio.gather(
            *(self._redis.hmget(groups[index].states, order_ids) for index, order_ids in asked)
        )
        return {
            order_id: OrderState(_text(raw)) if raw else None
            for (_, order_ids), values in zip(asked, answers, strict=True)
            for order_id, raw in zip(order_ids, values, strict=True)
        }

    async def _groups(self) -> range:
        counts = await self._snapshots.counts()
        return range(counts.orders if counts is not None else 0)

    async def _keys(self, order_id: str) -> PlanKeys | None:
        keys = await self._snapshots.group_keys(STAGE, order_id)
        return None if keys is None else PlanKeys(keys.tag)
