"""The Redis store of a stage's state, keyed like its input partitions (as Kafka Streams keys its
state stores): everything of group q (partition q of the stage's topics) lives under one hash tag,
so one script writes a whole batch of the group atomically, on a standalone Redis or a cluster.

Layout of group q of stage S in namespace N (the consumer group id):
  {N:S:q}:meta       hash: `v` version (bumped by every write: the fence against a stale owner),
                     `offsets` (JSON: per input topic, the next offset to apply), `sequences` (JSON:
                     per upstream origin, the next sequence number to apply), `sequence` (this
                     group's next output sequence number), `announced` (the event time, µs, below
                     which this group has published everything: its last watermark)
  {N:S:q}:outbox     list: outputs written with the state and not yet acknowledged by the broker
  {N:S:q}:timers     sorted set: entity id -> when its next timer is due (ms since the epoch)
  {N:S:q}:e:ID       string: entity ID's record
  {N:S:q}:...        whatever else a stage keeps with its entities (indexes, timelines)

The offsets and sequences applied are written with the state they produced, so after a crash or a
rebalance the next owner resumes exactly where the state is (Kafka's committed offsets serve lag
monitoring, and a Redis that lost acknowledged writes is detected by comparing them).
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError

from worker.engine.records import Header, Outgoing

R = TypeVar("R")
# Standalone or cluster (worker.config.redis_client): every command of the store names keys of one
# group only, so the cluster client sends each to the node that holds the group's slot.
RedisClient = Redis | RedisCluster

Op = tuple[str, str, *tuple[str | bytes | int, ...]]  # code, key, arguments (see commit.lua)


def _script(name: str) -> str:
    return files("worker.store").joinpath(name).read_text()


@dataclass(frozen=True, slots=True)
class GroupKeys:
    namespace: str
    stage: str
    partition: int

    @property
    def tag(self) -> str:
        return f"{{{self.namespace}:{self.stage}:{self.partition}}}"

    @property
    def meta(self) -> str:
        return f"{self.tag}:meta"

    @property
    def outbox(self) -> str:
        return f"{self.tag}:outbox"

    @property
    def timers(self) -> str:
        return f"{self.tag}:timers"

    def entity(self, entity_id: str) -> str:
        return f"{self.tag}:e:{entity_id}"

    def extra(self, name: str) -> str:
        return f"{self.tag}:{name}"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An output written with the state that caused it, published after the write."""

    id: str  # a UUID the worker made: compared exactly by ack.lua
    record: Outgoing
    kind: str  # the event's type (`dead-letter` for one): for the published-records metric

    def encode(self) -> bytes:
        record = self.record
        head = [
            record.topic,
            record.partition,
            _b64(record.key),
            [[name, _b64(value)] for name, value in record.headers],
            record.value is not None,
            self.kind,
        ]
        text = json.dumps(head, separators=(",", ":"))
        return b"%s\n%s\n%s" % (self.id.encode(), text.encode(), record.value or b"")

    @classmethod
    def decode(cls, raw: bytes) -> OutboxEntry:
        entry_id, head, value = raw.split(b"\n", 2)
        topic, partition, key, headers, has_value, kind = json.loads(head)
        decoded: list[Header] = [(name, _unb64(encoded)) for name, encoded in headers]
        outgoing = Outgoing(topic, _unb64(key), value if has_value else None, decoded, partition)
        return cls(entry_id.decode(), outgoing, kind)


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(slots=True)
class GroupMeta:
    version: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    sequences: dict[int, int] = field(default_factory=dict)
    sequence: int = 0
    announced: int | None = None
    exists: bool = False

    @classmethod
    def decode(cls, raw: Mapping[bytes, bytes]) -> GroupMeta:
        if not raw:
            return cls()
        announced = raw.get(b"announced")
        return cls(
            version=int(raw[b"v"]),
            offsets=json.loads(raw.get(b"offsets", b"{}")),
            sequences={int(k): v for k, v in json.loads(raw.get(b"sequences", b"{}")).items()},
            sequence=int(raw.get(b"sequence", b"0")),
            announced=int(announced) if announced else None,
            exists=True,
        )

    def fields(self) -> list[str]:
        """The meta's fields for commit.lua (all but the version, which the script bumps)."""
        pairs = {
            "offsets": json.dumps(self.offsets, sort_keys=True),
            "sequences": json.dumps({str(k): v for k, v in self.sequences.items()}),
            "sequence": str(self.sequence),
        }
        if self.announced is not None:
            pairs["announced"] = str(self.announced)
        return [item for pair in pairs.items() for item in pair]


