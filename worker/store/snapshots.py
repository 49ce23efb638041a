"""The Redis store of snapshots (orders, services, account activity) and their outboxes.

Layout per entity, all of its keys under one hash tag so every script runs on Redis Cluster:
  {KIND:ID}          hash: `version` (bumped on every write), `record` (the record's JSON)
  {KIND:ID}:outbox   list: outbound events written with the record and not yet acknowledged by
                     the broker, oldest first; each a JSON array [id, stream, key] (with the
                     record's headers as a fourth element where it has any), a newline, and the
                     payload as it is published (not escaped into the array: that cost more than
                     the rest of the entry)
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from worker.rules import OrderRecord
from worker.rules.service import ActivityRecord, ServiceRecord

R = TypeVar("R", bound=BaseModel)


def _script(name: str) -> str:
    return files("worker.store").joinpath(name).read_text()


def record_key(kind: str, entity_id: str) -> str:
    return f"{{{kind}:{entity_id}}}"


def outbox_key(kind: str, entity_id: str) -> str:
    return f"{{{kind}:{entity_id}}}:outbox"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: str
    stream: str
    key: str
    payload: str
    headers: dict[str, str] | None = None  # a dead letter's reason; else the content type

    def encode(self) -> str:
        fields: list[object] = [self.id, self.stream, self.key]
        if self.headers:
            fields.append(self.headers)
        # JSON never holds a raw newline, so the first one ends the head.
        return f"{json.dumps(fields, separators=(',', ':'))}\n{self.payload}"

    @classmethod
    def decode(cls, raw: bytes | str) -> OutboxEntry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        head, _, payload = text.partition("\n")
        entry_id, stream, key, *headers = json.loads(head)
        return cls(entry_id, stream, key, payload, headers[0] if headers else None)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[R]):
    version: str
    record: R | None


@dataclass(frozen=True, slots=True)
class Write(Generic[R]):
    loaded: Loaded[R]
    record: R
    outbox: Sequence[OutboxEntry]


@dataclass(frozen=True, slots=True)
class Committed:
    pending: dict[str, list[OutboxEntry]]
    """Per entity, every outbox entry not yet acknowledged, in order: this batch's and any left over
    by an earlier attempt that crashed between writing and publishing."""
    conflicts: list[str]
    """Entities another writer changed since they were read: read again and recompute."""


class PipelinedScript:
    """A Lua script of this package, run once per (keys, args) in one pipelined round trip.

    By EVALSHA: redis-py's `Script` in a pipeline first asks Redis whether it exists (`SCRIPT
    EXISTS`, a round trip more for every batch); this loads it only when Redis answers NOSCRIPT
    (Redis restarted, or its scripts were flushed) and runs the calls again. Running one twice is
    harmless: a commit that already ran is refused by its compare-and-set (a conflict: read
    again), an acknowledgement drops only entries still at the head of the outbox."""

    def __init__(self, redis: Redis, name: str) -> None:
        # redis-py's Script knows its sha (from the client's encoding); only its call is replaced.
        self._script = redis.register_script(_script(name))
        self._redis = redis

    async def run_each(self, calls: Sequence[tuple[list[str], list[str]]]) -> list[Any]:
        try:
            return await self._run_each(calls)
        except NoScriptError:
            await self._redis.script_load(self._script.script)
            return await self._run_each(calls)

    async def _run_each(self, calls: Sequence[tuple[list[str], list[str]]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute()
        return replies


class SnapshotStore(Generic[R]):
    """Records of one kind (`order`, `service`, `account`, ...) and their outboxes.

    Keeps up to `cached` records this process wrote, with their versions: an entity touched again
    (under live input nearly every batch touches the same orders) is neither read nor parsed
    again. The rules never change a record they are given (they work on a copy), so a cached record
    is what Redis held at that version; if another writer (an instance that had the partition
    during a rebalance) has moved the version since, the compare-and-set refuses the write and the
    entity is read again, as for any conflict.
    """

    def __init__(self, redis: Redis, kind: str, model: type[R], cached: int = 0) -> None:
        self._redis = redis
        self._kind = kind
        self._model = model
        self._commit = PipelinedScript(redis, "commit.lua")
        self._ack = PipelinedScript(redis, "ack.lua")
        self._cached = cached
        self._cache: OrderedDict[str, Loaded[R]] = OrderedDict()  # least recently written first

    async def load(self, entity_ids: Iterable[str]) -> dict[str, Loaded[R]]:
        """Every entity's record and version: the cached ones as they are, the others in one
        round trip."""
        loaded: dict[str, Loaded[R]] = {}
        missing: list[str] = []
        for entity_id in entity_ids:
            cached = self._cache.get(entity_id)
            if cached is None:
                missing.append(entity_id)
            else:
                loaded[entity_id] = cached
        if not missing:
            return loaded
        async with self._redis.pipeline(transaction=False) as pipe:
            for entity_id in missing:
                pipe.hmget(record_key(self._kind, entity_id), ["version", "record"])
            rows: list[list[bytes | None]] = await pipe.execute()
        for entity_id, (version, record) in zip(missing, rows, strict=True):
            loaded[entity_id] = Loaded(
                version=(version or b"0").decode(),
                record=self._model.model_validate_json(record) if record else None,
            )
        return loaded

    async def get(self, entity_id: str) -> R | None:
        return (await self.load([entity_id]))[entity_id].record

    async def commit(self, writes: Mapping[str, Write[R]]) -> Committed:
        """Write every record with its outbox entries, each atomically, in one round trip."""
        ids = list(writes)
        # Each reply is [1, entries pending from before...] or [0, current version].
        replies = await self._commit.run_each(
            [
                (
                    [record_key(self._kind, entity_id), outbox_key(self._kind, entity_id)],
                    [
                        write.loaded.version,
                        write.record.model_dump_json(),
                        *(entry.encode() for entry in write.outbox),
                    ],
                )
                for entity_id, write in writes.items()
            ]
        )
        committed = Committed(pending={}, conflicts=[])
        for entity_id, (written, *rest) in zip(ids, replies, strict=True):
            write = writes[entity_id]
            if written == 1:
                # Entries left by an earlier attempt first, then this write's: the outbox's order.
                earlier = [OutboxEntry.decode(raw) for raw in rest]
                committed.pending[entity_id] = [*earlier, *write.outbox]
                self._remember(entity_id, Loaded(str(int(write.loaded.version) + 1), write.record))
            else:
                self._cache.pop(entity_id, None)
                committed.conflicts.append(entity_id)
        return committed

    def _remember(self, entity_id: str, loaded: Loaded[R]) -> None:
        if self._cached:
            self._cache.pop(entity_id, None)
            self._cache[entity_id] = loaded
            if len(self._cache) > self._cached:
                self._cache.popitem(last=False)

    async def acknowledge(self, published: Mapping[str, Sequence[OutboxEntry]]) -> None:
        """Drop entries the broker has acknowledged from the head of each outbox."""
        await self._ack.run_each(
            [
                ([outbox_key(self._kind, entity_id)], [entry.id for entry in entries])
                for entity_id, entries in published.items()
            ]
        )


class Stores:
    """Every key space the worker keeps, on one Redis connection."""

    def __init__(self, redis: Redis, cached: int = 0) -> None:
        """`cached`: how many records of each kind the worker keeps parsed (see SnapshotStore)."""
        self.redis = redis
        self.orders = SnapshotStore(redis, "order", OrderRecord, cached)
        self.services = SnapshotStore(redis, "service", ServiceRecord, cached)
        self.activity = SnapshotStore(redis, "activity", ActivityRecord, cached)
