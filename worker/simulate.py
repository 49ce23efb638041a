"""The reference model: CloudEvents run through the same rules as the worker, with no broker and
no Redis. Integration tests compare the worker's Redis snapshots against this."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.inbound import InvalidEvent, parse_order_event
from worker import rules

# Events without a `time` are stamped with this instead of a clock, so a simulation is repeatable.
UNTIMED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Simulation:
    emitted: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, rules.OrderRecord] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def simulate(lines: Iterable[str | bytes], default_profile: rules.Profile) -> Simulation:
    """Apply one CloudEvent per line, in order; blank lines are skipped, invalid ones reported."""
    result = Simulation()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_order_event(line)
        except InvalidEvent as invalid:
            result.invalid.append((number, str(invalid)))
            continue
        order_id = event.data.order_id
        outcome = rules.apply(
            result.records.get(order_id),
            order_id,
            [(event, event.time or UNTIMED)],
            default_profile=default_profile,
        )
        result.records[order_id] = outcome.record
        result.emitted.extend(emitted.event.model_dump(mode="json") for emitted in outcome.emitted)
    return result
