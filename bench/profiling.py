"""Where the worker's time goes: the full-speed run in-process, under cProfile.

The stream is produced first; then the worker (`Worker`, as `order-status run` builds it)
starts with the profiler on and runs until the order stage has taken every record and the service
stage has gone quiet. A coroutine's cumulative time counts only while it runs, not while it is
suspended in an await, so the phases add up to the work done, and the waiting shows up as the event
loop's `select`.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import pstats
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bench.generator import Event
from bench.measure import encode, produce, producing
from bench.report import ROOT
from worker.app import Worker
from worker.cli import tune_garbage_collection
from worker.dev import create_topics
from worker.logs import configure_logging
from worker.pipeline import BatchReport
from worker.settings import Settings

# Label, the function's file (suffix), its name. Matched by name: a phase whose function was
# renamed shows 0.00, and then this table needs the new name.
PHASES = (
    ("every stage's batches (Pipeline.process)", "worker/pipeline.py", "process"),
    ("  decode: orders stage", "worker/stages/orders.py", "decode"),
    ("  decode: services stage", "worker/stages/services.py", "decode"),
    ("    parse + validate (pydantic)", "schemas/inbound.py", "validate"),
    ("  merge: release in event time", "worker/engine/merge.py", "release"),
    ("  read records (StageStore.load)", "worker/store/groups.py", "load"),
    ("  rules: orders (settle)", "worker/stages/orders.py", "settle"),
    ("    the consumed record kept (origin)", "worker/stages/base.py", "origin"),
    ("    rules.apply", "worker/rules/order.py", "apply"),
    ("    output ids (uuid5)", "worker/rules/emit.py", "output_id"),
    ("  rules: services (settle)", "worker/stages/services.py", "settle"),
    ("  rules: activity (settle)", "worker/stages/activity.py", "settle"),
    ("  outputs serialised (_output)", "worker/pipeline.py", "_output"),
    ("  records serialised (Codec.encode)", "worker/store/codecs.py", "encode"),
    ("  write (StageStore.commit)", "worker/store/groups.py", "commit"),
    ("  publish + wait for acks", "worker/pipeline.py", "publish_outboxes"),
    ("    a record batch per partition", "worker/publish.py", "publish"),
    ("    drop from the outboxes", "worker/store/groups.py", "acknowledge"),
    ("  announce watermarks", "worker/pipeline.py", "_announce"),
    ("aiokafka: fetch requests", "aiokafka/consumer/fetcher.py", "_proc_fetch_request"),
    ("aiokafka: records out of fetched batches", "aiokafka/consumer/fetcher.py", "fetched_records"),
    ("aiokafka: producer sender", "aiokafka/producer/sender.py", "_sender_routine"),
    ("event loop: waiting in select", "~", "<method 'poll' of 'select.epoll' objects>"),
)
QUIET_S = 1.0


@dataclass
class Profiled:
    events: int
    seconds: float
    stats: pstats.Stats
    path: Path
    batches: list[BatchReport]

    def batch_sizes(self) -> list[str]:
        """Per stage: how many batches did work, and the records and entities of one (per-batch
        costs are paid per batch, per-entity costs per entity of each batch)."""
        lines = []
        for stage in ("orders", "services", "activity"):
            working = [b for b in self.batches if b.stage == stage and (b.applied or b.timers)]
            if working:
                lines.append(
                    f"{stage}: {len(working)} batches; per batch, median "
                    f"{statistics.median(b.records for b in working):.0f} records, "
                    f"{statistics.median(b.applied for b in working):.0f} applied, "
                    f"{statistics.median(b.entities for b in working):.0f} entities"
                )
        return lines

    def phases(self) -> list[tuple[str, float]]:
        """Each phase's cumulative seconds (over every function of that name in that file)."""
        table = self.stats.stats  # type: ignore[attr-defined]
        return [
            (
                label,
                sum(
                    cumulative
                    for (filename, _, name), (_, _, _, cumulative, _) in table.items()
                    if name == function and filename.endswith(path)
                ),
            )
            for label, path, function in PHASES
        ]

    def summary(self, top: int = 25) -> str:
        lines = [
            f"profiled in-process run: {self.events} events in {self.seconds:.1f}s including "
            f"startup ({self.events / self.seconds:,.0f}/s under cProfile); stats in {self.path}",
            "",
            f"{'phase':<48} {'cumulative s':>12}",
        ]
        lines += [f"{label:<48} {seconds:>12.2f}" for label, seconds in self.phases()]
        lines += ["", *self.batch_sizes()]
        table = self.stats.stats  # type: ignore[attr-defined]
        by_own_time = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
        lines += ["", f"{'own s':>7} {'cum s':>7} {'calls':>9}  function"]
        for (filename, line, name), (_, calls, own, cumulative, _) in by_own_time:
            where = _short(filename)
            lines.append(f"{own:>7.2f} {cumulative:>7.2f} {calls:>9}  {name}  {where}:{line}")
        return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


async def profile_worker(settings: Settings, events: Sequence[Event], path: Path) -> Profiled:
    await create_topics(settings)
    async with producing(settings) as producer:
        await produce(producer, encode(settings, events))
    configure_logging("json", "WARNING")  # as `order-status run` is configured in bench/measure.py
    reports: list[BatchReport] = []
    batch = asyncio.Event()

    def on_batch(report: BatchReport) -> None:
        reports.append(report)
        if report.applied or report.published:  # idle polls report too: they are not work
            batch.set()

    def consumed() -> int:
        return sum(report.records for report in reports if report.stage == "orders")

    redis = Redis.from_url(settings.redis_url)
    worker = Worker(settings, redis, on_batch=on_batch)
    profiler = cProfile.Profile()
    started = time.monotonic()
    profiler.enable()
    try:
        await worker.start()
        tune_garbage_collection()  # as `order-status run` does, or collections skew every share
        finished = started
        while consumed() < len(events) or time.monotonic() - finished < QUIET_S:
            batch.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.wait(), QUIET_S)
                finished = time.monotonic()
    finally:
        profiler.disable()
        await worker.stop()
        await redis.aclose()
    profiler.dump_stats(path)
    return Profiled(len(events), finished - started, pstats.Stats(profiler), path, reports)
