"""Measuring the worker as it is deployed: `order-status run` processes on a fresh topic set, fed
by the benchmark, their outputs read back with the broker's record timestamps.

Times come from record timestamps (the producer's clock at send, on this one machine): an input's
is when the benchmark produced it, an output's when the worker published it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bench.baseline import Rate
from bench.generator import Event
from tests.integration.harness import WorkerProcess, worker_env
from worker.dev import create_topics
from worker.embedded import free_port
from worker.engine.control import CONTROL, WATERMARK
from worker.rules import Profile
from worker.settings import Settings
from worker.simulate import simulate

Encoded = tuple[str, bytes, bytes]
"""A record to produce: topic, key, value."""

# The schedules the worker keeps in Redis are global sorted sets under this prefix.
SCHEDULES = "order-status:*"

PACING_TICK_S = 0.002


def encode(settings: Settings, events: Iterable[Event]) -> list[Encoded]:
    """Each event as its upstream system publishes it: on its type's topic, keyed by order."""
    return [
        (
            settings.topics.for_event(event["type"]),
            event["data"]["order_id"].encode(),
            json.dumps(event).encode(),
        )
        for event in events
    ]


async def produce(
    producer: AIOKafkaProducer, records: Sequence[Encoded], rate: float | None = None
) -> list[int]:
    """Send the records as fast as the producer takes them, or paced at `rate` per second; each
    record's timestamp (ms) once the broker has acknowledged it."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    acks = []
    for index, (topic, key, value) in enumerate(records):
        # Sleeping at most once per PACING_TICK_S: a sleep per record took a fifth of a core.
        if rate is not None and (delay := start + index / rate - loop.time()) > PACING_TICK_S:
            await asyncio.sleep(delay)
        acks.append(await producer.send(topic, value, key=key))
    return [metadata.timestamp for metadata in await asyncio.gather(*acks)]


@contextlib.asynccontextmanager
async def producing(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_idempotence=settings.producer_idempotence,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


CPU = "process_cpu_seconds_total"


class MeteredWorker(WorkerProcess):
    """`order-status run` serving its metrics on a port of its own, read before it stops."""

    def __init__(self, env: dict[str, str], log_path: str) -> None:
        self.port = free_port()
        super().__init__({**env, "ORDER_STATUS_HTTP_PORT": str(self.port)}, log_path)

    def counters(self, *names: str) -> dict[str, float]:
        """Each counter's sum over its labels."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        sums = dict.fromkeys(names, 0.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in sums:
                    sums[sample.name] += sample.value
        return sums


@dataclass(frozen=True)
class Reference:
    """What the reference model (`worker.simulate`) says a stream produces: its output ids, and
    which of its inputs cause an output. Streams generated from the same spec with another prefix
    have the same shape, so the causes carry over (`causes_in`)."""

    output_ids: frozenset[str]
    causes: frozenset[str]
    """Input ids with at least one output, without the prefix."""
    cpu_s: float
    """The CPU the reference model took: the worker's own code (decoding and validating, the
    rules, serialising outputs) over every input, without Kafka or Redis."""

    @classmethod
    def of(cls, events: Sequence[Event], prefix: str, profile: Profile) -> Reference:
        settings = Settings(default_profile=profile)
        lines = [json.dumps(event) for event in events]
        started = time.process_time()
        emitted = simulate(lines, settings).emitted
        cpu_s = time.process_time() - started
        inputs = {event["id"] for event in events}
        causes = {event["data"].get("caused_by") for event in emitted} & inputs
        return cls(
            frozenset(event["id"] for event in emitted),
            frozenset(cause.removeprefix(prefix) for cause in causes),
            cpu_s,
        )

    def causes_in(self, events: Iterable[Event], prefix: str) -> frozenset[str]:
        """The ids of the events (of a stream of this shape, with `prefix`) that cause an output."""
        return frozenset(e["id"] for e in events if e["id"].removeprefix(prefix) in self.causes)


