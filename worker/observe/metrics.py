"""The worker's Prometheus instruments, in a registry of its own (several workers may run in one
process: tests, the benchmark). The engine calls the typed methods below; `/metrics` serves the
registry (`worker.observe.server`).

Label values are bounded sets: stages, topics, event types of the contract, dead-letter reason
classes, retry steps, error kinds; never an id.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

Stage = Literal["orders", "services", "activity"]
"""The worker's consumption stages, each its own consumer group."""

PREFIX = "order_status"

# From a cache-warm batch of a few records (milliseconds) to a Redis or broker outage retried.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# End to end: tens of milliseconds when keeping up; minutes to hours while a backlog drains.
DELAY_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    *(30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0),
)


class DeadLetterReason(enum.StrEnum):
    """Why a record went to the dead-letter topic, by class (the exact error is in `dlq-error`)."""

    UNREADABLE = "unreadable"
    """Not a JSON CloudEvent: bad bytes, bad JSON, a tombstone, an undecodable header."""
    INVALID = "invalid"
    """A CloudEvent that does not validate: missing or malformed attribute or data field."""
    UNKNOWN_TYPE = "unknown_type"
    """An event type this topic does not carry (another topic's, or none of the contract's)."""
    OUT_OF_BOUNDS = "out_of_bounds"
    """`time` too far in the future or before 1970, no time at all."""
    MISROUTED = "misrouted"
    """Keyed or partitioned against the contract (its key is not the event's; not the
    partition murmur2 gives its key)."""
    BAD_CONTROL = "bad_control"
    """A record on an internal topic without the worker's routing headers, or a bad watermark."""
    PARK_EXPIRED = "park_expired"
    """Waited for its order or parent longer than ORDER_STATUS_PARK_TIMEOUT_S."""


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over every label, for the periodic progress line."""

    events_applied: float
    dead_letters: float
    refusals: float
    lag: float


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Process memory, CPU, open files, GC: the worker's resource alerts need them too.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Info(f"{PREFIX}_build", "The running worker's version.", registry=r).info(
            {"version": version("order-status-worker")}
        )

        self.records_consumed = self._counter(
            "records_consumed",
            "Records fetched from the broker, by stage and topic (valid or not).",
            "stage",
            "topic",
        )
        self.events_applied = self._counter(
            "events_applied",
            "Valid events applied by the rules and committed, by stage (duplicates skipped by "
            "id not counted).",
            "stage",
        )
        self.outputs_published = self._counter(
            "outputs_published",
            "Outbound records acknowledged by the broker, by topic and event type.",
            "topic",
            "type",
        )
        self.dead_letters = self._counter(
            "dead_letters",
            "Records sent to the dead-letter topic, by reason class.",
            "reason",
        )
        self.refusals = self._counter(
            "refusals",
            "Commands and updates refused by the rules (command.rejected on the ops topic), by "
            "stage and refused event type.",
            "stage",
            "type",
        )
        self.stale_updates = self._counter(
            "stale_updates",
            "Updates ignored because their sequence is lower than the applied one "
            "(update.stale on the ops topic), by entity.",
            "entity",
        )
        self.cas_conflicts = self._counter(
            "cas_conflicts",
            "Snapshot writes refused by the compare-and-set (another writer or a stale cached "
            "record) and retried, by stage.",
            "stage",
        )
        self.retries = self._counter(
            "retries",
            "Transient failures retried with backoff (Redis or broker), by batch step.",
            "step",
        )
        self.batch_duration = self._histogram(
            "batch_duration_seconds",
            "Time to process one batch, from fetch to commit, retries included, by stage.",
            BATCH_BUCKETS,
        )
        self.event_delay = self._histogram(
            "event_delay_seconds",
            "From an input's event time to the broker's acknowledgement of its outputs, by stage.",
            DELAY_BUCKETS,
        )
        self.broker_delay = self._histogram(
            "broker_delay_seconds",
            "From an input record's broker timestamp to the acknowledgement of its outputs, by "
            "stage: the worker's own share of the delay.",
            DELAY_BUCKETS,
        )
        self.consumer_lag = self._gauge(
            "consumer_lag_records",
            "Records on the broker not yet consumed and committed, per assigned partition.",
            "group",
            "topic",
            "partition",
        )
        self.timers_pending = self._gauge(
            "timers_pending",
            "Entities with a timer pending (orders: parked events' expiry, jeopardy; services: "
            "term ends), by stage, in the groups this instance owns.",
            "stage",
        )
        self.outbox_backlog = self._gauge(
            "outbox_backlog_entries",
            "Outbound events written to outboxes in Redis and not yet acknowledged, by stage.",
            "stage",
        )
        self.snapshot_cache = self._counter(
            "snapshot_cache_lookups",
            "Snapshot lookups answered from memory (hit) or read from Redis (miss), by record "
            "kind.",
            "kind",
            "result",
        )
        self.late_arrivals = self._counter(
            "late_arrivals",
            "Events fetched after later events of their co-partitions were already applied "
            "(applied out of event-time order), by stage.",
            "stage",
        )
        self.timers_fired = self._counter(
            "timers_fired",
            "Entities whose timers fired (parked events expired, terms ended, jeopardy judged) "
            "because the stage's event time passed them, by stage.",
            "stage",
        )
        self.jeopardy_raised = self._counter(
            "jeopardy_raised",
            "jeopardy.raised events published, by entity level and reason.",
            "entity",
            "reason",
        )
        self.jeopardy_cleared = self._counter(
            "jeopardy_cleared",
            "jeopardy.cleared events published, by entity level and reason.",
            "entity",
            "reason",
        )
        self.watermark_delay = self._gauge(
            "watermark_delay_seconds",
            "How far the stage's event-time frontier (the latest event time it released) is "
            "behind the wall clock, by stage.",
            "stage",
        )
        self.held_back = self._gauge(
            "records_held_back",
            "Records fetched but held in the merge buffer until their co-partitions catch up, by "
            "stage.",
            "stage",
        )
        self.fatal_errors = self._counter(
            "fatal_errors",
            "Errors that stopped the worker without committing, by kind (exception class).",
            "kind",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def _histogram(self, name: str, documentation: str, buckets: Sequence[float]) -> Histogram:
        """By stage."""
        return Histogram(
            f"{PREFIX}_{name}", documentation, ["stage"], buckets=buckets, registry=self.registry
        )

    # --- per batch ----------------------------------------------------------------------------

    def consumed(self, stage: Stage, topic: str, records: int) -> None:
        self.records_consumed.labels(stage, topic).inc(records)

    def applied(self, stage: Stage, events: int) -> None:
        self.events_applied.labels(stage).inc(events)

    def published(self, topic: str, event_type: str, records: int = 1) -> None:
        self.outputs_published.labels(topic, event_type).inc(records)

    def dead_lettered(self, reason: DeadLetterReason, records: int = 1) -> None:
        self.dead_letters.labels(reason.value).inc(records)

    def refused(self, stage: Stage, event_type: str, events: int = 1) -> None:
        self.refusals.labels(stage, event_type).inc(events)

    def stale(self, entity: str, updates: int = 1) -> None:
        self.stale_updates.labels(entity).inc(updates)

    def conflicts(self, stage: Stage, writes: int) -> None:
        self.cas_conflicts.labels(stage).inc(writes)

    def retried(self, step: str) -> None:
        self.retries.labels(step).inc()

    def batch(self, stage: Stage, seconds: float) -> None:
        self.batch_duration.labels(stage).observe(seconds)

    def delivered(
        self,
        stage: Stage,
        acknowledged_at: float,
        event_times: Iterable[float],
        broker_timestamps: Iterable[float],
    ) -> None:
        """The delays of a batch's inputs once their outputs are acknowledged (all in seconds
        since the epoch; a Kafka record timestamp is in milliseconds: divide it)."""
        from_event = self.event_delay.labels(stage)
        for moment in event_times:
            from_event.observe(max(0.0, acknowledged_at - moment))
        from_broker = self.broker_delay.labels(stage)
        for moment in broker_timestamps:
            from_broker.observe(max(0.0, acknowledged_at - moment))

    def cache_lookups(self, kind: str, hits: int, misses: int) -> None:
        self.snapshot_cache.labels(kind, "hit").inc(hits)
        self.snapshot_cache.labels(kind, "miss").inc(misses)

    def late(self, stage: Stage, events: int) -> None:
        self.late_arrivals.labels(stage).inc(events)

    def merge_state(self, stage: Stage, held_back: int, watermark_delay_s: float) -> None:
        """After each release from the merge buffer."""
        self.held_back.labels(stage).set(held_back)
        self.watermark_delay.labels(stage).set(watermark_delay_s)

    def outbox(self, stage: Stage, entries: int) -> None:
        self.outbox_backlog.labels(stage).set(entries)

    # --- consumer group -----------------------------------------------------------------------

    def lag(self, group: str, topic: str, partition: int, records: int) -> None:
        self.consumer_lag.labels(group, topic, str(partition)).set(records)

    def revoked(self, group: str, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag of partitions this instance no longer owns (their new owner reports it)."""
        for topic, partition in partitions:
            try:
                self.consumer_lag.remove(group, topic, str(partition))
            except KeyError:
                continue  # never reported: nothing to drop

    # --- timers -------------------------------------------------------------------------------

    def timers(self, stage: Stage, pending: int) -> None:
        self.timers_pending.labels(stage).set(pending)

    def fired(self, stage: Stage, entities: int) -> None:
        self.timers_fired.labels(stage).inc(entities)

    def jeopardy(self, raised: bool, entity: str, reason: str) -> None:
        (self.jeopardy_raised if raised else self.jeopardy_cleared).labels(entity, reason).inc()

    def fatal(self, error: BaseException) -> None:
        self.fatal_errors.labels(type(error).__name__).inc()

    # --- reading back -------------------------------------------------------------------------

    def totals(self) -> Totals:
        return Totals(
            events_applied=_sum(self.events_applied),
            dead_letters=_sum(self.dead_letters),
            refusals=_sum(self.refusals),
            lag=_sum(self.consumer_lag),
        )


def _sum(metric: MetricWrapperBase) -> float:
    """The sum of a counter's (or gauge's) value over all its label sets."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    )
