"""The services stage: what line items did to services (the internal service-actions topic, from
the orders stage) and billing's non-pay events, state per service (`worker.rules.service`). Each
service change that starts or stops a service counting for an account, product or location goes
on to the activity stage, keyed by that owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.inbound import InvalidEvent, NonPayEvent, inbound_event, validate
from schemas.internal import ActivityInput, ActivityInputData, ServiceAction, parse_service_event
from schemas.outbound import ServiceAttributesChangedData, ServiceFulfillmentChangedData
from worker import rules
from worker.engine.control import Watermark
from worker.engine.records import Record
from worker.observe.metrics import Stage
from worker.rules import Emitted, Stream, output_id
from worker.rules import service as service_rules
from worker.rules.service import ServiceRecord
from worker.settings import Settings
from worker.stages.base import (
    Bounds,
    Decoded,
    Received,
    Rejected,
    Settled,
    ordered_at,
    parse_external,
    parse_internal,
    policy,
)
from worker.store import codecs
from worker.store.groups import Op

STAGE: Stage = "services"
ServiceInput = Received[ServiceAction | NonPayEvent]


def _parse_non_pay(raw: bytes) -> NonPayEvent:
    event = validate(inbound_event, raw)
    if not isinstance(event, NonPayEvent):
        raise InvalidEvent(f"{event.type} does not belong on the billing topic")
    return event


def _parse_action(raw: bytes) -> ServiceAction:
    event = parse_service_event(raw)
    if not isinstance(event, ServiceAction):
        raise InvalidEvent(f"{event.type} is not a service action")
    return event


def _key(event: NonPayEvent) -> str:
    return event.data.service_id


def _any(_: NonPayEvent) -> Rejected | None:
    return None


@dataclass
class ServicesStage:
    settings: Settings
    name: Stage = STAGE

    def __post_init__(self) -> None:
        topics = self.settings.topics
        self.external_topics = (topics.billing,)
        self.internal_topic: str | None = topics.service_actions
        self.downstream_topic: str | None = topics.activity_inputs
        self._bounds = Bounds(timedelta(seconds=self.settings.clock_skew_s))
        self._policy = policy(self.settings)
        self._topics = {
            Stream.SERVICE_STATUS: topics.service_status,
            Stream.OPS: topics.ops,
            Stream.ACTIVITY_INPUTS: topics.activity_inputs,
        }

    codec = codecs.SERVICES

    def decode(
        self, record: Record, partitions: int, now: datetime
    ) -> Decoded[ServiceInput] | Watermark | Rejected:
        if record.topic == self.internal_topic:
            internal = parse_internal(record, _parse_action)
            if isinstance(internal, Watermark | Rejected):
                return internal
            action, routing = internal
            at = ordered_at(routing)
            value: ServiceInput = Received(action, at, record)
            broker_time = record.timestamp / 1000
            return Decoded(value, action.data.service_id, at, broker_time, action.id, routing)
        received = parse_external(record, partitions, now, self._bounds, _parse_non_pay, _key, _any)
        if isinstance(received, Rejected):
            return received
        event = received.event
        received_value: ServiceInput = Received(event, received.received_at, record)
        moment = event.time or received.received_at
        return Decoded(received_value, event.data.service_id, moment, record.timestamp / 1000)

    def settle(
        self,
        record: ServiceRecord | None,
        entity_id: str,
        inputs: list[ServiceInput],
        until: datetime,
    ) -> Settled[ServiceRecord]:
        policy = self._policy
        applied = service_rules.apply_service(
            record,
            entity_id,
            [rules.Input(item.event, item.received_at) for item in inputs],
            policy,
        )
        advanced = service_rules.advance_service(applied.record, until, policy)
        emitted = [*applied.emitted, *advanced.emitted]
        next_due = service_rules.next_service_due(advanced.record, policy)
        return Settled(advanced.record, [*emitted, *activity_inputs(emitted)], next_due)

    def topic_of(self, emitted: Emitted) -> str:
        return self._topics[emitted.stream]

    def extra_ops(
        self,
        keys_tag: str,
        entity_id: str,
        before: ServiceRecord | None,
        after: ServiceRecord,
        emitted: Sequence[Emitted],
        written_at: datetime,
    ) -> list[Op]:
        return []


def activity_inputs(emitted: list[Emitted]) -> list[Emitted]:
    """For each service change that starts or stops a service counting for an account, product
    or location, an input to the activity stage, keyed by `<kind>:<owner id>`."""
    inputs: list[Emitted] = []
    for item in emitted:
        data = item.event.data
        if not isinstance(data, ServiceFulfillmentChangedData | ServiceAttributesChangedData):
            continue
        for kind, owner_id, activity in service_rules.activity_inputs(data):
            subject = f"{kind}:{owner_id}"
            change = "active" if activity.active else "inactive"
            event = ActivityInput(
                id=output_id(item.event.id, f"activity.input.{change}", subject),
                subject=subject,
                time=activity.at,
                data=ActivityInputData(
                    kind=kind,
                    owner_id=owner_id,
                    service_id=activity.service_id,
                    active=activity.active,
                    caused_by=activity.cause,
                    at=activity.at,
                ),
            )
            inputs.append(Emitted(Stream.ACTIVITY_INPUTS, subject, event, item.emitted_at))
    return inputs