@dataclass(frozen=True, slots=True)
class Recovered:
    meta: GroupMeta
    leftovers: list[OutboxEntry]
    first_due_ms: int | None


@dataclass(slots=True)
class GroupWrite(Generic[R]):
    """One group's batch: the meta it leads to (`meta.version` is the version it was read at),
    the records it changed, and further operations (timers, outbox, indexes)."""

    meta: GroupMeta
    records: dict[str, R] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Committed:
    written: bool
    leftovers: int  # outbox entries an earlier attempt left (when written)
    found: int = 0  # the group's version in Redis (when refused): 0, its meta is gone


class ScriptRunner:
    """A Lua script of this package run by EVALSHA in a pipeline (on a cluster, one pipeline per
    node holding a call's group). A node that answers NOSCRIPT (restarted, flushed, or a replica
    promoted by a failover: scripts are not replicated) is sent the text by EVAL, which also caches
    it there. Running a call twice is harmless here: a commit that already ran is refused by its
    version fence, an acknowledgement drops only entries still at the head."""

    def __init__(self, redis: RedisClient, name: str) -> None:
        self._text = _script(name)
        self._sha = redis.register_script(self._text).sha
        self._redis = redis

    async def run_each(self, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        if not calls:
            return []
        replies = await self._run_each("EVALSHA", self._sha, calls)
        unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            again = await self._run_each("EVAL", self._text, [calls[i] for i in unknown])
            for i, reply in zip(unknown, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _run_each(
        self,
        command: str,
        script: str | bytes,
        calls: Sequence[tuple[Sequence[str], Sequence[Any]]],
    ) -> list[Any]:
        # execute_command: redis-py refuses `pipe.evalsha` on a cluster pipeline, but routes the
        # raw command by its first key like any other.
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command(command, script, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


class StageStore(Generic[R]):
    """Every group of one stage. Keeps up to `cached` records parsed, as this process wrote them:
    a group is written only by its owner (the version fence refuses anyone else), so a record it
    wrote is what Redis holds until the group changes hands, when its cache is dropped."""

    def __init__(
        self,
        redis: RedisClient,
        namespace: str,
        stage: str,
        encode: Callable[[R], bytes],
        decode: Callable[[bytes], R],
        cached: int = 0,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self.stage = stage
        self._encode = encode
        self._decode = decode
        self._cached = cached
        self._cache: OrderedDict[tuple[int, str], R] = OrderedDict()  # least recently written first
        self._commit = ScriptRunner(redis, "commit.lua")
        self._ack = ScriptRunner(redis, "ack.lua")
        self.hits = 0
        self.misses = 0
        self.conflicts = 0

    def take_lookups(self) -> tuple[int, int]:
        """Cache hits and misses since the last call."""
        counts = self.hits, self.misses
        self.hits = self.misses = 0
        return counts

    def take_conflicts(self) -> int:
        """Group writes refused by the version fence since the last call (another instance wrote
        the group: a rebalance this instance had not seen yet)."""
        conflicts, self.conflicts = self.conflicts, 0
        return conflicts

    def keys(self, partition: int) -> GroupKeys:
        return GroupKeys(self._namespace, self.stage, partition)

    async def recover(self, partition: int) -> Recovered:
        """What the group's last owner left: its meta, unacknowledged outputs, first timer."""
        keys = self.keys(partition)
        self.forget(partition)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.meta)
            pipe.lrange(keys.outbox, 0, -1)
            pipe.zrange(keys.timers, 0, 0, withscores=True)
            meta, outbox, first = await pipe.execute()
        return Recovered(
            GroupMeta.decode(meta),
            [OutboxEntry.decode(raw) for raw in outbox],
            int(first[0][1]) if first else None,
        )

    def forget(self, partition: int) -> None:
        """Drop what is cached of a group (another owner may write it from now on)."""
        for cached in [key for key in self._cache if key[0] == partition]:
            del self._cache[cached]

    async def load(self, wanted: Mapping[int, Iterable[str]]) -> dict[int, dict[str, R | None]]:
        """Each group's wanted records (None: not created yet): cached ones as they are, the rest
        in one round trip for all groups."""
        loaded: dict[int, dict[str, R | None]] = {}
        missing: dict[int, list[str]] = {}
        for partition, entity_ids in wanted.items():
            found = loaded[partition] = {}
            for entity_id in entity_ids:
                record = self._cache.get((partition, entity_id))
                if record is None:
                    missing.setdefault(partition, []).append(entity_id)
                else:
                    found[entity_id] = record
        self.hits += sum(len(found) for found in loaded.values())
        if not missing:
            return loaded
        self.misses += sum(len(ids) for ids in missing.values())
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition, entity_ids in missing.items():
                keys = self.keys(partition)
                # Raw MGET: redis-py refuses `pipe.mget` on a cluster pipeline (keys of several
                # slots), but these share the group's slot.
                pipe.execute_command("MGET", *[keys.entity(entity_id) for entity_id in entity_ids])
            replies: list[list[bytes | None]] = await pipe.execute()
        for (partition, entity_ids), values in zip(missing.items(), replies, strict=True):
            for entity_id, raw in zip(entity_ids, values, strict=True):
                loaded[partition][entity_id] = None if raw is None else self._decode(raw)
        return loaded

    async def due(self, until_ms: Mapping[int, int], limit: int) -> dict[int, list[str]]:
        """Per group, up to `limit` entities whose timer is due before `until_ms`."""
        if not until_ms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition, until in until_ms.items():
                pipe.zrangebyscore(self.keys(partition).timers, "-inf", f"({until}", 0, limit)
            replies: list[list[bytes]] = await pipe.execute()
        return {
            partition: [member.decode() for member in members]
            for partition, members in zip(until_ms, replies, strict=True)
        }

    async def commit(self, writes: Mapping[int, GroupWrite[R]]) -> dict[int, Committed]:
        """Write each group's batch atomically; all groups in one round trip."""
        calls = []
        for partition, write in writes.items():
            keys = self.keys(partition)
            key_index = {keys.meta: 1, keys.outbox: 2}
            args: list[Any] = [str(write.meta.version), len(write.meta.fields()) // 2]
            args.extend(write.meta.fields())
            ops = [("S", keys.entity(i), self._encode(r)) for i, r in write.records.items()]
            for code, key, *arguments in [*ops, *write.ops]:
                index = key_index.setdefault(key, len(key_index) + 1)
                args.extend((code, index, *arguments))
            calls.append((list(key_index), args))
        replies = await self._commit.run_each(calls)
        committed: dict[int, Committed] = {}
        for (partition, write), (written, detail) in zip(writes.items(), replies, strict=True):
            committed[partition] = (
                Committed(True, int(detail)) if written == 1 else Committed(False, 0, int(detail))
            )
            if written == 1:
                write.meta.version += 1
                self._remember(partition, write.records)
            else:
                self.forget(partition)
                self.conflicts += 1
        return committed

    async def leftovers(self, partition: int, count: int) -> list[OutboxEntry]:
        raw: list[bytes] = await self._redis.lrange(self.keys(partition).outbox, 0, count - 1)  # type: ignore[assignment]  # a client without decode_responses
        return [OutboxEntry.decode(entry) for entry in raw]

    async def acknowledge(self, published: Mapping[int, Sequence[str]]) -> None:
        """Drop the acknowledged entries (ids) from the head of each group's outbox."""
        await self._ack.run_each(
            [([self.keys(p).outbox], list(ids)) for p, ids in published.items() if ids]
        )

    def _remember(self, partition: int, records: Mapping[str, R]) -> None:
        if not self._cached:
            return
        cache = self._cache
        for entity_id, record in records.items():
            cache.pop((partition, entity_id), None)
            cache[partition, entity_id] = record
        while len(cache) > self._cached:
            cache.popitem(last=False)
