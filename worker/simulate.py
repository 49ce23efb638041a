"""The reference model: the worker's stages without Kafka and Redis, every input once, in event-time
order. Tests compare the worker's state and outputs against it; `order-status simulate` runs it
over a file of CloudEvents.

It runs the worker's own code on each input: each line becomes the record the worker would
consume (on the topic its type belongs on, keyed and partitioned as the contract says), decoded by
the stage and settled by the stage's rules. The stages run one after the other, as their data flows
(orders, then services, then activity): each stage's items are applied in the order the worker's
merge releases them, `(event time, source rank, tiebreak)`, an upstream group's outputs first in,
first out, and each entity's timers fire in event time, before its later inputs and, at the end, up
to `until`. Outputs to the next stage go through the records (headers and JSON) the worker
publishes on its internal topics. `partitions` is the topics' partition count: which upstream group
an output comes from decides its place among outputs of other groups at the very same time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from schemas.inbound import InvalidEvent, NonPayEvent, inbound_event, validate
from worker.engine.control import Routing
from worker.engine.merge import SortKey
from worker.engine.partitioning import partition_for
from worker.engine.records import CONTENT_TYPE, Header
from worker.engine.timebase import EPOCH, to_us
from worker.settings import Settings
from worker.stages.activity import ActivityStage
from worker.stages.base import Decoded, Stage, ranks
from worker.stages.orders import OrdersStage
from worker.stages.services import ServicesStage

Queued = tuple[SortKey, Decoded[Any]]


@dataclass(frozen=True, slots=True)
class SimulatedRecord:
    """A record as the worker would consume it (`worker.engine.records.Record`)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = ()


@dataclass
class Simulation:
    emitted: list[dict[str, Any]] = field(default_factory=list)
    """Every output as published (a parked event's dead letter as its event), stage by stage."""
    records: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    activity: dict[str, Any] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def simulate(
    lines: Iterable[str | bytes],
    settings: Settings | None = None,
    *,
    until: datetime | None = None,
    now: datetime | None = None,
    partitions: int = 4,
) -> Simulation:
    """Apply one CloudEvent per line (blank lines skipped, invalid ones reported with their line
    number and reason), then every timer due before `until` (default: none after the inputs).
    `now` is the clock the worker checks event times against (default: this machine's)."""
    settings = settings or Settings()
    now = now or datetime.now(UTC)
    result = Simulation()
    chain: list[Stage[Any, Any]] = [
        OrdersStage(settings),
        ServicesStage(settings),
        ActivityStage(settings),
    ]
    queued: list[list[list[Queued]]] = [[[]], [[]], [[]]]
    """Per stage, its input queues: external items first, then each upstream group's outputs."""
    for number, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        try:
            event = validate(inbound_event, raw)
        except InvalidEvent as invalid:
            result.invalid.append((number, str(invalid)))
            continue
        billing = isinstance(event, NonPayEvent)
        stage = chain[1] if billing else chain[0]
        key = event.data.service_id if isinstance(event, NonPayEvent) else event.data.order_id
        topic = settings.topics.for_event(event.type)
        # As if each event reached the broker at its own time (untimed ones: at the epoch).
        timestamp = to_us(event.time) // 1000 if event.time else 0
        record = SimulatedRecord(topic, 0, number, timestamp, key.encode(), raw)
        decoded = stage.decode(record, 1, now)
        if not isinstance(decoded, Decoded):
            result.invalid.append((number, str(decoded)))
            continue
        sort_key = (to_us(decoded.time), ranks(stage)[topic], (decoded.tiebreak, number))
        queued[1 if billing else 0][0].append((sort_key, decoded))
    stores = [result.records, result.services, result.activity]
    for index, stage in enumerate(chain):
        following = chain[index + 1] if index + 1 < len(chain) else None
        # External items in merge order; each upstream group's in event-time order, as emitted
        # where equal (the worker sorts a group's outputs of a batch so).
        queues = [
            sorted(queued[index][0], key=_key),
            *(sorted(queue, key=lambda item: item[0][0]) for queue in queued[index][1:]),
        ]
        ordered = heapq.merge(*queues, key=_key)
        forwarded = _run(stage, following, ordered, stores[index], until, partitions, result)
        if following is not None:
            queued[index + 1].extend(forwarded)
    return result


def _key(queued: Queued) -> SortKey:
    return queued[0]


def _run(
    stage: Stage[Any, Any],
    following: Stage[Any, Any] | None,
    items: Iterable[Queued],
    records: dict[str, BaseModel],
    until: datetime | None,
    partitions: int,
    result: Simulation,
) -> list[list[Queued]]:
    """One stage over its items in the merge's order; what it forwards to the next stage, per
    group of this stage (each first in, first out)."""
    forwarded: list[list[Queued]] = [[] for _ in range(partitions)]

    def settle(entity_id: str, values: list[Any], moment: datetime) -> None:
        settled = stage.settle(records.get(entity_id), entity_id, values, moment)
        records[entity_id] = settled.record
        for emitted in settled.emitted:
            event = emitted.event
            result.emitted.append(event.model_dump(mode="json"))
            if following is None or stage.topic_of(emitted) != stage.downstream_topic:
                continue
            time_us = to_us(emitted.emitted_at)
            record = SimulatedRecord(
                following.internal_topic or "",
                0,
                0,
                0,
                emitted.key.encode(),
                event.model_dump_json().encode(),
                [CONTENT_TYPE, *Routing(0, 0, time_us).headers()],
            )
            decoded = following.decode(record, 1, datetime.now(UTC))
            assert isinstance(decoded, Decoded), decoded
            rank = ranks(following)[record.topic]
            origin = forwarded[partition_for(entity_id.encode(), partitions)]
            origin.append(((time_us, rank, (decoded.tiebreak, 0)), decoded))

    for _, decoded in items:
        settle(decoded.entity, [decoded.value], decoded.time)
    for entity_id in list(records):
        settle(entity_id, [], until or EPOCH)
    return forwarded
