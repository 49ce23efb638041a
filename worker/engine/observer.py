"""What the engine tells operators: each batch, poll and rebalance, as metrics, health and logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from schemas.outbound import JeopardyData, UpdateStaleData
from worker.logs import log_assigned, log_revoked
from worker.observe import Health, Metrics
from worker.pipeline import BatchReport
from worker.store.groups import StageStore

Partitions = Iterable[tuple[str, int]]


class EngineObserver:
    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        listener: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self._listener = listener

    def assigned(self, group: str, partitions: Partitions) -> None:
        owned = list(partitions)
        self.health.assigned(group, owned)
        log_assigned(group, owned)

    def revoked(self, group: str, partitions: Partitions) -> None:
        lost = list(partitions)
        self.health.revoked(group)
        self.metrics.revoked(group, lost)
        log_revoked(group, lost)

    def lag(self, group: str, topic: str, partition: int, records: int) -> None:
        self.metrics.lag(group, topic, partition, records)
        self.health.lag(group, topic, partition, records)

    def retried(self, step: str) -> None:
        self.metrics.retried(step)

    def batch(self, group: str, report: BatchReport, store: StageStore[object]) -> None:
        metrics, stage = self.metrics, report.stage
        for topic, records in report.consumed.items():
            metrics.consumed(stage, topic, records)
        metrics.applied(stage, report.applied)
        for (topic, event_type), records in report.published.items():
            metrics.published(topic, event_type, records)
        for reason, records in report.dead_letters.items():
            metrics.dead_lettered(reason, records)
        for emitted in report.emitted:
            event_type, data = emitted.event.type, emitted.event.data
            if event_type == "command.rejected":
                metrics.refused(stage, event_type)
            elif isinstance(data, UpdateStaleData):
                metrics.stale(data.entity)
            elif isinstance(data, JeopardyData):
                metrics.jeopardy(event_type == "jeopardy.raised", data.entity, data.reason)
        if report.delays:
            metrics.delivered(
                stage,
                report.acknowledged_at,
                (event_time for event_time, _ in report.delays),
                (broker_time for _, broker_time in report.delays),
            )
        metrics.late(stage, report.late)
        metrics.fired(stage, report.timers)
        delay = max(0.0, time.time() - report.frontier_us / 1e6) if report.frontier_us > 0 else 0.0
        metrics.merge_state(stage, report.held_back, delay)
        hits, misses = store.take_lookups()
        metrics.cache_lookups(stage, hits, misses)
        # A refused write abandons its batch: it is counted with the next batch that finishes.
        metrics.conflicts(stage, store.take_conflicts())
        metrics.batch(stage, report.seconds)
        self.health.progressed(group)
        if self._listener is not None:
            self._listener(report)
