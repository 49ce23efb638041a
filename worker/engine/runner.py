"""One stage's consumer loop, on aiokafka directly.

The loop owns every step of consumption: it polls, hands the raw records to the stage's pipeline
(nothing decodes a record before it, so no record can fail outside the pipeline's policy), and keeps
the groups it owns in step with the consumer group's assignment. An empty poll runs the pipeline
too: it is the timer that releases records held for a lagging co-partition, fires due timers and
announces watermarks.

On assignment a group is recovered from Redis before any of its records is applied: its meta says
where its state is (the consumer seeks there), its outbox what was written but not acknowledged
(published first). Kafka's committed offset is compared with the meta: a Redis whose state is older
than what Kafka says was applied has lost acknowledged writes, and the worker stops rather than
compute from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import TopicPartition

from worker.engine.errors import Fatal, MembershipLost, is_membership_lost
from worker.engine.group import GroupState
from worker.engine.merge import GroupMerge, Partition
from worker.engine.observer import EngineObserver
from worker.pipeline import Pipeline
from worker.stages.base import Decoded

log = structlog.get_logger("worker.engine")


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    bootstrap_servers: str
    group_id: str
    max_records: int
    poll_timeout_ms: int
    fetch_max_wait_ms: int
    session_timeout_ms: int
    heartbeat_interval_ms: int
    max_poll_interval_ms: int
    commit_interval_s: float
    buffer_limit: int
    security: dict[str, object]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._runner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runner.assigned(assigned)


class StageRunner:
    """Consumes one stage's topics with its own consumer group and runs its pipeline."""

    def __init__(
        self, pipeline: Pipeline[Any, Any], options: ConsumerOptions, observer: EngineObserver
    ) -> None:
        self.pipeline = pipeline
        self._options = options
        self._observer = observer
        stage = pipeline.stage
        internal = [stage.internal_topic] if stage.internal_topic else []
        self.topics = [*stage.external_topics, *internal]
        self.generation = 0
        self._pending: set[int] = set()  # assigned groups not recovered yet
        self._stopping = asyncio.Event()
        self._last_commit = 0.0
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=options.bootstrap_servers,
            group_id=options.group_id,
            client_id=f"order-status-worker.{stage.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # One instance gets partition q of every topic of the stage: a group is one unit.
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=options.fetch_max_wait_ms,
            session_timeout_ms=options.session_timeout_ms,
            heartbeat_interval_ms=options.heartbeat_interval_ms,
            max_poll_interval_ms=options.max_poll_interval_ms,
            **options.security,
        )

    def owns(self, generation: int) -> Callable[[], bool]:
        return lambda: self.generation == generation

    # --- assignment (called by aiokafka's coordinator: bookkeeping only, no I/O) -------------

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        revoked = list(partitions)
        self._observer.revoked(self._options.group_id, revoked)
        groups = {tp.partition for tp in revoked}
        if not groups:
            return
        self.generation += 1
        for group in groups:
            self.pipeline.groups.pop(group, None)
            self.pipeline.store.forget(group)
            self._pending.discard(group)

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        assigned = list(partitions)
        self._observer.assigned(self._options.group_id, assigned)
        self._pending |= {tp.partition for tp in assigned}

    # --- the loop -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        await self.consumer.start()

    def stop(self) -> None:
        """Stop after the batch in hand."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll and process until stopped; a fatal error is raised (nothing is committed)."""
        consumer = self.consumer
        options = self._options
        try:
            while not self._stopping.is_set():
                self.pipeline.owner = lambda: True  # polling is never another's
                fetched = await self.pipeline.retrying(
                    lambda: consumer.getmany(
                        timeout_ms=options.poll_timeout_ms, max_records=options.max_records
                    ),
                    "poll",
                )
                records = [record for batch in fetched.values() for record in batch]
                generation = self.generation
                self.pipeline.owner = self.owns(generation)
                try:
                    if self._pending:
                        recovered = await self._recover(generation)
                        # Read before the recovery's seek (from where the consumer stood, maybe
                        # past an abandoned batch): read again from where the state is.
                        records = [r for r in records if r.partition not in recovered]
                    report = await self.pipeline.process(records, consumer)
                    # Counted once written and published: a failed offset commit after it loses
                    # no effect, so it must not lose the batch's counts either.
                    self._observer.batch(self._options.group_id, report, self.pipeline.store)
                    self._pause_full()
                    self._report_lag()
                    await self._commit()
                except Exception as error:
                    if not is_membership_lost(error):
                        raise
                    self._rejoin(error)
                    continue
            await self._final_commit()
        finally:
            await consumer.stop()

    async def _final_commit(self) -> None:
        """On a clean stop, commit what Redis holds, so the next owner sees no lag; unless the
        groups are no longer this stage's (their next owner commits for them)."""
        try:
            await self._commit(force=True)
        except Exception as error:
            if not is_membership_lost(error):
                raise
            log.warning("group membership lost while stopping: nothing committed", error=str(error))

    def _rejoin(self, error: BaseException) -> None:
        """The batch in hand is abandoned: take every group up again from Redis."""
        log.warning("group membership lost, resuming from Redis", error=str(error))
        for group in list(self.pipeline.groups):
            self.pipeline.groups.pop(group)
            self.pipeline.store.forget(group)
        self._pending = {tp.partition for tp in self.consumer.assignment()}

    async def _recover(self, generation: int) -> set[int]:
        """Take up the pending groups from Redis: the groups recovered."""
        pipeline = self.pipeline
        consumer = self.consumer
        owner = self.owns(generation)
        recovered_groups = set(self._pending)
        for group_number in sorted(self._pending):
            recovered = await pipeline.retrying(
                partial(pipeline.store.recover, group_number), "recover"
            )
            meta = recovered.meta
            partitions = [Partition(topic, group_number) for topic in self.topics]
            tps = [TopicPartition(topic, group_number) for topic in self.topics]
            committed = {
                tp: await pipeline.retrying(partial(consumer.committed, tp), "committed")
                for tp in tps
            }
            _check_not_lost(pipeline.stage.name, group_number, meta.offsets, committed)
            if not owner():
                raise MembershipLost("revoked while recovering")
            internal = pipeline.stage.internal_topic
            merge: GroupMerge[Decoded[Any]] = GroupMerge(
                [p for p in partitions if p.topic != internal],
                pipeline.topology.upstream_groups if internal else 0,
            )
            group = GroupState(group_number, merge, meta, partitions)
            for tp in tps:
                # Where the state is; where Redis has nothing of a topic, nothing of it was
                # applied: from its start (the consumer may stand past an abandoned batch).
                resume = meta.offsets.get(tp.topic, 0)
                group.next_offsets[Partition(tp.topic, group_number)] = resume
                consumer.seek(tp, resume)
            group.next_sequences = dict(meta.sequences)
            group.due_floor_ms = recovered.first_due_ms
            if meta.announced is not None:
                group.announced = meta.announced
                merge.resume(meta.announced, time.time_ns() // 1000)  # aiokafka's poll clock
            if recovered.leftovers:
                await pipeline.publish_outboxes({group_number: recovered.leftovers})
            pipeline.groups[group_number] = group
            self._pending.discard(group_number)
            log.info(
                "group recovered",
                stage=pipeline.stage.name,
                group=group_number,
                version=meta.version,
                republished=len(recovered.leftovers),
            )
        return recovered_groups

    def _report_lag(self) -> None:
        """Records on the broker not yet applied, per owned partition."""
        for group in self.pipeline.groups.values():
            resume = group.applied_offsets()
            for partition in group.partitions:
                highwater = self.consumer.highwater(TopicPartition(*partition))
                if highwater is not None:
                    behind = max(0, highwater - resume.get(partition, highwater))
                    self._observer.lag(self._options.group_id, *partition, behind)

    def _pause_full(self) -> None:
        """Stop fetching external partitions whose buffer is full (they wait for a co-partition),
        so the next fetches bring the lagging one's records, as Kafka Streams does. An internal
        topic is never paused: the watermarks its held items wait for come on it."""
        consumer = self.consumer
        full: list[TopicPartition] = []
        room: list[TopicPartition] = []
        for group in self.pipeline.groups.values():
            for partition in group.partitions:
                if partition.topic == self.pipeline.stage.internal_topic:
                    continue
                tp = TopicPartition(*partition)
                buffered = group.merge.buffered(partition)
                (full if buffered >= self._options.buffer_limit else room).append(tp)
        owned = consumer.assignment()
        consumer.pause(*(tp for tp in full if tp in owned))
        paused = consumer.paused()
        consumer.resume(*(tp for tp in room if tp in paused))

    async def _commit(self, force: bool = False) -> None:
        """On an interval, commit to Kafka what the state in Redis holds (for lag monitoring and
        to detect a Redis that lost it). Every group writes its meta first, through the version
        fence, so Kafka never says more than Redis holds."""
        if not force and time.monotonic() - self._last_commit < self._options.commit_interval_s:
            return
        await self.pipeline.write_offsets()
        offsets = {
            TopicPartition(topic, group.partition): offset
            for group in self.pipeline.groups.values()
            for topic, offset in group.meta.offsets.items()
        }
        if offsets:
            await self.pipeline.retrying(lambda: self.consumer.commit(offsets), "commit offsets")
        self._last_commit = time.monotonic()


def _check_not_lost(
    stage: str,
    group: int,
    offsets: dict[str, int],
    committed: dict[TopicPartition, int | None],
) -> None:
    """Stop when Kafka says more was applied than the state in Redis holds."""
    for tp, kafka_offset in committed.items():
        if kafka_offset is None or kafka_offset <= 0:
            continue
        redis_offset = offsets.get(tp.topic)
        if redis_offset is None or redis_offset < kafka_offset:
            raise Fatal(
                f"Redis has lost acknowledged writes: stage {stage} group {group} holds state up "
                f"to offset {redis_offset} of {tp.topic}[{tp.partition}], but Kafka's committed "
                f"offset is {kafka_offset}. Restore Redis (append-only file, replica) or reset the "
                "consumer groups deliberately; the worker will not compute from older state."
            )
