"""Helpers for tests that talk to the real broker and Redis: publish raw CloudEvents, read topics,
run the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.app import Worker
from worker.config import redis_client
from worker.dev import create_topics
from worker.engine.control import CONTROL, WATERMARK
from worker.pipeline import BatchReport
from worker.settings import Settings, Topics
from worker.simulate import Simulation
from worker.store.groups import RedisClient
from worker.store.reader import Snapshots

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunningWorker:
    settings: Settings
    reports: list[BatchReport] = field(default_factory=list)
    worker: Worker | None = None
    _batch: asyncio.Event = field(default_factory=asyncio.Event)

    def report(self, report: BatchReport) -> None:
        self.reports.append(report)
        self._batch.set()

    def records(self, stage: str) -> int:
        """How many records the stage has processed so far."""
        return sum(report.records for report in self.reports if report.stage == stage)

    async def applied(self, stage: str, events: int, timeout_s: float = 30.0) -> None:
        """Until the stage has applied this many events (batches finished)."""
        async with asyncio.timeout(timeout_s):
            while sum(r.applied for r in self.reports if r.stage == stage) < events:
                self._batch.clear()
                await self._batch.wait()


async def eventually(
    check: Callable[[], Awaitable[T]], expected: T, timeout_s: float = 20.0, every_s: float = 0.2
) -> None:
    """Until `check()` answers `expected`: for what can only be polled (an HTTP endpoint)."""
    answer = None
    try:
        async with asyncio.timeout(timeout_s):
            while (answer := await check()) != expected:  # noqa: ASYNC110 - nothing to wait on
                await asyncio.sleep(every_s)
    except TimeoutError:
        pytest.fail(f"still {answer!r}, not {expected!r}, after {timeout_s}s")


async def new_settings(bootstrap_servers: str, redis_url: str) -> Settings:
    """Settings of a worker of its own: topics (created here), consumer group and namespace."""
    run = uuid.uuid4().hex[:8]
    topics = Topics(**{name: f"{value}.{run}" for name, value in Topics().model_dump().items()})
    settings = Settings(
        bootstrap_servers=bootstrap_servers,
        redis_url=redis_url,
        group_id=f"worker-{run}",
        topics=topics,
        producer_idempotence=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
        batch_timeout_ms=20,
        log_format="console",
    )
    await create_topics(settings)
    return settings


def is_control(headers: Sequence[tuple[str, bytes | None]]) -> bool:
    """A watermark on an internal topic (no event of its own)."""
    return (CONTROL, WATERMARK) in headers


def snapshots(redis: RedisClient, settings: Settings) -> Snapshots:
    """The worker's snapshots, found by id (state is kept per partition)."""
    return Snapshots(redis, settings.group_id)


async def assert_snapshots_equal(
    redis: RedisClient, settings: Settings, reference: Simulation
) -> None:
    """Every order, service and account/product/location record in Redis is the simulator's."""
    reader = snapshots(redis, settings)
    for order_id, record in reference.records.items():
        assert await reader.order(order_id) == record, order_id
    for service_id, service in reference.services.items():
        assert await reader.service(service_id) == service, service_id
    for key, activity in reference.activity.items():
        kind, owner = key.split(":", 1)
        assert await reader.activity(kind, owner) == activity, key  # type: ignore[arg-type]


async def outbox_entries(redis: RedisClient, settings: Settings) -> int:
    """How many outputs the worker's outboxes still hold (not acknowledged by the broker)."""
    total = 0
    async for key in redis.scan_iter(match=f"{{{settings.group_id}:*}}:outbox"):
        total += await redis.llen(key)
    return total


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[RunningWorker]:
    running = RunningWorker(settings)
    redis = redis_client(settings)  # with the configured timeouts, as `order-status run` has it
    worker = running.worker = Worker(settings, redis, running.report)
    if clock is not None:
        worker.clock = clock
    await worker.start()
    try:
        yield running
    finally:
        await worker.stop()
        await redis.aclose()


async def publish(
    producer: AIOKafkaProducer, settings: Settings, events: list[dict[str, Any]]
) -> None:
    """Publish CloudEvents as raw JSON bytes on the topic each type belongs on, keyed by order."""
    for event in events:
        await producer.send_and_wait(
            settings.topics.for_event(event["type"]),
            json.dumps(event).encode(),
            key=event["data"]["order_id"].encode(),
        )


@dataclass
class Consumed:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp: int

    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.value)
        return loaded


async def consume_until(
    settings: Settings,
    topics: list[str],
    done: Callable[[list[Consumed]], bool],
    timeout_s: float = 20.0,
) -> list[Consumed]:
    """Read the topics from the start until `done` holds for everything read so far."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[Consumed] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(seen):
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    seen.extend(
                        Consumed(r.topic, r.key, r.value, dict(r.headers), r.timestamp)
                        for r in records
                    )
    except TimeoutError:
        pytest.fail(f"timed out after {timeout_s}s with {len(seen)} record(s) read from {topics}")
    finally:
        await consumer.stop()
    return seen


def event(
    type_: str,
    data: dict[str, Any],
    *,
    id_: str | None = None,
    time: str | None = None,
    sequence: int | None = None,
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": id_ or unique("evt"),
        "source": "/tests",
        "type": type_,
        "time": time or "2026-11-21T10:00:00Z",
        "data": data,
    }
    if sequence is not None:
        envelope["sequence"] = sequence
    return envelope


def worker_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes `order-status run` use these settings."""
    env = {
        **os.environ,
        "ORDER_STATUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "ORDER_STATUS_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "ORDER_STATUS_GROUP_ID": settings.group_id,
        "ORDER_STATUS_PRODUCER_IDEMPOTENCE": "false",
        "ORDER_STATUS_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "ORDER_STATUS_HEARTBEAT_INTERVAL_MS": str(settings.heartbeat_interval_ms),
        "ORDER_STATUS_MAX_TASK_IDLE_MS": str(settings.max_task_idle_ms),
        "ORDER_STATUS_STARTUP_DEADLINE_S": str(settings.startup_deadline_s),
        "ORDER_STATUS_LOG_FORMAT": "json",
        "ORDER_STATUS_LOG_LEVEL": "WARNING",
        "ORDER_STATUS_HTTP_PORT": "0",  # several workers on one machine: each its own port
        **{
            f"ORDER_STATUS_TOPICS__{name.upper()}": topic
            for name, topic in settings.topics.model_dump().items()
        },
    }
    env.update(overrides)
    return env


class WorkerProcess:
    """`order-status run` as a child process, to be killed and restarted like a real deployment
    (`module`: another entry point that runs it, such as one that dies at a given step)."""

    def __init__(self, env: dict[str, str], log_path: str, module: str = "worker.cli") -> None:
        self._env = env
        self._log_path = log_path
        self._module = module
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self._module, "run"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log, for a failing test's message (the log itself is in tmp_path)."""
        with open(self._log_path, "rb") as log:
            tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
        return "\n".join([f"--- {self._log_path}", *tail])

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as an orchestrator stops a pod; the exit code. The worker may take up to
        `ORDER_STATUS_SHUTDOWN_GRACE_S` (15 s) for the batch in hand, then leaves its groups:
        waiting only 15 s failed a clean stop during a rebalance (once, on CI)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)
