"""What the shell hands the rules: each inbound event with when and where it was consumed, and the
policy every decision depends on. An event is identified by its source and id together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import Envelope
from schemas.outbound import JeopardyLevel
from worker.rules.states import Profile

E = TypeVar("E", bound=Envelope)

LONGEST: Final = timedelta(days=36525)
"""The longest duration a policy may set: a century (see `schemas.envelope.LATEST`)."""


LEVELS: Final[tuple[JeopardyLevel, ...]] = get_args(JeopardyLevel)

Limits = Mapping[JeopardyLevel, timedelta | None]
"""A limit per level; None: that level is never judged by it."""


@dataclass(frozen=True, slots=True)
class JeopardyLimits:
    """One profile's jeopardy thresholds per level (DOMAIN.md "Jeopardy")."""

    stalled: Limits
    """How long an entity may go without a state change of its own or of anything under it."""
    fallout_open: Limits
    """How long a fallout on a task under an entity (its own, for a task) may stay open."""

    def __post_init__(self) -> None:
        for name, limits in (("stalled", self.stalled), ("fallout_open", self.fallout_open)):
            if set(limits) != set(LEVELS):
                raise ValueError(f"{name} needs a limit for each of {', '.join(LEVELS)}")
            if any(
                not timedelta(0) < limit <= LONGEST
                for limit in limits.values()
                if limit is not None
            ):
                raise ValueError(f"{name} limits must lie between 0 and {LONGEST.days} days")


_HOUR: Final = timedelta(hours=1)
DEFAULT_JEOPARDY: Final = JeopardyLimits(
    stalled={
        "task": 48 * _HOUR,
        "work_order": 72 * _HOUR,
        "line_item": 120 * _HOUR,
        "order": 168 * _HOUR,
    },
    fallout_open={
        "task": 4 * _HOUR,
        "work_order": 8 * _HOUR,
        "line_item": 24 * _HOUR,
        "order": 24 * _HOUR,
    },
)
"""The thresholds of every profile unless configured (`worker.settings` documents them)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Every setting a decision depends on (the worker builds it from its settings)."""

    default_profile: Profile = Profile.STANDARD
    park_timeout: timedelta = timedelta(seconds=600)
    """How long after its event time a parked event waits for its order or parent."""
    jeopardy: Mapping[Profile, JeopardyLimits] = field(
        default_factory=lambda: dict.fromkeys(Profile, DEFAULT_JEOPARDY)
    )
    """Each profile's jeopardy thresholds."""

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.park_timeout <= LONGEST:
            raise ValueError(f"park_timeout must lie between 0 and {LONGEST.days} days")
        if set(self.jeopardy) != set(Profile):
            raise ValueError("jeopardy needs the thresholds of every profile")


class Origin(BaseModel):
    """The consumed record an event came from, kept with a parked event so that its dead letter is
    published byte for byte as consumed, with its source coordinates. Bytes are base64 in JSON."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    topic: str
    partition: int
    offset: int
    timestamp: int = Field(description="The record's timestamp, milliseconds since the epoch.")
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = Field(
        default=[], description="Every header in the record's order, repeated names included."
    )


@dataclass(frozen=True, slots=True)
class Input(Generic[E]):
    """One inbound event for an order (or a service)."""

    event: E
    received_at: datetime
    """The record's broker timestamp: the event's moment when it has no `time`."""
    origin: Origin | None = None

    @property
    def moment(self) -> datetime:
        """When the event happened: its `time`, else when it was received."""
        return self.event.time or self.received_at


def event_key(event: Envelope) -> str:
    """The event's identity, its source and id (CloudEvents 1.0): the deduplication key and the
    cause every output id derives from. A source is a URI-reference, which has no space, so the
    space keeps the two apart."""
    return f"{event.source} {event.id}"
