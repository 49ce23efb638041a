"""The orders stage: the three fulfillment topics, state per order (`worker.rules`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.inbound import OrderEvent, parse_order_event
from worker import rules
from worker.engine.records import Record
from worker.observe.metrics import Stage
from worker.rules import Emitted, OrderRecord, Stream
from worker.settings import Settings
from worker.stages.base import (
    Bounds,
    Decoded,
    Received,
    Rejected,
    Settled,
    origin,
    parse_external,
    policy,
)
from worker.store import codecs
from worker.store.groups import Op
from worker.store.plan import plan_ops

STAGE: Stage = "orders"

# Which event types each fulfillment topic carries (CONTRACT.md): anything else is dead-lettered.
_FAMILIES = {"orders": "order.", "work_orders": "workorder.", "tasks": "task."}


def _key(event: OrderEvent) -> str:
    return event.data.order_id


@dataclass
class OrdersStage:
    settings: Settings
    name: Stage = STAGE

    def __post_init__(self) -> None:
        topics = self.settings.topics
        self.external_topics = topics.inbound
        self.internal_topic: str | None = None
        self.downstream_topic: str | None = topics.service_actions
        self._families = {getattr(topics, name): family for name, family in _FAMILIES.items()}
        self._bounds = Bounds(timedelta(seconds=self.settings.clock_skew_s))
        self._policy = policy(self.settings)
        self._topics = {
            Stream.STATUS: topics.order_status,
            Stream.OPS: topics.ops,
            Stream.SERVICE_ACTIONS: topics.service_actions,
            Stream.DEAD_LETTER: topics.dead_letter,
        }

    codec = codecs.ORDERS

    def decode(
        self, record: Record, partitions: int, now: datetime
    ) -> Decoded[Received[OrderEvent]] | Rejected:
        family = self._families[record.topic]

        def allowed(event: OrderEvent) -> Rejected | None:
            if event.type.startswith(family):
                return None
            return f"{event.type} does not belong on {record.topic}: it carries {family}* events"

        received = parse_external(
            record, partitions, now, self._bounds, parse_order_event, _key, allowed
        )
        if isinstance(received, Rejected):
            return received
        event = received.event
        moment = event.time or received.received_at
        return Decoded(received, event.data.order_id, moment, record.timestamp / 1000)

    def settle(
        self,
        record: OrderRecord | None,
        entity_id: str,
        inputs: list[Received[OrderEvent]],
        until: datetime,
    ) -> Settled[OrderRecord]:
        policy = self._policy
        applied = rules.apply(
            record,
            entity_id,
            [rules.Input(item.event, item.received_at, origin(item.record)) for item in inputs],
            policy,
        )
        advanced = rules.advance(applied.record, until, policy)
        next_due = rules.next_due(advanced.record, policy)
        return Settled(advanced.record, [*applied.emitted, *advanced.emitted], next_due)

    def topic_of(self, emitted: Emitted) -> str:
        return self._topics[emitted.stream]

    def extra_ops(
        self,
        keys_tag: str,
        entity_id: str,
        before: OrderRecord | None,
        after: OrderRecord,
        emitted: Sequence[Emitted],
        written_at: datetime,
    ) -> list[Op]:
        timeline_events = self.settings.web.timeline_events
        return plan_ops(keys_tag, entity_id, before, after, emitted, written_at, timeline_events)
