"""What the rules hand back: the events to publish, each with its stream, key and the moment the
rules produced it, and the deterministic ids those events carry."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from schemas import inbound as ev
from schemas import outbound as out
from schemas.envelope import Envelope
from schemas.internal import ActivityInput, ServiceAction
from worker.rules.inputs import Origin, event_key
from worker.rules.snapshot import OrderRecord

_OUTPUT_NAMESPACE: Final = uuid.UUID("6f1c1d1e-5a0b-4c8e-9a35-0d1b7e3c2a10")
# SHA-1 fed the namespace once; each id hashes a copy of it fed its name (uuid5's hash).
_OUTPUT_HASH: Final = hashlib.sha1(_OUTPUT_NAMESPACE.bytes, usedforsecurity=False)
# The variant digit for each hex digit: RFC 4122 sets its two high bits to 10.
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 0b11] for digit in "0123456789abcdef"}


class Stream(StrEnum):
    """Which topic an emitted event belongs on; the shell maps these to topic names."""

    STATUS = "status"
    OPS = "ops"
    SERVICE_ACTIONS = "service_actions"  # internal: the order stage to the service stage
    SERVICE_STATUS = "service_status"
    ACTIVITY_INPUTS = "activity_inputs"  # internal: the services stage to the activity stage
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Emitted:
    stream: Stream
    key: str
    event: (
        out.StatusEvent
        | out.OpsEvent
        | out.ServiceStatusEvent
        | ServiceAction
        | ActivityInput
        | ev.OrderEvent
    )
    emitted_at: datetime
    """The event time at which the rules produced it: the time of the input that caused it, or the
    due time of the timer that fired. The next stage orders its inputs by this."""
    reason: str | None = None  # why, for a dead letter
    origin: Origin | None = None  # a dead letter's record as consumed, to publish it unchanged


@dataclass(slots=True)
class Outcome:
    record: OrderRecord
    emitted: list[Emitted] = field(default_factory=list)
    creations: list[ev.OrderEvent] = field(default_factory=list)
    """Creations whose source version waits until the events parked for them have been applied."""


def output_id(cause: str, kind: str, subject: str) -> str:
    """Deterministic: the same input always yields the same output id (replays are recognisable).

    The id is `str(uuid.uuid5(namespace, f"{cause}|{kind}|{subject}"))`, byte for byte, made
    without the two UUID objects uuid5 builds (one id per output, so on the hot path): the first
    16 bytes of the SHA-1 of namespace and name, with version 5 and the RFC 4122 variant set.
    """
    sha1 = _OUTPUT_HASH.copy()
    sha1.update(f"{cause}|{kind}|{subject}".encode())
    digest = sha1.hexdigest()
    variant = _VARIANT[digest[16]]
    # 32 hex digits as 8-4-4-4-12; the 13th is the version, the 17th carries the variant.
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


@dataclass(frozen=True, slots=True)
class Cause:
    """What an output answers, an input or a timer: the key every output id derives from (an
    input's identity, see `inputs.event_key`), the id outputs name in `caused_by`, what it asked
    for (an event type), its event time (the payload's `at`) and the moment the rules acted on it
    (`emitted_at`: later for a parked event, applied when its parent arrives)."""

    key: str
    caused_by: str
    command: str
    at: datetime
    emitted_at: datetime

    @classmethod
    def of(cls, event: Envelope, at: datetime, emitted_at: datetime) -> Cause:
        return cls(event_key(event), event.id, event.type, at, emitted_at)

    def id_for(self, kind: str, subject: str) -> str:
        return output_id(self.key, kind, subject)


def rejected(
    cause: Cause, reason: str, *, subject: str, order_id: str | None, service_id: str | None = None
) -> Emitted:
    """`command.rejected` on the ops stream about `subject` (an order or a service), keyed by the
    order id where there is one (operations follow orders), else by the subject."""
    event = out.CommandRejected(
        id=cause.id_for("command.rejected", subject),
        subject=subject,
        time=cause.at,
        data=out.CommandRejectedData(
            order_id=order_id,
            service_id=service_id,
            command=cause.command,
            reason=reason,
            caused_by=cause.caused_by,
            at=cause.at,
        ),
    )
    return Emitted(Stream.OPS, order_id or subject, event, cause.emitted_at)
