"""The Redis store of snapshots (orders, services, account activity) and their outboxes.

Layout per entity, all of its keys under one hash tag so every script runs on Redis Cluster:
  {KIND:ID}          hash: `version` (bumped on every write), `record` (the record's JSON)
  {KIND:ID}:outbox   list: outbound events written with the record and not yet acknowledged by
                     the broker, oldest first; each a JSON array [id, stream, key, payload] with
                     the record's headers as a fifth element where it has any
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

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
        fields: list[object] = [self.id, self.stream, self.key, self.payload]
        if self.headers:
            fields.append(self.headers)
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> OutboxEntry:
        entry_id, stream, key, payload, *headers = json.loads(raw)
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


class SnapshotStore(Generic[R]):
    """Records of one kind (`order`, `service`, `account`, ...) and their outboxes."""

    def __init__(self, redis: Redis, kind: str, model: type[R]) -> None:
        self._redis = redis
        self._kind = kind
        self._model = model
        self._commit = redis.register_script(_script("commit.lua"))
        self._ack = redis.register_script(_script("ack.lua"))

    async def load(self, entity_ids: Iterable[str]) -> dict[str, Loaded[R]]:
        """Every entity's record and version, in one round trip."""
        ids = list(entity_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for entity_id in ids:
                pipe.hmget(record_key(self._kind, entity_id), ["version", "record"])
            rows: list[list[bytes | None]] = await pipe.execute()
        return {
            entity_id: Loaded(
                version=(version or b"0").decode(),
                record=self._model.model_validate_json(record) if record else None,
            )
            for entity_id, (version, record) in zip(ids, rows, strict=True)
        }

    async def get(self, entity_id: str) -> R | None:
        return (await self.load([entity_id]))[entity_id].record

    async def commit(self, writes: Mapping[str, Write[R]]) -> Committed:
        """Write every record with its outbox entries, each atomically, in one round trip."""
        ids = list(writes)
        async with self._redis.pipeline(transaction=False) as pipe:
            for entity_id in ids:
                write = writes[entity_id]
                await self._commit(
                    keys=[record_key(self._kind, entity_id), outbox_key(self._kind, entity_id)],
                    args=[
                        write.loaded.version,
                        write.record.model_dump_json(),
                        *(entry.encode() for entry in write.outbox),
                    ],
                    client=pipe,
                )
            # Each reply is [1, entries pending from before...] or [0, current version].
            replies: list[list[Any]] = await pipe.execute()
        committed = Committed(pending={}, conflicts=[])
        for entity_id, (written, *rest) in zip(ids, replies, strict=True):
            if written == 1:
                # Entries left by an earlier attempt first, then this write's: the outbox's order.
                earlier = [OutboxEntry.decode(raw) for raw in rest]
                committed.pending[entity_id] = [*earlier, *writes[entity_id].outbox]
            else:
                committed.conflicts.append(entity_id)
        return committed

    async def acknowledge(self, published: Mapping[str, Sequence[OutboxEntry]]) -> None:
        """Drop entries the broker has acknowledged from the head of each outbox."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for entity_id, entries in published.items():
                await self._ack(
                    keys=[outbox_key(self._kind, entity_id)],
                    args=[entry.id for entry in entries],
                    client=pipe,
                )
            await pipe.execute()


class Stores:
    """Every key space the worker keeps, on one Redis connection."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.orders = SnapshotStore(redis, "order", OrderRecord)
        self.services = SnapshotStore(redis, "service", ServiceRecord)
        self.activity = SnapshotStore(redis, "activity", ActivityRecord)
