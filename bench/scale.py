"""The scale-out benchmark: `python3 tasks.py bench --scale` (bench/run.py --scale).

On a fresh local broker, a local Redis Cluster of three primaries (`bench.scale_cluster`) and the
local standalone Redis, the benchmark's stream goes through:
- 1 worker process on the standalone Redis (the reference: what the cluster client costs);
- 1, 2 and 3 worker processes in one consumer group on the cluster.
The processes join first (every stage's group stable with all of them), then the stream is
produced at full speed to topics of PARTITIONS partitions, so each process takes an even share
from the start; timed from the first record produced to the last output (`full_speed`), repeated
`--rounds` times (medians). From each process's /metrics before it stops: group writes refused by
the version fence (`order_status_cas_conflicts_total`: a writer that had not seen a rebalance yet),
the events it applied (how the partitions were shared) and the CPU it used on the stream (all
processes together, per input event: what more processes cost, whatever the cores). Prints a table
and writes bench/results/<UTC timestamp>-<short commit>-scale.json.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench import report
from bench.measure import (
    CPU,
    MeteredWorker,
    Reference,
    deploy,
    encode,
    forget,
    full_speed,
    produce,
    wait_until_stable,
)
from bench.run import Options, Run
from bench.scale_cluster import local_cluster
from worker.embedded import local_broker, local_redis

PARTITIONS = 6  # divisible by 1, 2 and 3: every process count gets an even share
PROCESSES = (1, 2, 3)
STAGES = ("services", "activity")  # their groups: `<group>.services`, `<group>.activity`
# Live input may be applied out of the reference model's order (README, "Event-time order"): an
# output it does not expect leaves another missing; the run ends once outputs stop for this long.
QUIET_S = 15.0
# Production's session timeout, not the 2 s the other phases use to join fast: on a loaded machine
# a process starved for 2 s is put out of its groups, and the rebalance is not what is measured.
SESSION_TIMEOUT_MS = 10_000


CONFLICTS = "order_status_cas_conflicts_total"
APPLIED = "order_status_events_applied_total"


@dataclass(frozen=True)
class Setup:
    name: str
    cluster: bool
    processes: int

    @property
    def label(self) -> str:
        redis = "cluster (3 primaries)" if self.cluster else "standalone"
        return f"{redis}, {self.processes} process{'es' if self.processes > 1 else ''}"


SETUPS = [Setup("standalone1", False, 1), *(Setup(f"cluster{n}", True, n) for n in PROCESSES)]


async def measure_scale(run: Run, cluster_url: str) -> dict[str, Any]:
    stream = run.stream("tp")
    run.progress(f"{len(stream):,} input events; computing the expected outputs")
    reference = Reference.of(stream, run.prefix("tp"), run.settings("tp").default_profile)
    figures: dict[str, list[dict[str, Any]]] = {setup.name: [] for setup in SETUPS}
    standalone = Redis.from_url(run.redis_url)
    try:
        for number in range(run.options.rounds):
            for setup in SETUPS:
                run.progress(f"round {number + 1} of {run.options.rounds}: {setup.label}")
                settings = run.settings(f"{setup.name}r{number}").model_copy(
                    update={"session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 1000}
                )
                if setup.cluster:
                    settings = settings.model_copy(
                        update={"redis_url": cluster_url, "redis_cluster": True}
                    )
                async with deploy(
                    settings, setup.processes, [], run.log_dir, MeteredWorker, PARTITIONS
                ) as deployment:
                    # Every process in every stage's group before the input comes, so each
                    # takes its share from the start (a backlog would go to the first to join).
                    groups = [settings.group_id, *(f"{settings.group_id}.{s}" for s in STAGES)]
                    await wait_until_stable(settings, groups, setup.processes)
                    metered = [w for w in deployment.workers if isinstance(w, MeteredWorker)]
                    before = [worker.counters(CPU) for worker in metered]  # start-up's CPU
                    deployment.joined_ms = int(time.time() * 1000)  # consumption starts now
                    stamps = await produce(deployment.producer, encode(settings, stream))
                    measured = await full_speed(
                        deployment, stream, reference.output_ids, quiet_s=QUIET_S
                    )
                    after = [worker.counters(CONFLICTS, APPLIED, CPU) for worker in metered]
                cpu_s = sum(a[CPU] - b[CPU] for a, b in zip(after, before, strict=True))
                figures[setup.name].append(
                    {
                        "per_second": measured.rate.per_second,
                        "missing_outputs": measured.missing,
                        "cas_conflicts": sum(c[CONFLICTS] for c in after),
                        "applied_per_process": [c[APPLIED] for c in after],
                        "cpu_ms_per_event": cpu_s * 1000 / len(stream),
                        # The input's own rate: the workers cannot go faster than it came.
                        "produced_per_second": len(stream)
                        * 1000
                        / max(1, max(stamps) - min(stamps)),
                    }
                )
    finally:
        await forget(standalone, run.id)
        await standalone.aclose()
    return summarize(run, len(stream), len(reference.output_ids), figures)


def summarize(
    run: Run, events: int, outputs: int, figures: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Per setup: the median rate, every round's, the conflicts; ratios to 1 process on the
    cluster, and the cluster's 1 process to the standalone one (all from this run)."""
    rates = {
        name: statistics.median(r["per_second"] for r in rounds) for name, rounds in figures.items()
    }
    setups = []
    for setup in SETUPS:
        rounds = figures[setup.name]
        setups.append(
            {
                "setup": setup.name,
                "label": setup.label,
                "cluster": setup.cluster,
                "processes": setup.processes,
                "per_second": rates[setup.name],
                "rounds_per_second": [r["per_second"] for r in rounds],
                "over_one_cluster_process": rates[setup.name] / rates["cluster1"],
                "missing_outputs_per_round": [r["missing_outputs"] for r in rounds],
                "cpu_ms_per_event": statistics.median(r["cpu_ms_per_event"] for r in rounds),
                "produced_per_second": statistics.median(r["produced_per_second"] for r in rounds),
                "cas_conflicts_per_round": [r["cas_conflicts"] for r in rounds],
                "applied_per_process_last_round": rounds[-1]["applied_per_process"],
            }
        )
    return {
        "input": {"orders": run.options.orders, "seed": run.options.seed, "events": events},
        "expected_outputs": outputs,
        "rounds": run.options.rounds,
        "topic_partitions": PARTITIONS,
        "redis_cluster": {"primaries": 3, "replicas": 0},
        "setups": setups,
        "ratios": {
            "cluster_over_standalone_one_process": rates["cluster1"] / rates["standalone1"],
            **{
                f"cluster_{n}_over_1_process": rates[f"cluster{n}"] / rates["cluster1"]
                for n in PROCESSES[1:]
            },
        },
    }