@dataclass
class Outputs:
    """Every record on the worker's outbound topics, read from the start in the background: each
    output's timestamp by id, and the earliest output's timestamp by cause (`data.caused_by`)."""

    settings: Settings
    stamps: dict[str, int] = field(default_factory=dict)
    first_by_cause: dict[str, int] = field(default_factory=dict)

    async def read(self) -> None:
        topics = self.settings.topics
        consumer = AIOKafkaConsumer(
            topics.order_status,
            topics.ops,
            topics.service_status,
            topics.service_actions,
            topics.activity_inputs,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for record in (record for records in batches.values() for record in records):
                    if (CONTROL, WATERMARK) not in record.headers:  # watermarks carry no event
                        self._add(json.loads(record.value), record.timestamp)
        finally:
            await consumer.stop()

    def _add(self, event: Event, stamp: int) -> None:
        self.stamps.setdefault(event["id"], stamp)
        cause = event["data"].get("caused_by")
        if cause is not None:
            self.first_by_cause[cause] = min(stamp, self.first_by_cause.get(cause, stamp))


@dataclass
class Deployment:
    """Worker processes in one consumer group on their own topics, and their outputs."""

    settings: Settings
    workers: list[WorkerProcess]
    outputs: Outputs
    reader: asyncio.Task[None]
    producer: AIOKafkaProducer
    log_dir: Path
    started_ms: int = 0
    """When the processes were started (epoch ms, comparable with record timestamps)."""
    joined_ms: int = 0
    """When their consumer group first became stable: consumption starts right after."""

    async def wait_for(
        self,
        expected: Set[str],
        seen: Mapping[str, int],
        what: str,
        timeout_s: float,
        quiet_s: float | None = None,
    ) -> None:
        """Until every id in `expected` is in `seen` (outputs by id, or by cause), or, given
        `quiet_s`, until nothing new has arrived for that long since the first arrived."""
        deadline = time.monotonic() + timeout_s
        count, changed = len(seen), time.monotonic()
        while not expected <= seen.keys():
            self._check_running(what)
            if len(seen) != count:
                count, changed = len(seen), time.monotonic()
            elif quiet_s is not None and seen and time.monotonic() - changed > quiet_s:
                return
            if time.monotonic() > deadline:
                missing = sorted(expected - seen.keys())
                raise TimeoutError(
                    f"{what}: {len(missing)} of {len(expected)} still missing after {timeout_s}s, "
                    f"first {missing[:3]}; worker logs in {self.log_dir}"
                )
            await asyncio.sleep(0.05)

    def _check_running(self, what: str) -> None:
        if self.reader.done():
            self.reader.result()  # raises what stopped the reader
            raise RuntimeError(f"the output reader stopped: {what}")
        for worker in self.workers:
            assert worker.process is not None
            if worker.process.poll() is not None:
                raise RuntimeError(
                    f"a worker exited with {worker.process.returncode}: {what}; "
                    f"logs in {self.log_dir}"
                )

    def peak_rss_mib(self) -> list[float]:
        """Each worker process's peak resident set size so far (VmHWM), in MiB."""
        peaks = []
        for worker in self.workers:
            assert worker.process is not None
            status = Path(f"/proc/{worker.process.pid}/status").read_text()
            kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
            peaks.append(int(kib) / 1024)
        return peaks


Launch = Callable[[dict[str, str], str], WorkerProcess]
"""A worker process from its environment (the worker's settings) and its log file's path."""


@contextlib.asynccontextmanager
async def deploy(
    settings: Settings,
    processes: int,
    backlog: Sequence[Event],
    log_dir: Path,
    launch: Launch = WorkerProcess,
    partitions: int = 4,
) -> AsyncIterator[Deployment]:
    """Produce `backlog` to fresh topics, then start `processes` workers on them in one consumer
    group. Everything is on the broker before a worker fetches, as after an outage: the worker
    merges its topics exactly in event-time order, and its outputs are the reference model's.
    `launch` makes something else than `order-status run` the worker (bench/quix_baseline.py);
    `partitions`: of every topic (bench/scale.py shares six between 1, 2 and 3 processes)."""
    await create_topics(settings, partitions)
    env = worker_env(settings)
    workers = [
        launch(env, str(log_dir / f"{settings.group_id}-{number}.log"))
        for number in range(processes)
    ]
    outputs = Outputs(settings)
    reader = asyncio.create_task(outputs.read())
    try:
        async with producing(settings) as producer:
            await produce(producer, encode(settings, backlog))
            deployment = Deployment(settings, workers, outputs, reader, producer, log_dir)
            deployment.started_ms = _now_ms()
            for worker in workers:
                worker.start()
            try:
                await _wait_until_joined(settings)
                deployment.joined_ms = _now_ms()
                yield deployment
            finally:
                for worker in workers:
                    _stop(worker)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _wait_until_joined(settings: Settings) -> None:
    await wait_until_stable(settings, [settings.group_id], 1)


async def wait_until_stable(
    settings: Settings, groups: Sequence[str], members: int, timeout_s: float = 60
) -> None:
    """Until each consumer group is stable with at least `members` members (Tansu answers with
    the group's state; its assignments it leaves empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        async with asyncio.timeout(timeout_s):
            for group in groups:
                state: tuple[str, int] | None = None
                while state is None or state[0] != "Stable" or state[1] < members:
                    await asyncio.sleep(0.02)
                    state = await _state(admin, group)
    finally:
        await admin.close()


async def _state(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int] | None:
    """A group's state and member count (asked one group at a time: Tansu garbles the answer
    about several)."""
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError:  # Tansu drops the connection now and then while a group forms
        return None
    _, _, state, _, _, members = response.groups[0]
    return state, len(members)


def _stop(worker: WorkerProcess) -> None:
    try:
        worker.terminate()
    except subprocess.TimeoutExpired:
        worker.kill()


@dataclass(frozen=True)
class FullSpeed:
    rate: Rate
    """From the group join (consumption starts) to the last output."""
    span: Rate
    """From the first output to the last (what the first output waited for is not counted)."""
    startup_s: float
    """From starting the processes to the group join: interpreter, imports, connections, join."""
    first_output_s: float
    """From starting the processes to the first output."""
    wall_s: float
    """From starting the processes to the last output."""
    missing: int = 0
    """Expected outputs that never came (only where `full_speed` was given `quiet_s`)."""


async def full_speed(
    deployment: Deployment,
    backlog: Sequence[Event],
    expected: frozenset[str],
    quiet_s: float | None = None,
) -> FullSpeed:
    """Wait until the workers have published every output the reference model expects of the
    backlog (or, given `quiet_s`, until outputs stop coming for that long); time them from the
    group join to the last expected output's timestamp."""
    outputs = deployment.outputs
    await deployment.wait_for(expected, outputs.stamps, "full-speed outputs", 240, quiet_s)
    stamps = [outputs.stamps[output_id] for output_id in expected if output_id in outputs.stamps]
    first, last = min(stamps), max(stamps)
    started, joined = deployment.started_ms, deployment.joined_ms
    return FullSpeed(
        rate=Rate(len(backlog), (last - joined) / 1000),
        span=Rate(len(backlog), (last - first) / 1000),
        startup_s=(joined - started) / 1000,
        first_output_s=(first - started) / 1000,
        wall_s=(last - started) / 1000,
        missing=len(expected - outputs.stamps.keys()),
    )


