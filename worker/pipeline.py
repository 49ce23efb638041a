"""The flow of one consumed batch, top to bottom, for each of the worker's two stages.

Order stage (`process_orders`, the three fulfillment topics):
1. Decode every record into its event; what cannot be read or validated is set aside for the
   dead-letter topic with the reason.
2. Group the events by order (merging an order's topics by event time) and settle them: read every
   order's record (one Redis round trip), apply the rules, and write each new record together with
   its outbound events, its outbox, in one atomic step per order (one more round trip).
3. Publish the dead letters and every pending outbox entry, and wait for the broker's acks.
4. Drop the acknowledged entries from the outboxes.

Service stage (`process_services`: the internal service-actions topic and billing's topic) does the
same per service, then settles the accounts, products and locations whose activity the service
changes flipped, and schedules each service's term end for the expiry scheduler.

The caller commits the batch's offsets only after a `process_*` returns, so a crash at any step
replays the batch: the rules skip events already applied (by id), and the outboxes still hold
whatever was not acknowledged, with deterministic ids.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaError
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.inbound import InvalidEvent, OrderEvent, parse_order_event
from schemas.internal import ServiceEvent, parse_service_event
from schemas.outbound import CommandRejectedData, ServiceFulfillmentChangedData, UpdateStaleData
from worker import rules
from worker.rules import service as service_rules
from worker.settings import Settings
from worker.store.expiry import ExpirySchedule
from worker.store.snapshots import OutboxEntry, SnapshotStore, Stores, Write

log = structlog.get_logger("worker.pipeline")

CONTENT_TYPE = "application/cloudevents+json"
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R", bound=BaseModel)
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


class Sender(Protocol):
    """Sends one record; the returned future resolves when the broker has acknowledged it."""

    def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[asyncio.Future[Any]]: ...


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


class Pipeline:
    def __init__(self, settings: Settings, stores: Stores, send: Sender) -> None:
        self._settings = settings
        self._stores = stores
        self._send = send
        self._expiry = ExpirySchedule(stores.redis)
        self._topics = {
            rules.Stream.STATUS: settings.topics.order_status,
            rules.Stream.OPS: settings.topics.ops,
            rules.Stream.SERVICE_ACTIONS: settings.topics.service_actions,
            rules.Stream.SERVICE_STATUS: settings.topics.service_status,
        }

    async def process_orders(self, records: Sequence[Record]) -> BatchReport:
        report = BatchReport("orders", records=len(records))
        by_order, dead_letters = self._decode(records, parse_order_event, _order_key, report)
        merged = {order_id: self._interleave(by_topic) for order_id, by_topic in by_order.items()}

        def apply(
            record: rules.OrderRecord | None, order_id: str, events: list[Timed[OrderEvent]]
        ) -> tuple[rules.OrderRecord, list[rules.Emitted]]:
            outcome = rules.apply(
                record, order_id, events, default_profile=self._settings.default_profile
            )
            return outcome.record, outcome.emitted

        orders = await retrying(
            lambda: self._settle(self._stores.orders, merged, apply, report), "settle orders"
        )
        await retrying(lambda: self._publish(dead_letters, [orders.pending]), "publish")
        await retrying(lambda: self._stores.orders.acknowledge(orders.pending), "acknowledge")
        report.published = _count(orders.pending)
        return report

    async def process_services(self, records: Sequence[Record]) -> BatchReport:
        report = BatchReport("services", records=len(records))
        by_service, dead_letters = self._decode(records, parse_service_event, _service_key, report)
        # One service's events come from two topics; each keeps its order.
        flat = {
            sid: [e for events in topics.values() for e in events]
            for sid, topics in by_service.items()
        }

        def apply(
            record: service_rules.ServiceRecord | None,
            service_id: str,
            events: list[Timed[ServiceEvent]],
        ) -> tuple[service_rules.ServiceRecord, list[rules.Emitted]]:
            outcome = service_rules.apply_service(record, service_id, events)
            return outcome.record, outcome.emitted

        services = await retrying(
            lambda: self._settle(self._stores.services, flat, apply, report), "settle services"
        )
        activity = await retrying(
            lambda: self._settle(
                self._stores.activity, _activity_inputs(services.pending), _apply_activity, report
            ),
            "settle activity",
        )
        await retrying(lambda: self._expiry.schedule(services.records.values()), "schedule")
        await retrying(
            lambda: self._publish(dead_letters, [services.pending, activity.pending]), "publish"
        )
        await retrying(lambda: self._stores.services.acknowledge(services.pending), "acknowledge")
        await retrying(lambda: self._stores.activity.acknowledge(activity.pending), "acknowledge")
        report.published = _count(services.pending) + _count(activity.pending)
        return report

    def _decode(
        self,
        records: Sequence[Record],
        parse: Callable[[bytes], E],
        key_of: Callable[[E], str],
        report: BatchReport,
    ) -> tuple[dict[str, dict[str, list[Timed[E]]]], list[DeadLetter]]:
        """Events by key and by topic, in consumed order, and the dead letters."""
        by_key: dict[str, dict[str, list[Timed[E]]]] = {}
        dead_letters: list[DeadLetter] = []
        for record in records:
            decoded = decode(record, parse, key_of)
            if isinstance(decoded, DeadLetter):
                log.warning(
                    "dead-lettered",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=decoded.error,
                )
                dead_letters.append(decoded)
                continue
            received_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            topics = by_key.setdefault(key_of(decoded), {})
            topics.setdefault(record.topic, []).append((decoded, received_at))
        report.entities += len(by_key)
        report.dead_lettered = len(dead_letters)
        return by_key, dead_letters

    def _interleave(self, by_topic: dict[str, list[Timed[OrderEvent]]]) -> list[Timed[OrderEvent]]:
        """One order's events from several topics, merged by event time; each topic keeps its own
        order, and at equal times the parent's topic goes first (order, work order, task). Topics
        are not ordered against each other, so this is the best order a batch can know."""
        if len(by_topic) == 1:
            return next(iter(by_topic.values()))
        rank = {topic: index for index, topic in enumerate(self._settings.topics.inbound)}
        merged = heapq.merge(
            *(
                [
                    (event.time or received_at, rank.get(topic, 0), (event, received_at))
                    for event, received_at in events
                ]
                for topic, events in by_topic.items()
            ),
            key=lambda item: item[:2],
        )
        return [timed for _, _, timed in merged]

    async def _settle(
        self,
        store: SnapshotStore[R],
        inputs: Mapping[str, list[T]],
        apply: Callable[[R | None, str, list[T]], tuple[R, list[rules.Emitted]]],
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
                writes[entity_id] = Write(
                    loaded[entity_id],
                    record,
                    [
                        OutboxEntry(
                            item.event.id, item.stream, item.key, item.event.model_dump_json()
                        )
                        for item in emitted
                    ],
                )
            committed = await store.commit(writes)
            settled.pending.update(committed.pending)
            report.conflicts += len(committed.conflicts)
            remaining = {entity_id: inputs[entity_id] for entity_id in committed.conflicts}
        return settled

    async def _publish(
        self,
        dead_letters: Sequence[DeadLetter],
        pending: Iterable[Mapping[str, list[OutboxEntry]]],
    ) -> None:
        acks: list[asyncio.Future[Any]] = []
        for dead in dead_letters:
            acks.append(
                await self._send(
                    self._settings.topics.dead_letter,
                    dead.record.key,
                    dead.record.value or b"",
                    dead.headers(),
                )
            )
        for outboxes in pending:
            for entries in outboxes.values():
                for entry in entries:
                    acks.append(
                        await self._send(
                            self._topics[rules.Stream(entry.stream)],
                            entry.key.encode(),
                            entry.payload.encode(),
                            {"content-type": CONTENT_TYPE},
                        )
                    )
        await asyncio.gather(*acks)


def _count(pending: Mapping[str, list[OutboxEntry]]) -> int:
    return sum(len(entries) for entries in pending.values())


def _activity_inputs(
    pending_services: Mapping[str, list[OutboxEntry]],
) -> dict[str, list[service_rules.ServiceActivity]]:
    """Activity changes implied by the service changes still pending publication: derived from the
    outbox, not from this batch's events, so a replay after a crash derives them again."""
    by_owner: dict[str, list[service_rules.ServiceActivity]] = {}
    for entries in pending_services.values():
        for entry in entries:
            body = json.loads(entry.payload)
            if body["type"] != "service.fulfillment.changed":
                continue
            changed = ServiceFulfillmentChangedData.model_validate(body["data"])
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
    for item in emitted:
        data = item.event.data
        if isinstance(data, CommandRejectedData):
            log.info(
                "refused",
                event_id=data.caused_by,
                order_id=data.order_id,
                service_id=data.service_id,
                command=data.command,
                reason=data.reason,
            )
        elif isinstance(data, UpdateStaleData):
            log.info(
                "stale update ignored",
                event_id=data.caused_by,
                order_id=data.order_id,
                entity=data.entity,
                id=data.id,
                sequence=data.sequence,
                applied_sequence=data.applied_sequence,
            )