def table(results: dict[str, Any]) -> str:
    source = results["input"]
    lines = [
        f"{source['orders']} orders, {source['events']:,} input events on "
        f"{results['topic_partitions']} partitions; medians of {results['rounds']} round(s); "
        f"commit {results['commit']}",
        "",
        "| setup | events/s (rounds) | input produced at, events/s "
        "| / 1 process on the cluster | worker CPU ms per event "
        "| CAS conflicts per round | events applied per process (last round) "
        "| outputs missing per round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["setups"]:
        rounds = ", ".join(f"{rate:,.0f}" for rate in row["rounds_per_second"])
        conflicts = ", ".join(f"{count:.0f}" for count in row["cas_conflicts_per_round"])
        applied = ", ".join(f"{count:,.0f}" for count in row["applied_per_process_last_round"])
        missing = ", ".join(str(count) for count in row["missing_outputs_per_round"])
        lines.append(
            f"| {row['label']} | {row['per_second']:,.0f} ({rounds}) "
            f"| {row['produced_per_second']:,.0f} | {row['over_one_cluster_process']:.2f}x "
            f"| {row['cpu_ms_per_event']:.2f} "
            f"| {conflicts} | {applied} | {missing} |"
        )
    ratio = results["ratios"]["cluster_over_standalone_one_process"]
    lines += ["", f"1 process, cluster / standalone: {ratio:.2f}x"]
    return "\n".join(lines)


def main(options: Options, command: str) -> int:
    provenance = report.describe(report.commit())
    with (
        local_broker() as broker,
        local_redis(None) as redis_url,
        tempfile.TemporaryDirectory(prefix="scale-cluster-") as directory,
        local_cluster(Path(directory), masters=3, replicas_per_master=0) as cluster,
    ):
        run = Run(options, broker.bootstrap_servers, redis_url)
        figures = asyncio.run(measure_scale(run, cluster.url))
        shutil.rmtree(run.log_dir)  # kept if the run fails
    results = {**provenance, "command": command, **figures}
    print()
    print(table(results))
    print(f"\nwritten to {report.write(results, options.results_dir, '-scale')}")
    return 0
