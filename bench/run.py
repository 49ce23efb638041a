"""The benchmark: the worker against the transport ceiling, on a fresh local broker and Redis.

    python bench/run.py [--orders N] [--rounds R] [--quick] [--results-dir DIR]
    python bench/run.py --profile [--orders N]    the full-speed run in-process under cProfile
    python bench/run.py --scale [--orders N] [--rounds R]    1, 2, 3 processes on a Redis Cluster

One run measures, on the same machine and broker (see BENCHMARKS.md for what each figure means):
1. the transport ceiling: a minimal aiokafka consume → json → produce → commit loop over the input;
2. the worker (`order-status run`, one process) at full speed: the whole stream produced to fresh
   topics first, then the worker started; timed from its consumer group's join to the broker
   timestamp of its last output;
3. latency with the input paced at 25% and 50% of that maximum, input to first output;
4. two worker processes in one consumer group, at full speed;
5. the worker's peak RSS and the Redis memory held per order.
1, 2 and 4 are repeated `--rounds` times (medians are reported: a shared machine is noisy); 3 and
5 run in the last round. It prints a table and writes the figures to
bench/results/<UTC timestamp>-<short commit>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # `python bench/run.py` puts bench/ on the path, not the project
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from redis.asyncio import Redis

from bench import report
from bench.baseline import Rate, consume_parse_produce
from bench.generator import START, Event, StreamSpec, generate
from bench.measure import (
    CPU,
    Deployment,
    FullSpeed,
    Latency,
    MeteredWorker,
    Reference,
    deploy,
    encode,
    forget,
    full_speed,
    paced,
    produce,
    producing,
    redis_footprint,
)
from bench.profiling import profile_worker
from worker.dev import create_topics
from worker.embedded import local_broker, local_redis
from worker.settings import Settings, Topics

LOADS = (0.25, 0.5)


@dataclass(frozen=True)
class Options:
    orders: int
    seed: int
    latency_s: float
    rounds: int
    results_dir: Path
    max_task_idle_ms: int = Settings.model_fields["max_task_idle_ms"].default
    """The workers' wait for a lagging co-partition: run with 0 to see what it costs in latency."""


