"""The flow of one consumed batch, top to bottom; the same for every stage (`worker.stages`).

1. Decode every record: an item for the merge, a watermark from the upstream stage, or a dead
   letter (with the reason). Records already applied or buffered are skipped (by offset, and by the
   origins' sequence numbers on internal topics).
2. Release, per group (partition number), what can be applied now in event-time order
   (`worker.engine.merge`), and the group's frontier: everything below it has been released.
3. Find the entities to settle: those with released items, and those whose timer is due before the
   frontier (the group's timers in Redis).
4. Read their records: the cached ones as they are, the rest in one round trip.
5. Apply the rules: each entity's items in order, then its timers up to the frontier (pure).
6. Write each group's batch atomically: records, timers, outbox (outputs and dead letters), and
   the meta (offsets and sequences applied, output sequence, frontier), fenced by the group's
   version; all groups in one round trip.
7. Publish what the outboxes hold, as one record batch per partition, and the groups' frontiers to
   the next stage (watermarks, after the outputs they cover); wait for the broker's acks.
8. Drop the acknowledged entries from the outboxes.

A crash anywhere replays from the state in Redis: the next owner resumes at the offsets the meta
holds and publishes whatever the outbox still holds, with the same ids.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from schemas.outbound import CommandRejectedData, JeopardyData, UpdateStaleData
from worker.engine.announce import Announcer
from worker.engine.control import Routing, Watermark
from worker.engine.errors import Fatal, MembershipLost, retrying
from worker.engine.group import GroupState
from worker.engine.merge import NEVER, Item, Partition
from worker.engine.records import (
    CONTENT_TYPE,
    Outgoing,
    Record,
    dead_letter,
)
from worker.engine.timebase import from_us, to_us
from worker.observe.metrics import DeadLetterReason
from worker.observe.metrics import Stage as StageName
from worker.publish import Publish
from worker.rules import Emitted, Stream, output_id
from worker.stages.base import Decoded, Rejected, Stage, ranks
from worker.store.groups import GroupWrite, OutboxEntry, StageStore

log = structlog.get_logger("worker.pipeline")

V = TypeVar("V")
R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")

DUE_LIMIT = 1000
"""Entities whose timers fire in one batch, per group (the rest fire in the next)."""
DEAD_LETTER = "dead-letter"


@dataclass(slots=True)
class BatchReport:
    """What one batch did: for metrics, logs and tests."""

    stage: StageName
    records: int = 0
    consumed: Counter[str] = field(default_factory=Counter)
    """Records taken from each topic (not seen before)."""
    applied: int = 0
    entities: int = 0
    """Entities settled: with items released, or a timer due."""
    timers: int = 0
    """Entities whose timers fired."""
    dead_letters: Counter[DeadLetterReason] = field(default_factory=Counter)
    late: int = 0
    published: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(topic, event type) -> how many were published."""
    emitted: list[Emitted] = field(default_factory=list)
    delays: list[tuple[float, float]] = field(default_factory=list)
    """Per applied input: its event time and its record's broker time, in seconds."""
    acknowledged_at: float = 0.0
    """When the broker had acknowledged every output (seconds since the epoch)."""
    held_back: int = 0
    """Records buffered after the release, waiting for their co-partitions."""
    frontier_us: int = NEVER
    """The earliest frontier of the stage's groups."""
    seconds: float = 0.0

    def count(self, event_type: str) -> int:
        """How many emitted events of a type: `command.rejected`, `update.stale`, ..."""
        return sum(1 for item in self.emitted if item.event.type == event_type)


class PollView(Protocol):
    """What the engine reads of its consumer after a poll (aiokafka's AIOKafkaConsumer)."""

    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_poll_timestamp(self, partition: TopicPartition) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Topology:
    """How many groups this stage and its neighbours have (partition counts)."""

    groups: int
    upstream_groups: int = 0  # 0: no upstream stage
    downstream_partitions: int = 0  # 0: no downstream stage


