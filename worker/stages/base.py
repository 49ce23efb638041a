"""What the engine needs of a stage, and the decoding every stage shares.

A stage is one consumer group: the orders stage (the three fulfillment topics, state per order),
the services stage (the internal service-actions topic and billing's topic, state per service) and
the activity stage (the internal activity-inputs topic, state per account, product and location).
The engine (`worker.pipeline`, `worker.engine`) runs each the same way; a stage says how to read its
records, which entity each concerns, and how the rules settle an entity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel

from schemas.inbound import InvalidEvent
from worker.engine.control import Routing, Watermark, read_control, read_routing
from worker.engine.partitioning import partition_for
from worker.engine.records import Record
from worker.engine.timebase import from_ms, from_us, out_of_bounds, to_us
from worker.observe.metrics import Stage as StageName
from worker.rules import Emitted, Origin, Policy
from worker.rules.snapshot import Trusted
from worker.settings import Settings
from worker.store.codecs import Codec
from worker.store.groups import Op

LATEST_US = to_us(datetime(9999, 1, 1, tzinfo=UTC))

V = TypeVar("V")
R = TypeVar("R", bound=BaseModel)
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Received(Generic[E]):
    """A valid event with the record it came in (kept so a dead letter is the record as consumed)
    and the record's broker timestamp (the event's time when it has none of its own)."""

    event: E
    received_at: datetime
    record: Record


@dataclass(frozen=True, slots=True)
class Decoded(Generic[V]):
    """A record the stage can apply: its value, the entity it concerns, the event time it is
    ordered by and a tiebreak among equal times (internal topics: the output id)."""

    value: V
    entity: str
    time: datetime
    broker_time: float  # the record's broker timestamp, in seconds (for the delay metric)
    tiebreak: str = ""
    routing: Routing | None = None


Rejected = str
"""Why a record is a dead letter."""


@dataclass(slots=True)
class Settled(Generic[R]):
    """An entity after its inputs and its timers up to the group's frontier: the new record,
    what to publish, and when its next timer falls due."""

    record: R
    emitted: list[Emitted]
    next_due: datetime | None


class Stage(Protocol[V, R]):
    @property
    def name(self) -> StageName: ...

    @property
    def external_topics(self) -> Sequence[str]:
        """Upstream systems' topics, by rank: at equal event times the lower rank goes first."""
        ...

    @property
    def internal_topic(self) -> str | None:
        """The topic an upstream stage writes to this one (None: none)."""
        ...

    @property
    def downstream_topic(self) -> str | None:
        """The internal topic this stage writes to the next one (None: none)."""
        ...

    @property
    def codec(self) -> Codec[R]: ...

    def decode(
        self, record: Record, partitions: int, now: datetime
    ) -> Decoded[V] | Watermark | Rejected: ...

    def settle(
        self, record: R | None, entity_id: str, inputs: list[V], until: datetime
    ) -> Settled[R]: ...

    def topic_of(self, emitted: Emitted) -> str: ...

    def extra_ops(
        self,
        keys_tag: str,
        entity_id: str,
        before: R | None,
        after: R,
        emitted: Sequence[Emitted],
        written_at: datetime,
    ) -> list[Op]:
        """Writes of the stage's own (indexes) in the same atomic step as the entity's record,
        under the group's hash tag: what `after` and the events it emitted change, at the wall
        clock's `written_at`."""
        ...


@dataclass(frozen=True, slots=True)
class Bounds:
    """Limits on what a record may claim (DOMAIN.md: values outside sane bounds are refused)."""

    clock_skew: timedelta


def parse_external(
    record: Record,
    partitions: int,
    now: datetime,
    bounds: Bounds,
    parse: Callable[[bytes], E],
    key_of: Callable[[E], str],
    allowed: Callable[[E], Rejected | None],
) -> Received[E] | Rejected:
    """An upstream system's record as an event, or why it is a dead letter: no value, not a valid
    CloudEvent of a type this topic carries, keyed or partitioned against the contract, or a time
    no clock could have given."""
    if record.value is None:
        return "a record with no value (a tombstone) carries no CloudEvent"
    try:
        event = parse(record.value)
    except InvalidEvent as invalid:
        return str(invalid)
    refusal = allowed(event)
    if refusal is not None:
        return refusal
    key = key_of(event).encode()
    if record.key is not None and record.key != key:
        shown = record.key.decode("utf-8", "backslashreplace")
        return f"record key {shown!r} is not the event's key {key_of(event)!r}"
    expected = partition_for(key, partitions)
    if record.partition != expected:
        return (
            f"the record is on partition {record.partition}, but its key {key_of(event)!r} "
            f"belongs on partition {expected} of {partitions} (the Java client's murmur2 "
            "partitioner: the contract's co-partitioning needs it)"
        )
    received_at = from_ms(record.timestamp)
    time: datetime | None = getattr(event, "time", None)
    moment = time or received_at
    if moment is None:
        return f"the event has no time and the record's timestamp {record.timestamp} is no time"
    too_far = out_of_bounds(moment, now, bounds.clock_skew)
    if too_far is not None:
        return too_far
    return Received(event, received_at or moment, record)


def parse_internal(
    record: Record, parse: Callable[[bytes], E]
) -> tuple[E, Routing] | Watermark | Rejected:
    """A record of an internal topic: a watermark, or an output of the upstream stage with its
    routing headers. Anything else there is a dead letter too (the topic is writable by others)."""
    try:
        watermark = read_control(record.headers, record.value)
    except (ValueError, KeyError, TypeError) as error:
        return f"an invalid watermark record: {error!r}"
    if watermark is not None:
        return watermark
    routing = read_routing(record.headers)
    if routing is None or routing.time_us > LATEST_US:
        return "a record on an internal topic without the worker's routing headers"
    if record.value is None:
        return "a record with no value (a tombstone) carries no CloudEvent"
    try:
        return parse(record.value), routing
    except InvalidEvent as invalid:
        return str(invalid)


def ordered_at(routing: Routing) -> datetime:
    return from_us(routing.time_us)


def policy(settings: Settings) -> Policy:
    """What the rules' decisions depend on, from the settings."""
    return Policy(
        default_profile=settings.default_profile,
        park_timeout=timedelta(seconds=settings.park_timeout_s),
        jeopardy=settings.jeopardy.limits(),
    )


def origin(record: Record) -> Origin:
    """The consumed record, as the rules keep it with a parked event (for its dead letter)."""
    return _ORIGIN(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
            "key": record.key,
            "value": record.value,
            "headers": list(record.headers),
        }
    )


# One per input, and `model_construct` costs several times as much.
_ORIGIN: Final = Trusted(Origin)


def ranks(stage: Stage[Any, Any]) -> dict[str, int]:
    """Each input topic's rank: external topics in their order, then the internal topic."""
    internal = [stage.internal_topic] if stage.internal_topic else []
    return {topic: rank for rank, topic in enumerate([*stage.external_topics, *internal])}