class Run:
    """One benchmark run: its broker and Redis, and a unique id in every topic, consumer group and
    order id it creates, so runs never meet in a shared Redis."""

    def __init__(self, options: Options, bootstrap_servers: str, redis_url: str) -> None:
        self.options = options
        self.id = f"bench-{uuid.uuid4().hex[:8]}-"
        self.bootstrap_servers = bootstrap_servers
        self.redis_url = redis_url
        self.log_dir = Path(tempfile.mkdtemp(prefix=self.id))  # kept if the run fails
        self.started = time.monotonic()
        self._later_streams = 0

    def progress(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    def settings(self, name: str) -> Settings:
        """Settings for one phase's own topics and consumer group."""
        suffix = f"{self.id}{name}"
        return Settings(
            bootstrap_servers=self.bootstrap_servers,
            redis_url=self.redis_url,
            group_id=suffix,
            topics=Topics(
                **{key: f"{topic}.{suffix}" for key, topic in Topics().model_dump().items()}
            ),
            producer_idempotence=False,
            max_task_idle_ms=self.options.max_task_idle_ms,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        )

    async def relay_backlog(self, stream: list[Event]) -> Settings:
        """The transport ceiling's topics, with the stream produced to them."""
        relay = self.settings("baseline")
        await create_topics(relay)
        async with producing(relay) as producer:
            await produce(producer, encode(relay, stream))
        return relay

    def prefix(self, name: str) -> str:
        return f"{self.id}{name}-"

    def stream(self, name: str, start: datetime = START) -> list[Event]:
        spec = StreamSpec(
            orders=self.options.orders,
            seed=self.options.seed,
            prefix=self.prefix(name),
            start=start,
        )
        return generate(spec)

    def later_stream(self, name: str) -> list[Event]:
        """A stream for workers that already applied others: a day after the one before."""
        self._later_streams += 1
        return self.stream(name, START + timedelta(days=self._later_streams))


async def measure(run: Run) -> dict[str, Any]:
    options = run.options
    stream = run.stream("tp")
    run.progress(f"{len(stream):,} input events; computing the expected outputs")
    reference = Reference.of(stream, run.prefix("tp"), run.settings("tp").default_profile)
    redis = Redis.from_url(run.redis_url)
    baselines: list[Rate] = []
    singles: list[FullSpeed] = []
    doubles: list[FullSpeed] = []
    full_cpu_us: list[float] = []  # the single process's CPU per event at full speed, per round
    latencies: list[Latency] = []
    try:
        relay = await run.relay_backlog(stream)
        for number in range(options.rounds):
            last = number == options.rounds - 1
            run.progress(f"round {number + 1} of {options.rounds}: transport ceiling")
            baselines.append(await consume_parse_produce(relay, len(stream), f"relay{number}"))

            run.progress("worker, 1 process" + (", then paced" if last else ""))
            one_settings = run.settings(f"one{number}")
            async with deploy(one_settings, 1, stream, run.log_dir, MeteredWorker) as one:
                (metered,) = one.workers
                assert isinstance(metered, MeteredWorker)
                cpu_s = metered.counters(CPU)[CPU]
                singles.append(await full_speed(one, stream, reference.output_ids))
                full_cpu_us.append((metered.counters(CPU)[CPU] - cpu_s) / len(stream) * 1e6)
                if number == 0:
                    keys, held = await redis_footprint(redis, run.prefix("tp"))
                if last:
                    maximum = statistics.median(single.rate.per_second for single in singles)
                    for load in LOADS:
                        cpu_s = metered.counters(CPU)[CPU]
                        latency = await paced_latency(run, one, reference, load, load * maximum)
                        used_us = (metered.counters(CPU)[CPU] - cpu_s) * 1e6
                        latencies.append(
                            replace(latency, cpu_us_per_event=used_us / latency.events)
                        )
                    rss_one = one.peak_rss_mib()[0]
            # Every full-speed run replays the same ids: start them afresh.
            await forget(redis, run.prefix("tp"))

            run.progress("worker, 2 processes")
            async with deploy(run.settings(f"two{number}"), 2, stream, run.log_dir) as two:
                doubles.append(await full_speed(two, stream, reference.output_ids))
                rss_two = two.peak_rss_mib()
            await forget(redis, run.prefix("tp"))
    finally:
        await forget(redis, run.id)
        await redis.aclose()

    baseline = statistics.median(rate.per_second for rate in baselines)
    single, double = medians(singles), medians(doubles)
    return {
        "input": {
            "orders": options.orders,
            "seed": options.seed,
            "events": len(stream),
            "expected_outputs": len(reference.output_ids),
        },
        "rounds": options.rounds,
        "baseline": {
            "messages": len(stream),
            "per_second": baseline,
            "rounds_per_second": [rate.per_second for rate in baselines],
        },
        "worker": {**single, "cpu_us_per_event": statistics.median(full_cpu_us)},
        "worker_two_processes": double,
        "ratios": {
            "worker_over_baseline": single["per_second"] / baseline,
            "two_over_one_process": double["per_second"] / single["per_second"],
        },
        "floor": floor(reference.cpu_s / len(stream), baseline),
        "latency": [asdict(latency) for latency in latencies],
        "memory": {
            "worker_peak_rss_mib": rss_one,
            "two_process_peak_rss_mib": rss_two,
            "redis_bytes_per_order": held / options.orders,
            "redis_keys_per_order": keys / options.orders,
        },
    }


def floor(code_s_per_event: float, baseline_per_second: float) -> dict[str, float]:
    """The most the ratio could be if Kafka and Redis cost the worker per event no more than
    a record costs the relay: the relay's time plus the worker's own code, run alone by the
    reference model, on one core."""
    relay_s = 1 / baseline_per_second
    return {
        "code_us_per_event": code_s_per_event * 1e6,
        "relay_us_per_record": relay_s * 1e6,
        "ratio_bound": relay_s / (relay_s + code_s_per_event),
    }


def medians(rounds: list[FullSpeed]) -> dict[str, Any]:
    """Each figure's median over the rounds, and every round's rate."""

    def median(figure: Callable[[FullSpeed], float]) -> float:
        return statistics.median(figure(measured) for measured in rounds)

    return {
        "events": rounds[0].rate.count,
        "per_second": median(lambda m: m.rate.per_second),
        "rounds_per_second": [measured.rate.per_second for measured in rounds],
        "first_to_last_output_per_second": median(lambda m: m.span.per_second),
        "startup_seconds": median(lambda m: m.startup_s),
        "first_output_seconds": median(lambda m: m.first_output_s),
        "wall_seconds": median(lambda m: m.wall_s),
    }


async def paced_latency(
    run: Run,
    deployment: Deployment,
    reference: Reference,
    load: float,
    rate: float,
    name: str | None = None,
) -> Latency:
    """Pace the first `latency_s` worth of a fresh copy of the stream (its ids prefixed with
    `name`, by default after the load) at `rate` per second."""
    name = name or f"lat{load * 100:.0f}"
    events = run.later_stream(name)[: max(2, int(rate * run.options.latency_s))]
    run.progress(f"  {len(events):,} events at {rate:,.0f}/s")
    causes = reference.causes_in(events, run.prefix(name))
    return await paced(deployment, events, causes, load, rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--orders", type=int, default=200, help="orders in the stream (~94 events each)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-seconds", type=float, default=12.0, help="each paced phase")
    parser.add_argument(
        "--rounds", type=int, default=3, help="full-speed repetitions (medians are reported)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny load (the smoke test)")
    parser.add_argument("--profile", action="store_true", help="profile the worker in-process")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="scale-out instead: 1, 2 and 3 processes on a local Redis Cluster (bench/scale.py)",
    )
    parser.add_argument("--results-dir", type=Path, default=report.ROOT / "bench" / "results")
    parser.add_argument(
        "--max-task-idle-ms",
        type=int,
        default=Options.max_task_idle_ms,
        help="the workers' ORDER_STATUS_MAX_TASK_IDLE_MS (0 shows what the default costs)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.orders < 1:
        parser.error("--rounds and --orders must be at least 1")
    options = Options(
        orders=10 if args.quick else args.orders,
        seed=args.seed,
        latency_s=2.0 if args.quick else args.latency_seconds,
        rounds=1 if args.quick else args.rounds,
        results_dir=args.results_dir,
        max_task_idle_ms=args.max_task_idle_ms,
    )
    command = " ".join(["bench/run.py", *(argv or sys.argv[1:])])
    if args.scale:
        # Imported here: bench.scale builds on this module's Run.
        from bench.scale import main as scale

        return scale(options, command)
    with local_broker() as broker, local_redis(None) as redis_url:
        run = Run(options, broker.bootstrap_servers, redis_url)
        if args.profile:
            return asyncio.run(_profile(run))
        provenance = report.describe(report.commit())
        figures = asyncio.run(measure(run))
        shutil.rmtree(run.log_dir)
    results = {
        **provenance,
        "command": command,
        **figures,
    }
    print()
    print(report.table(results))
    print(f"\nwritten to {report.write(results, options.results_dir)}")
    return 0


async def _profile(run: Run) -> int:
    path = run.options.results_dir / f"profile-{report.commit()}.prof"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        profiled = await profile_worker(run.settings("profile"), run.stream("profile"), path)
    finally:
        redis = Redis.from_url(run.redis_url)
        await forget(redis, run.id)
        await redis.aclose()
    print(profiled.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
