"""quix-streams against the transport ceiling and the worker, on the same input and broker
(issue 17: "quix-streams 3.28 with RocksDB state ... about 0.35 of the relay when tuned, 0.17 with
its defaults, p99 about 420 ms at 3,500 events/s").

    .venv/bin/python bench/quix_baseline.py [--orders N] [--rounds R] [--configs defaults,tuned]
                                            [--no-worker] [--fixed-rate 3500]

quix-streams is no dependency of the worker: the first run creates bench/.venv-quix (git-ignored)
and installs quixstreams 3.28.1 from PyPI into it (with its confluent-kafka and rocksdict wheels).
The application is bench/quix_app.py (the simplified rollup of bench/quix_rollup.py, its state in
RocksDB), run with that environment's Python as a process, as `order-status run` is.

One run, on one fresh broker (Tansu) and the local Redis, the same generated stream for all:
1. each round: the transport ceiling (bench/baseline.py), then each quix configuration and the
   worker (1 process) at full speed over the stream as a backlog, timed from the consumer group's
   join to the last expected output, exactly as bench/run.py times the worker;
2. in the last round, each of them paced at `--fixed-rate` events/s and at 25% and 50% of its own
   median maximum (bench/measure.py's pacing and latency);
3. each process's peak RSS.
Ratios are each round's rate over the same round's ceiling. It prints a table and writes the figures
to bench/results/<UTC timestamp>-<short commit>-quix.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # `python bench/quix_baseline.py` puts bench/ on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from bench import quix_rollup, report
from bench.baseline import Rate, consume_parse_produce
from bench.generator import Event
from bench.measure import (
    FullSpeed,
    Latency,
    Launch,
    Reference,
    deploy,
    forget,
    full_speed,
)
from bench.run import LOADS, Options, Run, medians, paced_latency
from tests.integration.harness import WorkerProcess
from worker.embedded import local_broker, local_redis
from worker.settings import Settings

BENCH = Path(__file__).resolve().parent
QUIX_VENV = BENCH / ".venv-quix"
QUIX_PYTHON = QUIX_VENV / "bin" / "python"
QUIX_REQUIREMENT = "quixstreams==3.28.1"
QUIX_APP = BENCH / "quix_app.py"
CONFIGS = ("defaults", "tuned")  # bench/quix_app.py's CONFIGS
WORKER = "worker"

# A few expected outputs can differ: quix merges the topics by record timestamp, so one order's
# records of the same millisecond on two topics are applied in topic order (the rollup parks what
# comes before its parent, but a task update and an order command can still swap). Full speed
# stops waiting once outputs have stopped coming for this long, and counts what is missing.
QUIET_S = 5.0


def quix_python() -> Path:
    """bench/.venv-quix's Python, with quix-streams installed into it on the first call."""
    name, wanted = QUIX_REQUIREMENT.split("==")
    version = f"from importlib.metadata import version; print(version({name!r}))"
    check = [str(QUIX_PYTHON), "-c", version]
    if QUIX_PYTHON.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False).stdout
        if found.strip() == wanted:
            return QUIX_PYTHON
    print(f"installing {QUIX_REQUIREMENT} into {QUIX_VENV}", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(QUIX_VENV)
    pip = [str(QUIX_PYTHON), "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    subprocess.run([*pip, QUIX_REQUIREMENT], check=True)
    return QUIX_PYTHON


class QuixProcess(WorkerProcess):
    """bench/quix_app.py as the worker process: same environment, one quix configuration, its
    RocksDB files in their own directory."""

    def __init__(self, env: dict[str, str], log_path: str, config: str, state_dir: Path) -> None:
        quix_env = {"QUIX_BENCH_CONFIG": config, "QUIX_BENCH_STATE_DIR": str(state_dir)}
        super().__init__(env | quix_env, log_path)

    def start(self) -> None:
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(QUIX_PYTHON), str(QUIX_APP)],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def quix_launch(config: str) -> Launch:
    def launch(env: dict[str, str], log_path: str) -> WorkerProcess:
        return QuixProcess(env, log_path, config, Path(log_path).with_suffix(".state"))

    return launch


async def create_quix_topics(settings: Settings) -> None:
    """The deployment's topics, created with `retention.ms` (what Apache Kafka's defaults would
    say): quix sizes its changelog topics from the input topics' retention, and Tansu describes
    only the configs a topic was created with. (`deploy` creating them again changes nothing.)"""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        retention = {"retention.ms": str(7 * 24 * 3600 * 1000)}
        await admin.create_topics(
            [NewTopic(topic, 4, 1, topic_configs=retention) for topic in settings.topics.all]
        )
    finally:
        await admin.close()


def quix_reference(stream: Sequence[Event], prefix: str) -> Reference:
    """What bench/quix_rollup.py outputs for the stream in event-time order."""
    started = time.process_time()
    outputs = quix_rollup.reference(stream)
    cpu_s = time.process_time() - started
    causes = {output["data"]["caused_by"].removeprefix(prefix) for output in outputs}
    return Reference(frozenset(output["id"] for output in outputs), frozenset(causes), cpu_s)


@dataclass
class System:
    """One contender: a quix configuration or the worker, its rounds and its paced phases."""

    name: str
    reference: Reference
    launch: Launch
    rounds: list[FullSpeed] = field(default_factory=list)
    cpu_us_per_event: list[float] = field(default_factory=list)
    """Each round's CPU (the process's, its native threads included) from the group join to the
    end of `full_speed`: for quix that includes idling through QUIET_S."""
    latencies: list[Latency] = field(default_factory=list)
    paced_cpu_us_per_event: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0

    @property
    def maximum(self) -> float:
        return statistics.median(measured.rate.per_second for measured in self.rounds)


async def measure(run: Run, configs: Sequence[str], worker: bool, fixed_rate: float) -> Any:
    stream = run.stream("tp")
    prefix = run.prefix("tp")
    run.progress(f"{len(stream):,} input events; computing the expected outputs")
    systems = [
        System(config, quix_reference(stream, prefix), quix_launch(config)) for config in configs
    ]
    if worker:
        reference = Reference.of(stream, prefix, run.settings("tp").default_profile)
        systems.append(System(WORKER, reference, WorkerProcess))
    redis = Redis.from_url(run.redis_url)
    baselines: list[Rate] = []
    try:
        relay = await run.relay_backlog(stream)
        for number in range(run.options.rounds):
            run.progress(f"round {number + 1} of {run.options.rounds}: transport ceiling")
            baselines.append(await consume_parse_produce(relay, len(stream), f"relay{number}"))
            last = number == run.options.rounds - 1
            for system in systems:
                run.progress(f"{system.name}, full speed" + (", then paced" if last else ""))
                await _measure_system(run, system, stream, number, last, fixed_rate)
                await forget(redis, prefix)  # the worker's snapshots: every round replays the ids
    finally:
        await forget(redis, run.id)
        await redis.aclose()
    return _figures(run, stream, baselines, systems, fixed_rate)


async def _measure_system(
    run: Run, system: System, stream: list[Event], number: int, last: bool, fixed_rate: float
) -> None:
    settings = run.settings(f"{system.name}{number}")
    quiet_s = None
    if system.name != WORKER:
        await create_quix_topics(settings)
        quiet_s = QUIET_S
    async with deploy(settings, 1, stream, run.log_dir, system.launch) as deployment:
        process = deployment.workers[0].process
        assert process is not None
        start = cpu_seconds(process.pid)
        measured = await full_speed(deployment, stream, system.reference.output_ids, quiet_s)
        system.rounds.append(measured)
        system.cpu_us_per_event.append((cpu_seconds(process.pid) - start) / len(stream) * 1e6)
        if not last:
            return
        rates = [(fixed_rate / system.maximum, fixed_rate, "fixed")]
        rates += [(load, load * system.maximum, f"lat{load * 100:.0f}") for load in LOADS]
        for load, rate, name in rates:
            run.progress(f"  {system.name} paced at {rate:,.0f}/s")
            start = cpu_seconds(process.pid)
            latency = await paced_latency(run, deployment, system.reference, load, rate, name)
            system.latencies.append(latency)
            used = cpu_seconds(process.pid) - start
            system.paced_cpu_us_per_event.append(used / latency.events * 1e6)
        system.peak_rss_mib = deployment.peak_rss_mib()[0]


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system, all its threads."""
    # /proc/PID/stat: utime and stime are the 14th and 15th fields; the 2nd, the command in
    # parentheses, may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _figures(
    run: Run,
    stream: list[Event],
    baselines: list[Rate],
    systems: list[System],
    fixed_rate: float,
) -> dict[str, Any]:
    relay_rates = [rate.per_second for rate in baselines]
    return {
        "input": {"orders": run.options.orders, "seed": run.options.seed, "events": len(stream)},
        "rounds": run.options.rounds,
        "fixed_rate_per_second": fixed_rate,
        "baseline": {
            "per_second": statistics.median(relay_rates),
            "rounds_per_second": relay_rates,
        },
        "systems": {system.name: _system_figures(system, relay_rates) for system in systems},
    }


def _system_figures(system: System, relay_rates: list[float]) -> dict[str, Any]:
    ratios = [
        measured.rate.per_second / relay
        for measured, relay in zip(system.rounds, relay_rates, strict=True)
    ]
    return {
        "expected_outputs": len(system.reference.output_ids),
        **medians(system.rounds),
        "rounds_missing_outputs": [measured.missing for measured in system.rounds],
        "rounds_over_baseline": ratios,
        "over_baseline": statistics.median(ratios),
        "rounds_cpu_us_per_event": system.cpu_us_per_event,
        "latency": [asdict(latency) for latency in system.latencies],
        "paced_cpu_us_per_event": system.paced_cpu_us_per_event,
        "peak_rss_mib": system.peak_rss_mib,
    }


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table, one column per contender."""
    systems: list[dict[str, Any]] = list(results["systems"].values())
    rows = [
        ("full speed, events/s", [_spread(s["rounds_per_second"], "{:,.0f}") for s in systems]),
        (
            "**/ transport ceiling** (same round)",
            [_spread(s["rounds_over_baseline"], "{:.1%}") for s in systems],
        ),
        (
            "expected outputs missing",
            [", ".join(map(str, s["rounds_missing_outputs"])) for s in systems],
        ),
        (
            "CPU per event at full speed, µs",
            [_spread(s["rounds_cpu_us_per_event"], "{:,.0f}") for s in systems],
        ),
        (
            "process start → group joined; → first output, s",
            [f"{s['startup_seconds']:.1f}; {s['first_output_seconds']:.1f}" for s in systems],
        ),
    ]
    for index, label in enumerate(("fixed rate", "25% of its maximum", "50% of its maximum")):
        phases = [s["latency"][index] for s in systems]
        rows.append((f"{label}: events/s", [f"{p['rate_per_second']:,.0f}" for p in phases]))
        rows.append((f"{label}: p50 / p99 / max, ms", [_latency(p) for p in phases]))
        cpu = [f"{s['paced_cpu_us_per_event'][index]:,.0f}" for s in systems]
        rows.append((f"{label}: CPU per event, µs", cpu))
    rows.append(("peak RSS, MiB", [f"{s['peak_rss_mib']:.0f}" for s in systems]))
    relay = _spread(results["baseline"]["rounds_per_second"], "{:,.0f}")
    lines = [
        f"{results['input']['events']:,} input events, {results['rounds']} round(s), commit "
        f"{results['commit']}; transport ceiling {relay} msg/s",
        "",
        f"| measure | {' | '.join(results['systems'])} |",
        "|---|" + "---:|" * len(systems),
    ]
    lines += [f"| {label} | {' | '.join(values)} |" for label, values in rows]
    return "\n".join(lines)


def _latency(phase: dict[str, Any]) -> str:
    figures = " / ".join(f"{phase[key]:,.0f}" for key in ("p50_ms", "p99_ms", "max_ms"))
    return figures + (f" ({phase['unmatched']} unmatched)" if phase["unmatched"] else "")


def _spread(values: list[float], style: str) -> str:
    """The median, and the range over the rounds."""
    middle = style.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({style.format(min(values))} to {style.format(max(values))})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=12.0, help="each paced phase")
    parser.add_argument("--fixed-rate", type=float, default=3500.0, help="events/s")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="quix configurations")
    parser.add_argument("--no-worker", action="store_true", help="quix and the ceiling only")
    parser.add_argument("--results-dir", type=Path, default=report.ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    configs = [config for config in args.configs.split(",") if config]
    if not set(configs) <= set(CONFIGS):
        parser.error(f"--configs: choose from {', '.join(CONFIGS)}")
    options = Options(args.orders, args.seed, args.latency_seconds, args.rounds, args.results_dir)
    quix_python()
    with local_broker() as broker, local_redis(None) as redis_url:
        run = Run(options, broker.bootstrap_servers, redis_url)
        provenance = report.describe(report.commit())
        figures = asyncio.run(measure(run, configs, not args.no_worker, args.fixed_rate))
        shutil.rmtree(run.log_dir)
    results = {
        **provenance,
        "command": " ".join(["bench/quix_baseline.py", *(argv or sys.argv[1:])]),
        "quix": QUIX_REQUIREMENT,
        **figures,
    }
    print()
    print(table(results))
    print(f"\nwritten to {report.write(results, options.results_dir, '-quix')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
