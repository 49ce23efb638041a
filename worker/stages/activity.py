"""The activity stage: which accounts, products and locations are active (seed 004: while they
have at least one active service), state per owner (`worker.rules.service.apply_activity`). Its
input is the internal activity-inputs topic, keyed by `<kind>:<owner id>`, so every change of one
owner is applied by one instance, in event-time order across the services stage's groups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.internal import ActivityInput, parse_activity_input
from worker.engine.control import Watermark
from worker.engine.records import Record
from worker.observe.metrics import Stage
from worker.rules import Emitted, Stream
from worker.rules.service import ActivityRecord, ServiceActivity, apply_activity
from worker.settings import Settings
from worker.stages.base import Decoded, Rejected, Settled, ordered_at, parse_internal
from worker.store import codecs
from worker.store.groups import Op

STAGE: Stage = "activity"


@dataclass
class ActivityStage:
    settings: Settings
    name: Stage = STAGE

    def __post_init__(self) -> None:
        topics = self.settings.topics
        self.external_topics: tuple[str, ...] = ()
        self.internal_topic: str | None = topics.activity_inputs
        self.downstream_topic: str | None = None
        self._topic = topics.service_status

    codec = codecs.ACTIVITY

    def decode(
        self, record: Record, partitions: int, now: datetime
    ) -> Decoded[ActivityInput] | Watermark | Rejected:
        internal = parse_internal(record, parse_activity_input)
        if isinstance(internal, Watermark | Rejected):
            return internal
        event, routing = internal
        data = event.data
        owner = f"{data.kind}:{data.owner_id}"
        broker_time = record.timestamp / 1000
        return Decoded(event, owner, ordered_at(routing), broker_time, event.id, routing)

    def settle(
        self,
        record: ActivityRecord | None,
        entity_id: str,
        inputs: list[ActivityInput],
        until: datetime,
    ) -> Settled[ActivityRecord]:
        kind = inputs[0].data.kind if inputs else record.kind if record else "account"
        owner_id = entity_id.split(":", 1)[1]
        changes = [
            ServiceActivity(e.data.service_id, e.data.active, e.data.caused_by, e.data.at)
            for e in inputs
        ]
        updated, emitted = apply_activity(record, kind, owner_id, changes)
        return Settled(updated, emitted, None)

    def topic_of(self, emitted: Emitted) -> str:
        assert emitted.stream is Stream.SERVICE_STATUS
        return self._topic

    def extra_ops(
        self,
        keys_tag: str,
        entity_id: str,
        before: ActivityRecord | None,
        after: ActivityRecord,
        emitted: Sequence[Emitted],
        written_at: datetime,
    ) -> list[Op]:
        return []