@dataclass(frozen=True)
class Latency:
    load: float
    """The input rate as a fraction of the measured single-process maximum."""
    rate_per_second: float
    events: int
    seconds: float
    matched: int
    """Inputs with an output (the latencies are theirs)."""
    unmatched: int
    """Inputs the reference model gives an output that got none here (see BENCHMARKS.md)."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_event: float | None = None
    """The worker process's CPU over the phase (all its stages) per input event."""


async def paced(
    deployment: Deployment,
    events: Sequence[Event],
    causes: frozenset[str],
    load: float,
    rate: float,
) -> Latency:
    """Produce at `rate` per second to the running workers; per input with an output, the time
    from its timestamp to its first output's."""
    records = encode(deployment.settings, events)
    stamps = await produce(deployment.producer, records, rate)
    sent: dict[str, int] = {}
    for event, stamp in zip(events, stamps, strict=True):
        sent.setdefault(event["id"], stamp)  # a duplicate's output, if any, is its original's
    first = deployment.outputs.first_by_cause
    # The worker gives the reference model's outputs whatever the arrival order, but another
    # contender (bench/quix_baseline.py) may not: stop waiting once the outputs stop coming, and
    # count what never came (`unmatched`).
    await deployment.wait_for(causes, first, "paced inputs' outputs", 120, quiet_s=5)
    delays = sorted(first[cause] - stamp for cause, stamp in sent.items() if cause in first)
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return Latency(
        load=load,
        rate_per_second=rate,
        events=len(events),
        seconds=(max(stamps) - min(stamps)) / 1000,
        matched=len(delays),
        unmatched=len(causes - first.keys()),
        p50_ms=cuts[49],
        p95_ms=cuts[94],
        p99_ms=cuts[98],
        max_ms=delays[-1],
    )


async def redis_footprint(redis: Redis, marker: str) -> tuple[int, int]:
    """How many keys hold `marker` in their name, and their bytes (MEMORY USAGE, every field)."""
    keys = [key async for key in redis.scan_iter(match=f"*{marker}*", count=1000)]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes: list[int | None] = await pipe.execute()
    return len(keys), sum(size or 0 for size in sizes)


async def forget(redis: Redis, marker: str) -> None:
    """Delete every key with `marker` in its name, and every schedule member naming it."""
    keys = [key async for key in redis.scan_iter(match=f"*{marker}*", count=1000)]
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    async for schedule in redis.scan_iter(match=SCHEDULES, _type="zset"):
        members = [m async for m, _ in redis.zscan_iter(schedule, match=f"*{marker}*")]
        if members:
            await redis.zrem(schedule, *members)