@dataclass(frozen=True, slots=True)
class Limits:
    dead_letter_topic: str
    max_record_bytes: int
    idle_ms: int
    idle_timeout_ms: int
    announce_interval_s: float


class Pipeline(Generic[V, R]):
    """One stage's batches. `groups` is kept by the stage's consumer loop (`worker.engine.runner`):
    the groups it owns, recovered from Redis when assigned."""

    def __init__(
        self,
        stage: Stage[V, R],
        store: StageStore[R],
        publish: Publish,
        topology: Topology,
        limits: Limits,
        clock: Callable[[], datetime],
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.stage = stage
        self.store = store
        self.publish = publish
        self.topology = topology
        self._limits = limits
        self._clock = clock
        self._on_retry = on_retry
        self.owner: Callable[[], bool] = lambda: True
        """Whether the stage still owns the batch's partitions (set by the consumer loop)."""
        self.groups: dict[int, GroupState[Decoded[V]]] = {}
        self._ranks = ranks(stage)
        self._announcer = Announcer(
            stage.downstream_topic,
            topology.downstream_partitions,
            topology.groups,
            limits.announce_interval_s,
            limits.idle_timeout_ms / 1000,
        )

    async def retrying(self, step: Callable[[], Awaitable[T]], what: str) -> T:
        return await retrying(step, what, self.owner, self._on_retry)

    async def process(self, records: Sequence[Record], poll: PollView) -> BatchReport:
        started = time.perf_counter()
        report = BatchReport(self.stage.name)
        now = self._clock()
        # The groups owned as the batch starts: a rebalance during one of its awaits may take them
        # away (the next step's ownership check then abandons the batch).
        groups = dict(self.groups)

        # 1. Decode.
        dead: dict[int, list[OutboxEntry]] = {}
        for record in records:
            group = groups.get(record.partition)
            source = Partition(record.topic, record.partition)
            if group is None or group.seen(source, record.offset):
                continue  # not ours (revoked meanwhile), or already applied or buffered
            group.next_offsets[source] = record.offset + 1
            report.records += 1
            report.consumed[record.topic] += 1
            decoded = self.stage.decode(record, self.topology.groups, now)
            if isinstance(decoded, Watermark):
                refusal = self._watermark(group, decoded)
                if refusal is None:
                    continue
                decoded = refusal
            if isinstance(decoded, Rejected):
                dead.setdefault(group.partition, []).append(self._dead_letter(record, decoded))
                report.dead_letters[reason_class(decoded)] += 1
                log.warning(
                    "dead-lettered",
                    stage=self.stage.name,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=decoded,
                )
                continue
            item = self._item(group, record, source, decoded, poll)
            if item is not None:
                group.merge.add(item)

        # 2. Release.
        released: dict[int, list[Item[Decoded[V]]]] = {}
        for group in groups.values():
            for member in group.partitions:
                group.merge.polled(member, *self._poll_state(group, member, poll))
            late_before = group.merge.late
            outcome = group.merge.release(
                self._limits.idle_ms * 1000, self._limits.idle_timeout_ms * 1000
            )
            report.late += group.merge.late - late_before
            group.frontier = max(group.frontier, outcome.frontier)
            group.idle = outcome.idle
            report.held_back += sum(group.merge.buffered(member) for member in group.partitions)
            if outcome.items:
                released[group.partition] = outcome.items

        # 3. Entities to settle, per group: released items by entity, and timers due.
        inputs: dict[int, dict[str, list[V]]] = {}
        for partition, items in released.items():
            by_entity = inputs.setdefault(partition, {})
            for item in items:
                by_entity.setdefault(item.value.entity, []).append(item.value.value)
                report.delays.append((item.time / 1e6, item.value.broker_time))
            report.applied += len(items)
        report.frontier_us = min((g.frontier for g in groups.values()), default=NEVER)
        until = _due_until(groups)
        due: dict[int, list[str]] = await self.retrying(
            lambda: self.store.due(until, DUE_LIMIT), "timers"
        )
        for partition, entity_ids in due.items():
            if len(entity_ids) < DUE_LIMIT:
                groups[partition].due_floor_ms = until[partition]
            by_entity = inputs.setdefault(partition, {})
            for entity_id in entity_ids:
                by_entity.setdefault(entity_id, [])
            report.timers += len(entity_ids)
        report.entities = sum(len(by_entity) for by_entity in inputs.values())
        writing = [p for p in groups if inputs.get(p) or p in dead]
        if writing:
            # 4. Read the records.
            loaded: dict[int, dict[str, R | None]] = await self.retrying(
                lambda: self.store.load({p: inputs.get(p, {}) for p in writing}), "load"
            )

            # 5. Apply the rules.
            writes: dict[int, GroupWrite[R]] = {}
            outbox: dict[int, list[OutboxEntry]] = {}
            for partition in writing:
                writes[partition], outbox[partition] = self._settle_group(
                    groups[partition],
                    inputs.get(partition, {}),
                    loaded[partition],
                    dead.get(partition, []),
                    report,
                    now,
                )

            # 6. Write each group's batch atomically.
            await self.write(writes, outbox, groups)

        # 7. Publish, the watermarks after the outputs they cover (one request: per partition,
        # in order), and wait for the acks; 8. acknowledge.
        announcement = self._announcer.announcement(bool(writing), groups)
        if writing:
            await self.publish_outboxes(outbox, report, announcement.records)
            report.acknowledged_at = time.time()
        elif announcement.records:
            await self.retrying(lambda: self.publish(announcement.records), "announce")
        self._announcer.announced(announcement, groups)
        report.seconds = time.perf_counter() - started
        return report

    async def write(
        self,
        writes: Mapping[int, GroupWrite[R]],
        outbox: dict[int, list[OutboxEntry]],
        groups: Mapping[int, GroupState[Decoded[V]]],
    ) -> None:
        """Write each group's batch atomically; put first what an earlier attempt left."""
        committed = await self.retrying(lambda: self.store.commit(writes), "commit")
        for partition, result in committed.items():
            if not result.written and result.found == 0:
                # Versions only grow: a group this stage wrote has no version only when Redis lost
                # it (restarted empty, flushed, failed over to a replica that never had it).
                raise Fatal(
                    f"Redis has lost acknowledged writes: stage {self.stage.name} group "
                    f"{partition} was written at version {writes[partition].meta.version}, and "
                    "Redis now holds nothing of it. Restore Redis (append-only file, replica) or "
                    "reset the consumer groups deliberately; the worker will not compute from "
                    "empty state."
                )
            if not result.written:
                raise MembershipLost(f"another instance wrote {self.stage.name} group {partition}")
            groups[partition].meta = writes[partition].meta
            if result.leftovers:
                earlier = await self.retrying(
                    partial(self.store.leftovers, partition, result.leftovers), "leftovers"
                )
                outbox[partition] = [*earlier, *outbox[partition]]

    async def write_offsets(self) -> None:
        """Write the meta of every group with offsets to commit to Kafka: those that consumed
        records since their last write (watermarks) to record them, the others to prove, through
        the version fence, that Redis still holds the state those offsets stand for (a Redis that
        lost it must never have its offsets committed, even by a stage that wrote nothing since)."""
        groups = dict(self.groups)
        writes: dict[int, GroupWrite[R]] = {
            partition: GroupWrite(group.meta_for_write(group.meta.sequence))
            for partition, group in groups.items()
            if group.meta.offsets
            or {p.topic: o for p, o in group.applied_offsets().items()} != group.meta.offsets
        }
        if writes:
            await self.write(writes, {partition: [] for partition in writes}, groups)

    async def publish_outboxes(
        self,
        outbox: Mapping[int, list[OutboxEntry]],
        report: BatchReport | None = None,
        watermarks: Sequence[Outgoing] = (),
    ) -> None:
        """Publish the entries (then `watermarks`) and wait for the broker's acks, then drop the
        entries from the outboxes."""
        entries = [entry for group_entries in outbox.values() for entry in group_entries]
        records = [*(entry.record for entry in entries), *watermarks]
        await self.retrying(lambda: self.publish(records), "publish")
        if report is not None:
            report.published.update((entry.record.topic, entry.kind) for entry in entries)
        acknowledged = {p: [entry.id for entry in group] for p, group in outbox.items()}
        await self.retrying(lambda: self.store.acknowledge(acknowledged), "acknowledge")

    # --- decoding -----------------------------------------------------------------------------

    def _watermark(self, group: GroupState[Decoded[V]], watermark: Watermark) -> Rejected | None:
        if watermark.groups != self.topology.upstream_groups:
            return (
                f"a watermark from an upstream stage of {watermark.groups} groups; this "
                f"deployment's has {self.topology.upstream_groups}"
            )
        if any(not 0 <= origin < watermark.groups for origin in watermark.origins):
            return f"a watermark naming an origin out of {watermark.groups}"
        for origin, frontier in watermark.origins.items():
            group.merge.watermark(origin, frontier.below, frontier.idle)
        return None

    def _item(
        self,
        group: GroupState[Decoded[V]],
        record: Record,
        partition: Partition,
        decoded: Decoded[V],
        poll: PollView,
    ) -> Item[Decoded[V]] | None:
        routing = decoded.routing
        origin, sequence = None, 0
        if routing is not None:
            if routing.origin >= self.topology.upstream_groups:
                return None
            if routing.sequence < group.next_sequences.get(routing.origin, 0):
                return None  # applied already, or buffered
            group.next_sequences[routing.origin] = routing.sequence + 1
            origin, sequence = routing.origin, routing.sequence
        polled_ms = poll.last_poll_timestamp(_tp(partition)) or 0
        key = (to_us(decoded.time), self._ranks[record.topic], (decoded.tiebreak, record.offset))
        return Item(key, partition, record.offset, polled_ms * 1000, decoded, origin, sequence)

    def _poll_state(
        self, group: GroupState[Decoded[V]], partition: Partition, poll: PollView
    ) -> tuple[bool, int | None]:
        highwater = poll.highwater(_tp(partition))
        polled = poll.last_poll_timestamp(_tp(partition))
        caught_up = highwater is not None and group.next_offsets.get(partition, 0) >= highwater
        return caught_up, None if polled is None else polled * 1000

    def _dead_letter(self, record: Record, error: str) -> OutboxEntry:
        letter = dead_letter(
            self._limits.dead_letter_topic,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            record.headers,
            error,
            self._limits.max_record_bytes,
        )
        source = f"{record.topic}/{record.partition}@{record.offset}"
        return OutboxEntry(output_id(source, DEAD_LETTER, ""), letter, DEAD_LETTER)

    # --- settling -----------------------------------------------------------------------------

    def _settle_group(
        self,
        group: GroupState[Decoded[V]],
        inputs: Mapping[str, list[V]],
        loaded: Mapping[str, R | None],
        dead: list[OutboxEntry],
        report: BatchReport,
        now: datetime,
    ) -> tuple[GroupWrite[R], list[OutboxEntry]]:
        """Every entity of the group through the rules: the group's write and its outbox (`now`:
        when the batch started, for the stage's indexes)."""
        keys = self.store.keys(group.partition)
        until = from_us(max(group.frontier, 0))
        write: GroupWrite[R] = GroupWrite(group.meta)
        entries = list(dead)
        internal: list[tuple[int, Emitted]] = []
        for entity_id, values in inputs.items():
            before = loaded.get(entity_id)
            settled = self.stage.settle(before, entity_id, values, until)
            write.records[entity_id] = settled.record
            if settled.next_due is None:
                write.ops.append(("z", keys.timers, entity_id))
            else:
                due_ms = to_us(settled.next_due) // 1000
                write.ops.append(("Z", keys.timers, due_ms, entity_id))
                floor = group.due_floor_ms
                group.due_floor_ms = due_ms if floor is None else min(floor, due_ms)
            write.ops.extend(
                self.stage.extra_ops(
                    keys.tag, entity_id, before, settled.record, settled.emitted, now
                )
            )
            report.emitted.extend(settled.emitted)
            log_ops_events(settled.emitted)
            for emitted in settled.emitted:
                topic = self.stage.topic_of(emitted)
                if topic == self.stage.downstream_topic:
                    # Ordered no earlier than what this group already announced it had passed.
                    order_time = max(to_us(emitted.emitted_at), group.announced)
                    internal.append((order_time, emitted))
                else:
                    entries.append(self._output(topic, emitted))
        # The next stage reads each origin first in, first out: its outputs in event-time order (as
        # emitted where equal), numbered in that order.
        sequence = group.meta.sequence
        for order_time, emitted in sorted(internal, key=lambda entry: entry[0]):
            routing = Routing(group.partition, sequence, order_time)
            entries.append(self._output(self.stage.downstream_topic or "", emitted, routing))
            sequence += 1
        write.meta = group.meta_for_write(sequence)
        write.ops.extend(("R", keys.outbox, entry.encode()) for entry in entries)
        return write, entries

    def _output(self, topic: str, emitted: Emitted, routing: Routing | None = None) -> OutboxEntry:
        event = emitted.event
        if emitted.stream is Stream.DEAD_LETTER:
            # A parked event that expired: its record as consumed, with what it waited for.
            source = emitted.origin
            assert source is not None  # the rules hand back the origin the stage gave them
            return self._dead_letter(source, emitted.reason or "")
        headers = [CONTENT_TYPE, *(routing.headers() if routing else ())]
        value = event.model_dump_json().encode()
        record = Outgoing(topic, emitted.key.encode(), value, headers)
        return OutboxEntry(event.id, record, event.type)


def _due_until(groups: Mapping[int, GroupState[Any]]) -> dict[int, int]:
    """The groups whose frontier passed their first timer: until when (ms) to look."""
    return {
        partition: group.frontier // 1000
        for partition, group in groups.items()
        if group.due_floor_ms is not None and group.due_floor_ms < group.frontier // 1000
    }


def _tp(partition: Partition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


def reason_class(reason: str) -> DeadLetterReason:
    """The class of a dead letter's reason, for the metric (the reason itself is in the record)."""
    for needle, label in (
        ("tombstone", DeadLetterReason.UNREADABLE),
        ("Invalid JSON", DeadLetterReason.UNREADABLE),
        ("unknown event type", DeadLetterReason.UNKNOWN_TYPE),
        ("does not belong", DeadLetterReason.UNKNOWN_TYPE),
        ("record key", DeadLetterReason.MISROUTED),
        ("belongs on partition", DeadLetterReason.MISROUTED),
        ("clock", DeadLetterReason.OUT_OF_BOUNDS),
        ("before 1970", DeadLetterReason.OUT_OF_BOUNDS),
        ("no time", DeadLetterReason.OUT_OF_BOUNDS),
        ("watermark", DeadLetterReason.BAD_CONTROL),
        ("routing headers", DeadLetterReason.BAD_CONTROL),
    ):
        if needle in reason:
            return label
    return DeadLetterReason.INVALID


def log_ops_events(emitted: Iterable[Emitted]) -> None:
    """A log line for each refused or stale input and each jeopardy raised or cleared, bound to
    the id of the event that caused it."""
    for item in emitted:
        data = item.event.data
        if isinstance(data, CommandRejectedData | UpdateStaleData | JeopardyData):
            fields = data.model_dump(mode="json", exclude={"caused_by", "at"}, exclude_none=True)
            log.info(item.event.type, event_id=data.caused_by, **fields)
