"""The flow of one consumed batch, top to bottom, for each of the worker's two stages.

Order stage (`process_orders`, the three fulfillment topics):
1. Decode every record into its event; what cannot be read or validated becomes a dead letter
   with the reason.
2. Buffer, and release what can be applied now in event-time order across the co-partitioned
   topics (`worker.merge`): the order of an order's events no longer depends on fetch timing.
3. Settle the released events per order: read every order's record (one Redis round trip), apply
   the rules, and write each new record together with its outbound events, its outbox, in one
   atomic step per order (one more round trip). An event the rules cannot process at all (a bug)
   is isolated and dead-lettered; the rest of its order is applied.
4. Publish the dead letters and every pending outbox entry; wait for the broker's acks.
5. Drop the acknowledged entries from the outboxes.
6. Commit offsets up to the first record not yet applied.

Service stage (`process_services`: the internal service-actions topic and billing's topic) does the
same per service, then settles the accounts, products and locations whose activity the service
changes flipped, and schedules each service's term end for the expiry scheduler.

A crash at any step replays from the committed offsets: the rules skip events already applied (by
id), and the outboxes still hold whatever was not acknowledged, with deterministic ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.inbound import InvalidEvent, OrderEvent, parse_order_event
from schemas.internal import ServiceEvent, parse_service_event
from schemas.outbound import (
    CommandRejectedData,
    ServiceAttributesChangedData,
    ServiceFulfillmentChangedData,
    UpdateStaleData,
)
from worker import rules
from worker.merge import Buffered, CoPartitionMerge, Partition
from worker.publish import Outgoing, Publish
from worker.rules import service as service_rules
from worker.settings import Settings
from worker.store.schedule import Schedule, parked_due, parked_key, term_ends, term_ends_key
from worker.store.snapshots import OutboxEntry, SnapshotStore, Stores, Write

log = structlog.get_logger("worker.pipeline")

CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_HEADERS = {"content-type": CONTENT_TYPE}
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R", bound=BaseModel)
X = TypeVar("X")
Timed = tuple[E, datetime]
"""An event with the moment its record reached the broker (used where the event has no time)."""


class Record(Protocol):
    """What the pipeline reads of a consumed Kafka record (aiokafka's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class Consumer(Protocol):
    """What the pipeline needs of its Kafka consumer (aiokafka's AIOKafkaConsumer)."""

    def assignment(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def paused(self) -> set[TopicPartition]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_poll_timestamp(self, partition: TopicPartition) -> int | None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


@dataclass(frozen=True, slots=True)
class Inbound(Generic[E]):
    """A decoded event with its record (for dead-lettering) and arrival time (for events without
    a time of their own)."""

    event: E
    received_at: datetime
    record: Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    error: str

    def headers(self) -> dict[str, str]:
        original = {
            name: raw.decode("utf-8", "backslashreplace") for name, raw in self.record.headers
        }
        return {
            **original,
            "dlq-error": self.error,
            "dlq-source-topic": self.record.topic,
            "dlq-source-partition": str(self.record.partition),
            "dlq-source-offset": str(self.record.offset),
        }


@dataclass(slots=True)
class BatchReport:
    stage: str
    records: int = 0
    entities: int = 0
    dead_lettered: int = 0
    published: int = 0
    conflicts: int = 0
    emitted: list[rules.Emitted] = field(default_factory=list)

    def count(self, event_type: str) -> int:
        """How many emitted events of a type: `command.rejected`, `update.stale`, ..."""
        return sum(1 for item in self.emitted if item.event.type == event_type)


@dataclass(slots=True)
class Settled(Generic[R]):
    """What settling a batch left: every entity's new record and its pending outbox entries."""

    records: dict[str, R] = field(default_factory=dict)
    pending: dict[str, list[OutboxEntry]] = field(default_factory=dict)


def decode(
    record: Record, parse: Callable[[bytes], E], key_of: Callable[[E], str]
) -> E | DeadLetter:
    """The record's event, or why it is a dead letter (unreadable, invalid, or keyed wrongly)."""
    try:
        event = parse(record.value or b"")
    except InvalidEvent as invalid:
        return DeadLetter(record, str(invalid))
    if record.key is not None and record.key != key_of(event).encode():
        key = record.key.decode("utf-8", "backslashreplace")
        return DeadLetter(record, f"record key {key!r} is not the event's key {key_of(event)!r}")
    return event


def _order_key(event: OrderEvent) -> str:
    return event.data.order_id


def _service_key(event: ServiceEvent) -> str:
    return event.data.service_id


async def retrying(step: Callable[[], Awaitable[T]], what: str) -> T:
    """Retry a step through transient faults (Redis or the broker unreachable) with backoff,
    forever: nothing is dead-lettered or committed for a fault that is not the input's."""
    delay = 0.1
    while True:
        try:
            return await step()
        except TRANSIENT_ERRORS as fault:
            log.warning("transient fault, retrying", step=what, error=repr(fault), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class Stage(Generic[E]):
    """One consumer's input: its topics (merged by event time), how to read and key its events."""

    def __init__(
        self,
        topics: Sequence[str],
        parse: Callable[[bytes], E],
        key_of: Callable[[E], str],
        buffer_limit: int,
    ) -> None:
        self.topics = topics
        self.merge: CoPartitionMerge[Inbound[E] | DeadLetter] = CoPartitionMerge(topics)
        self.buffer_limit = buffer_limit  # records buffered per partition before it is paused
        self.late = 0  # records that arrived after later ones of their partition were applied
        self._parse = parse
        self._key_of = key_of

    async def release(
        self, records: Sequence[Record], consumer: Consumer
    ) -> tuple[dict[str, list[Inbound[E]]], list[DeadLetter]]:
        """Decode and buffer the fetched records; answer what can be applied now, by key in
        event-time order, and the dead letters."""
        buffered = []
        for record in records:
            decoded = decode(record, self._parse, self._key_of)
            received_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            item: Inbound[E] | DeadLetter
            if isinstance(decoded, DeadLetter):
                log.warning(
                    "dead-lettered",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=decoded.error,
                )
                item, moment = decoded, received_at
            else:
                item = Inbound(decoded, received_at, record)
                moment = getattr(decoded, "time", None) or received_at
            buffered.append(
                Buffered(Partition(record.topic, record.partition), record.offset, moment, item)
            )
        self.merge.add(buffered)
        # Redeliveries are late by nature; anything else late was applied out of event-time order.
        for late in self.merge.late:
            log.debug(
                "event arrived after later events of its partition were applied",
                topic=late.partition.topic,
                partition=late.partition.partition,
                offset=late.offset,
                time=late.time.isoformat(),
            )
        self.late += len(self.merge.late)
        self.merge.late.clear()
        assigned = [Partition(tp.topic, tp.partition) for tp in consumer.assignment()]
        # Partitions lost in a rebalance: their next owner reads them from the committed offsets.
        self.merge.forget(self.merge.partitions() - set(assigned))
        caught_up = await self._caught_up(consumer, assigned)
        by_key: dict[str, list[Inbound[E]]] = {}
        dead_letters: list[DeadLetter] = []
        for released in self.merge.release(assigned, caught_up):
            if isinstance(released.item, DeadLetter):
                dead_letters.append(released.item)
            else:
                by_key.setdefault(self._key_of(released.item.event), []).append(released.item)
        self._pause_full(consumer, assigned)
        return by_key, dead_letters

    async def _caught_up(self, consumer: Consumer, assigned: list[Partition]) -> list[Partition]:
        """The partitions with nothing more on the broker: everything up to their high-water mark
        fetched, that mark read by the newest fetch. A mark read before another partition's
        records were fetched says nothing of what reached the broker in between (a fetch response
        can leave a partition out), and the merge must not release those records past it: such
        a partition is asked for its end offset, in one round trip for all of them, and only where
        something is buffered to release."""
        polled = {p: consumer.last_poll_timestamp(TopicPartition(*p)) for p in assigned}
        newest = max((stamp for stamp in polled.values() if stamp is not None), default=0)
        waiting = {p.partition for p in assigned if self.merge.buffered(p)}
        caught_up: list[Partition] = []
        stale: dict[TopicPartition, int] = {}
        for p in assigned:
            tp = TopicPartition(*p)
            highwater, position = consumer.highwater(tp), await consumer.position(tp)
            if highwater is None or position < highwater:
                continue
            if (polled[p] or 0) >= newest:
                caught_up.append(p)
            elif p.partition in waiting:
                stale[tp] = position
        if stale:
            ends = await retrying(lambda: consumer.end_offsets(list(stale)), "end offsets")
            caught_up += [Partition(*tp) for tp, position in stale.items() if ends[tp] <= position]
        return caught_up

    def _pause_full(self, consumer: Consumer, assigned: Iterable[Partition]) -> None:
        """Stop fetching partitions with a full buffer (they wait for a co-partition of another
        topic), so the next fetches bring the lagging topic's records instead, as Kafka Streams
        does. Without it a backlog is buffered whole before anything can be released: the
        consumer returns the prefetched records partition by partition."""
        full: list[TopicPartition] = []
        room: list[TopicPartition] = []
        for p in assigned:
            tp = TopicPartition(p.topic, p.partition)
            (full if self.merge.buffered(p) >= self.buffer_limit else room).append(tp)
        consumer.pause(*full)
        consumer.resume(*(tp for tp in room if tp in consumer.paused()))

    async def commit(self, consumer: Consumer) -> None:
        """Commit every owned partition up to its first record not yet applied."""
        owned = consumer.assignment()
        positions = {Partition(tp.topic, tp.partition): await consumer.position(tp) for tp in owned}
        offsets = self.merge.commit_offsets(positions)
        await consumer.commit(
            {TopicPartition(p.topic, p.partition): offset for p, offset in offsets.items()}
        )


class Pipeline:
    def __init__(self, settings: Settings, stores: Stores, publish: Publish) -> None:
        self._settings = settings
        self._stores = stores
        self._publish_records = publish
        self.term_ends = Schedule(stores.redis, term_ends_key(settings.group_id))
        self.parked = Schedule(stores.redis, parked_key(settings.group_id))
        self._park_timeout = timedelta(seconds=settings.park_timeout_s)
        topics = settings.topics
        limit = settings.batch_max_records
        self.orders: Stage[OrderEvent] = Stage(topics.inbound, parse_order_event, _order_key, limit)
        self.services: Stage[ServiceEvent] = Stage(
            (topics.service_actions, topics.billing), parse_service_event, _service_key, limit
        )
        self._topics = {
            rules.Stream.STATUS: topics.order_status,
            rules.Stream.OPS: topics.ops,
            rules.Stream.SERVICE_ACTIONS: topics.service_actions,
            rules.Stream.SERVICE_STATUS: topics.service_status,
            rules.Stream.DEAD_LETTER: topics.dead_letter,
        }

    async def process_orders(self, records: Sequence[Record], consumer: Consumer) -> BatchReport:
        report = BatchReport("orders", records=len(records))
        by_order, dead_letters = await self.orders.release(records, consumer)

        poisoned: list[DeadLetter] = []

        def apply_rules(
            record: rules.OrderRecord | None, order_id: str, events: list[Timed[OrderEvent]]
        ) -> tuple[rules.OrderRecord, list[rules.Emitted]]:
            outcome = rules.apply(
                record, order_id, events, default_profile=self._settings.default_profile
            )
            return outcome.record, outcome.emitted

        def apply(
            record: rules.OrderRecord | None, order_id: str, items: list[Inbound[OrderEvent]]
        ) -> tuple[rules.OrderRecord, list[rules.Emitted]]:
            return _apply_isolating(apply_rules, record, order_id, items, poisoned)

        orders = await retrying(
            lambda: self._settle(self._stores.orders, by_order, apply, report), "settle orders"
        )
        dead_letters += poisoned
        # The parked schedule only says when to look again (a replay recomputes it): it need not
        # wait for the broker, nor the broker for it.
        await asyncio.gather(
            retrying(lambda: self._schedule_parked(orders.records.values()), "schedule"),
            retrying(lambda: self._publish(dead_letters, [orders.pending]), "publish"),
        )
        # Both only need the outputs acknowledged by the broker; one is Redis, the other Kafka.
        await asyncio.gather(
            retrying(lambda: self._stores.orders.acknowledge(orders.pending), "acknowledge"),
            retrying(lambda: self.orders.commit(consumer), "commit offsets"),
        )
        report.dead_lettered = len(dead_letters)
        report.published = _count(orders.pending)
        return report

    async def process_services(self, records: Sequence[Record], consumer: Consumer) -> BatchReport:
        report = BatchReport("services", records=len(records))
        by_service, dead_letters = await self.services.release(records, consumer)

        poisoned: list[DeadLetter] = []

        def apply_rules(
            record: service_rules.ServiceRecord | None,
            service_id: str,
            events: list[Timed[ServiceEvent]],
        ) -> tuple[service_rules.ServiceRecord, list[rules.Emitted]]:
            outcome = service_rules.apply_service(record, service_id, events)
            return outcome.record, outcome.emitted

        def apply(
            record: service_rules.ServiceRecord | None,
            service_id: str,
            items: list[Inbound[ServiceEvent]],
        ) -> tuple[service_rules.ServiceRecord, list[rules.Emitted]]:
            return _apply_isolating(apply_rules, record, service_id, items, poisoned)

        services = await retrying(
            lambda: self._settle(self._stores.services, by_service, apply, report),
            "settle services",
        )
        changes = _activity_changes(services.pending)
        activity = await retrying(
            lambda: self._settle(self._stores.activity, changes, _apply_activity, report),
            "settle activity",
        )
        dead_letters += poisoned
        await asyncio.gather(
            retrying(
                lambda: self.term_ends.set(term_ends(services.records.values()), keep_leases=True),
                "schedule",
            ),
            retrying(
                lambda: self._publish(dead_letters, [services.pending, activity.pending]),
                "publish",
            ),
        )
        await asyncio.gather(
            retrying(lambda: self._stores.services.acknowledge(services.pending), "acknowledge"),
            retrying(lambda: self._stores.activity.acknowledge(activity.pending), "acknowledge"),
            retrying(lambda: self.services.commit(consumer), "commit offsets"),
        )
        report.dead_lettered = len(dead_letters)
        report.published = _count(services.pending) + _count(activity.pending)
        return report

    async def expire_parked(self, now: datetime) -> int:
        """Dead-letter the events parked longer than the park timeout (their parent never came);
        run by the housekeeping timer. How many orders were swept."""
        claimed = await self.parked.claim(now, timedelta(seconds=60))
        older_than = now - self._park_timeout

        def expire(
            record: rules.OrderRecord | None, order_id: str, _: list[None]
        ) -> tuple[rules.OrderRecord, list[rules.Emitted]]:
            outcome = rules.expire_parked(
                record or rules.OrderRecord(order_id=order_id), older_than
            )
            return outcome.record, outcome.emitted

        report = BatchReport("parked")
        swept = await self._settle(
            self._stores.orders, {order_id: [None] for order_id in claimed}, expire, report
        )
        await self._schedule_parked(swept.records.values())
        await self._publish([], [swept.pending])
        await self._stores.orders.acknowledge(swept.pending)
        for emitted in report.emitted:
            log.warning(
                "parked event expired, dead-lettered",
                order_id=emitted.key,
                event_id=emitted.event.id,
                reason=emitted.reason,
            )
        return len(claimed)

    async def _schedule_parked(self, records: Iterable[rules.OrderRecord]) -> None:
        due, clear = parked_due(records, self._park_timeout)
        await self.parked.set(due, keep_leases=False)
        await self.parked.remove(clear)

    async def _settle(
        self,
        store: SnapshotStore[R],
        inputs: Mapping[str, list[X]],
        apply: Callable[[R | None, str, list[X]], tuple[R, list[rules.Emitted]]],
        report: BatchReport,
    ) -> Settled[R]:
        """Read, apply, write with the outbox; entities another writer changed meanwhile are read
        again and recomputed (their records' versions moved)."""
        settled: Settled[R] = Settled()
        remaining = inputs
        while remaining:
            loaded = await store.load(remaining)
            writes: dict[str, Write[R]] = {}
            for entity_id, items in remaining.items():
                record, emitted = apply(loaded[entity_id].record, entity_id, items)
                _log_refusals(emitted)
                report.emitted.extend(emitted)
                settled.records[entity_id] = record
                outbox = [_outbox_entry(item) for item in emitted]
                writes[entity_id] = Write(loaded[entity_id], record, outbox)
            committed = await store.commit(writes)
            settled.pending.update(committed.pending)
            report.entities += len(committed.pending)
            report.conflicts += len(committed.conflicts)
            remaining = {entity_id: inputs[entity_id] for entity_id in committed.conflicts}
        return settled

    async def _publish(
        self,
        dead_letters: Sequence[DeadLetter],
        pending: Iterable[Mapping[str, list[OutboxEntry]]],
    ) -> None:
        records = [
            Outgoing(
                self._settings.topics.dead_letter,
                dead.record.key,
                dead.record.value or b"",
                dead.headers(),
            )
            for dead in dead_letters
        ]
        for outboxes in pending:
            for entries in outboxes.values():
                records.extend(
                    Outgoing(
                        self._topics[rules.Stream(entry.stream)],
                        entry.key.encode(),
                        entry.payload.encode(),
                        entry.headers or DEFAULT_HEADERS,
                    )
                    for entry in entries
                )
        await self._publish_records(records)


def _apply_isolating(
    apply: Callable[[R | None, str, list[Timed[E]]], tuple[R, list[rules.Emitted]]],
    record: R | None,
    entity_id: str,
    items: list[Inbound[E]],
    poisoned: list[DeadLetter],
) -> tuple[R, list[rules.Emitted]]:
    """Apply an entity's events; if that fails (a bug, never bad input: the rules refuse bad
    input), apply them one by one and dead-letter each one that fails, so a poison record never
    blocks the records behind it."""
    try:
        return apply(record, entity_id, [(item.event, item.received_at) for item in items])
    except Exception:
        log.exception("applying a batch failed; isolating the failing event", key=entity_id)
    emitted: list[rules.Emitted] = []
    current = record
    for item in items:
        try:
            current, more = apply(current, entity_id, [(item.event, item.received_at)])
        except Exception as error:
            poisoned.append(DeadLetter(item.record, f"internal error: {error!r}"))
            continue
        emitted.extend(more)
    if current is None:  # every event failed: nothing to write, the record stays as it was
        current, more = apply(None, entity_id, [])
    return current, emitted


def _outbox_entry(emitted: rules.Emitted) -> OutboxEntry:
    headers = None
    if emitted.reason is not None:
        headers = {"content-type": CONTENT_TYPE, "dlq-error": emitted.reason}
    return OutboxEntry(
        emitted.event.id, emitted.stream, emitted.key, emitted.event.model_dump_json(), headers
    )


def _count(pending: Mapping[str, list[OutboxEntry]]) -> int:
    return sum(len(entries) for entries in pending.values())


_SERVICE_CHANGES: dict[
    str, type[ServiceFulfillmentChangedData] | type[ServiceAttributesChangedData]
] = {
    "service.fulfillment.changed": ServiceFulfillmentChangedData,
    "service.attributes.changed": ServiceAttributesChangedData,
}
"""The service events that can move an account's, product's or location's activity."""


def _activity_changes(
    pending_services: Mapping[str, list[OutboxEntry]],
) -> dict[str, list[service_rules.ServiceActivity]]:
    """Activity changes implied by the service changes still pending publication: derived from the
    outbox, not from this batch's events, so a replay after a crash derives them again."""
    by_owner: dict[str, list[service_rules.ServiceActivity]] = {}
    for entries in pending_services.values():
        for entry in entries:
            body = json.loads(entry.payload)
            model = _SERVICE_CHANGES.get(body["type"])
            if model is None:
                continue
            changed = model.model_validate(body["data"])
            for kind, owner_id, activity in service_rules.activity_inputs(changed):
                by_owner.setdefault(f"{kind}:{owner_id}", []).append(activity)
    return by_owner


def _apply_activity(
    record: service_rules.ActivityRecord | None,
    key: str,
    changes: list[service_rules.ServiceActivity],
) -> tuple[service_rules.ActivityRecord, list[rules.Emitted]]:
    kind, owner_id = key.split(":", 1)
    return service_rules.apply_activity(record, kind, owner_id, changes)  # type: ignore[arg-type]


def _log_refusals(emitted: Sequence[rules.Emitted]) -> None:
    """A log line for each refused or stale input, bound to its event id and order id."""
    if not log.is_enabled_for(logging.INFO):
        return
    for item in emitted:
        data = item.event.data
        if isinstance(data, (CommandRejectedData, UpdateStaleData)):
            fields = data.model_dump(mode="json", exclude={"caused_by", "at"}, exclude_none=True)
            log.info(item.event.type, event_id=data.caused_by, **fields)
