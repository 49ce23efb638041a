"""The flow of one consumed batch, top to bottom.

1. Decode every record into its event; what cannot be read or validated is set aside for the
   dead-letter topic with the reason.
2. Group the events by order, read every order's record (one Redis round trip), apply the rules, and
   write each order's new record together with its outbound events (its outbox) in one atomic step
   per order (one more round trip). An order another writer changed meanwhile is read again.
3. Publish the dead letters and every pending outbox entry, and wait for the broker's acks.
4. Drop the acknowledged entries from the outboxes.
The caller commits the batch's offsets only after `process` returns, so a crash at any step
replays the batch: the rules skip events already applied (by id), and the outbox still holds
whatever was not acknowledged, whose ids are deterministic.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from schemas.inbound import InvalidEvent, OrderEvent, parse_order_event
from schemas.outbound import CommandRejectedData, UpdateStaleData
from worker import rules
from worker.settings import Settings
from worker.store.orders import OrderStore, OutboxEntry, Write

log = structlog.get_logger("worker.pipeline")

CONTENT_TYPE = "application/cloudevents+json"
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
T = TypeVar("T")
Timed = tuple[OrderEvent, datetime]
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
    records: int = 0
    orders: int = 0
    dead_lettered: int = 0
    published: int = 0
    conflicts: int = 0
    emitted: list[rules.Emitted] = field(default_factory=list)


def decode(record: Record) -> OrderEvent | DeadLetter:
    try:
        event = parse_order_event(record.value or b"")
    except InvalidEvent as invalid:
        return DeadLetter(record, str(invalid))
    if record.key is not None and record.key != event.data.order_id.encode():
        return DeadLetter(
            record,
            f"record key {record.key.decode('utf-8', 'backslashreplace')!r} is not the order id "
            f"{event.data.order_id!r}",
        )
    return event


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
    def __init__(self, settings: Settings, store: OrderStore, send: Sender) -> None:
        self._settings = settings
        self._store = store
        self._send = send
        self._topics = {
            rules.Stream.STATUS: settings.topics.order_status,
            rules.Stream.OPS: settings.topics.ops,
            rules.Stream.SERVICE_ACTIONS: settings.topics.service_actions,
            rules.Stream.SERVICE_STATUS: settings.topics.service_status,
        }

    async def process(self, records: Sequence[Record]) -> BatchReport:
        report = BatchReport(records=len(records))
        streams: dict[str, dict[str, list[Timed]]] = {}  # order id -> topic -> events
        dead_letters: list[DeadLetter] = []
        for record in records:
            decoded = decode(record)
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
            by_topic = streams.setdefault(decoded.data.order_id, {})
            by_topic.setdefault(record.topic, []).append((decoded, received_at))
        by_order = {order_id: self._interleave(by_topic) for order_id, by_topic in streams.items()}
        report.orders = len(by_order)
        report.dead_lettered = len(dead_letters)

        pending = await retrying(lambda: self._apply(by_order, report), "apply")
        await retrying(lambda: self._publish(dead_letters, pending), "publish")
        await retrying(lambda: self._store.acknowledge(pending), "acknowledge")
        report.published = sum(len(entries) for entries in pending.values())
        return report

    def _interleave(self, by_topic: dict[str, list[Timed]]) -> list[Timed]:
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

    async def _apply(
        self, by_order: dict[str, list[Timed]], report: BatchReport
    ) -> dict[str, list[OutboxEntry]]:
        pending: dict[str, list[OutboxEntry]] = {}
        remaining = by_order
        while remaining:
            loaded = await self._store.load(remaining)
            writes: dict[str, Write] = {}
            for order_id, events in remaining.items():
                outcome = rules.apply(
                    loaded[order_id].record,
                    order_id,
                    events,
                    default_profile=self._settings.default_profile,
                )
                _log_refusals(outcome.emitted)
                report.emitted.extend(outcome.emitted)
                writes[order_id] = Write(
                    loaded[order_id],
                    outcome.record,
                    [
                        OutboxEntry(
                            emitted.event.id,
                            emitted.stream,
                            emitted.key,
                            emitted.event.model_dump_json(),
                        )
                        for emitted in outcome.emitted
                    ],
                )
            committed = await self._store.commit(writes)
            pending.update(committed.pending)
            report.conflicts += len(committed.conflicts)
            remaining = {order_id: by_order[order_id] for order_id in committed.conflicts}
        return pending

    async def _publish(
        self, dead_letters: Sequence[DeadLetter], pending: dict[str, list[OutboxEntry]]
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
        for entries in pending.values():
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


def _log_refusals(emitted: Sequence[rules.Emitted]) -> None:
    for item in emitted:
        data = item.event.data
        if isinstance(data, CommandRejectedData):
            log.info(
                "refused",
                event_id=data.caused_by,
                order_id=data.order_id,
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
