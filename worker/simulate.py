"""The reference model: CloudEvents run through the same rules as the worker, with no broker and
no Redis. Integration tests compare the worker's Redis snapshots and outputs against this.

Events are applied in file order, which is the order the worker applies them in when the file is
in event-time order (the worker merges its topics by event time). Service actions the order rules
emit go through the service rules in the order they were emitted, as on the internal topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.inbound import InvalidEvent, parse_order_event
from schemas.internal import ServiceAction, ServiceEvent, parse_service_event
from schemas.outbound import ServiceAttributesChangedData, ServiceFulfillmentChangedData
from worker import rules
from worker.rules import service as service_rules

# Events without a `time` are stamped with this instead of a clock, so a simulation is repeatable.
UNTIMED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Simulation:
    emitted: list[dict[str, Any]] = field(default_factory=list)
    records: dict[str, rules.OrderRecord] = field(default_factory=dict)
    services: dict[str, service_rules.ServiceRecord] = field(default_factory=dict)
    activity: dict[str, service_rules.ActivityRecord] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def simulate(lines: Iterable[str | bytes], default_profile: rules.Profile) -> Simulation:
    """Apply one CloudEvent per line, in order; blank lines are skipped, invalid ones reported.
    Order events and billing's non-pay events may be mixed in one file."""
    result = Simulation()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_order_event(line)
        except InvalidEvent as invalid:
            try:
                _apply_service(result, parse_service_event(line))
            except InvalidEvent:
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
        for emitted in outcome.emitted:
            result.emitted.append(emitted.event.model_dump(mode="json"))
            if isinstance(emitted.event, ServiceAction):
                _apply_service(result, emitted.event)
    return result


def _apply_service(result: Simulation, event: ServiceEvent) -> None:
    service_id = event.data.service_id
    outcome = service_rules.apply_service(
        result.services.get(service_id), service_id, [(event, event.time or UNTIMED)]
    )
    result.services[service_id] = outcome.record
    for emitted in outcome.emitted:
        result.emitted.append(emitted.event.model_dump(mode="json"))
        if isinstance(
            emitted.event.data, ServiceFulfillmentChangedData | ServiceAttributesChangedData
        ):
            _apply_activity(result, emitted.event.data)


def _apply_activity(
    result: Simulation, changed: ServiceFulfillmentChangedData | ServiceAttributesChangedData
) -> None:
    for kind, owner_id, activity in service_rules.activity_inputs(changed):
        key = f"{kind}:{owner_id}"
        record, emitted = service_rules.apply_activity(
            result.activity.get(key), kind, owner_id, [activity]
        )
        result.activity[key] = record
        result.emitted.extend(item.event.model_dump(mode="json") for item in emitted)
