"""The Redis store of order records and their outboxes.

Layout, all of one order's keys under one hash tag so every script runs unchanged on Redis Cluster:
  {order:ID}          hash: `version` (bumped on every write), `record` (OrderRecord JSON)
  {order:ID}:outbox   list: outbound events written with the record and not yet acknowledged by
                      the broker, oldest first; each a JSON array [id, stream, key, payload]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis

from worker.rules.snapshot import OrderRecord


def _script(name: str) -> str:
    return files("worker.store").joinpath(name).read_text()


def order_key(order_id: str) -> str:
    return f"{{order:{order_id}}}"


def outbox_key(order_id: str) -> str:
    return f"{{order:{order_id}}}:outbox"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: str
    stream: str
    key: str
    payload: str

    def encode(self) -> str:
        return json.dumps([self.id, self.stream, self.key, self.payload], separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> OutboxEntry:
        entry_id, stream, key, payload = json.loads(raw)
        return cls(entry_id, stream, key, payload)


@dataclass(frozen=True, slots=True)
class Loaded:
    version: str
    record: OrderRecord | None


@dataclass(frozen=True, slots=True)
class Write:
    loaded: Loaded
    record: OrderRecord
    outbox: Sequence[OutboxEntry]


@dataclass(frozen=True, slots=True)
class Committed:
    pending: dict[str, list[OutboxEntry]]
    """Per order, every outbox entry not yet acknowledged, in order: this batch's and any left over
    by an earlier attempt that crashed between writing and publishing."""
    conflicts: list[str]
    """Orders another writer changed since they were read: read again and recompute."""


class OrderStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._commit = redis.register_script(_script("commit.lua"))
        self._ack = redis.register_script(_script("ack.lua"))

    async def load(self, order_ids: Iterable[str]) -> dict[str, Loaded]:
        """Every order's record and version, in one round trip."""
        ids = list(order_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hmget(order_key(order_id), ["version", "record"])
            rows: list[list[bytes | None]] = await pipe.execute()
        return {
            order_id: Loaded(
                version=(version or b"0").decode(),
                record=OrderRecord.model_validate_json(record) if record else None,
            )
            for order_id, (version, record) in zip(ids, rows, strict=True)
        }

    async def get(self, order_id: str) -> OrderRecord | None:
        return (await self.load([order_id]))[order_id].record

    async def commit(self, writes: Mapping[str, Write]) -> Committed:
        """Write every record with its outbox entries, each order atomically, in one round trip."""
        ids = list(writes)
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                write = writes[order_id]
                await self._commit(
                    keys=[order_key(order_id), outbox_key(order_id)],
                    args=[
                        write.loaded.version,
                        write.record.model_dump_json(),
                        *(entry.encode() for entry in write.outbox),
                    ],
                    client=pipe,
                )
            # Each reply is [1, pending entries...] or [0, current version].
            replies: list[list[Any]] = await pipe.execute()
        committed = Committed(pending={}, conflicts=[])
        for order_id, (written, *rest) in zip(ids, replies, strict=True):
            if written == 1:
                committed.pending[order_id] = [OutboxEntry.decode(raw) for raw in rest]
            else:
                committed.conflicts.append(order_id)
        return committed

    async def acknowledge(self, published: Mapping[str, Sequence[OutboxEntry]]) -> None:
        """Drop entries the broker has acknowledged from the head of each outbox."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id, entries in published.items():
                await self._ack(
                    keys=[outbox_key(order_id)], args=[e.id for e in entries], client=pipe
                )
            await pipe.execute()
