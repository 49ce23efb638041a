"""The worker, wired from settings: the three stages' consumer loops, the producer they share and
the Redis store. `order-status run`, the demo and the tests start and stop it in-process.

A stage that fails with anything but a transient fault or a lost group membership stops the whole
worker (the other stages finish their batch in hand), without committing; `run` then raises, and
`order-status run` exits non-zero so the orchestrator restarts it and the input is read again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from starlette.routing import BaseRoute

from worker.config import mask_url
from worker.engine.errors import Fatal, starting
from worker.engine.observer import EngineObserver
from worker.engine.runner import ConsumerOptions, StageRunner
from worker.logs import ProgressReporter, log_shutdown, log_startup
from worker.observe import Health, Metrics, ObservabilityServer, broker_check, redis_check
from worker.pipeline import BatchReport, Limits, Pipeline, Topology
from worker.publish import Publisher
from worker.settings import Settings
from worker.stages.activity import ActivityStage
from worker.stages.base import Stage
from worker.stages.orders import OrdersStage
from worker.stages.services import ServicesStage
from worker.store.groups import RedisClient, StageStore
from worker.store.plan import PlanStore
from worker.store.reader import StageCounts, record_topology
from worker.topology import Partitions, ensure_topics
from worker.web import plan_routes

log = structlog.get_logger("worker.app")

BatchListener = Callable[[BatchReport], None]
CLIENT_ID = "order-status-worker"


def _security(settings: Settings) -> dict[str, Any]:
    """aiokafka's security options from the settings."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol.endswith("SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.sasl_mechanism is not None:
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username or "",
            sasl_plain_password=password,
        )
    return options


def _topologies(partitions: Partitions) -> dict[str, Topology]:
    return {
        "orders": Topology(partitions.orders, 0, partitions.services),
        "services": Topology(partitions.services, partitions.orders, partitions.activity),
        "activity": Topology(partitions.activity, partitions.services, 0),
    }


@dataclass
class Worker:
    """`serve_http`: serve metrics and health (and the plan view) on the configured address, and
    log progress: `order-status run` and `dev` do; tests need not."""

    settings: Settings
    redis: RedisClient
    on_batch: BatchListener | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    serve_http: bool = False
    runners: list[StageRunner] = field(default_factory=list)
    publisher: Publisher | None = None
    metrics: Metrics = field(default_factory=Metrics)
    server: ObservabilityServer | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        settings = self.settings
        groups = [consumer_group(settings, stage) for stage in settings.stages]
        self.health = Health(groups, settings.liveness_stall_s, settings.health_check_timeout_s)
        self.health.add_check("redis", redis_check(self.redis))
        self.observer = EngineObserver(self.metrics, self.health, self.on_batch)

    def _stages(self) -> list[Stage[Any, Any]]:
        """The configured stages, the downstream ones first: each is in its group and waiting
        for watermarks before the stage before it publishes anything."""
        settings = self.settings
        every: list[Stage[Any, Any]] = [
            ActivityStage(settings),
            ServicesStage(settings),
            OrdersStage(settings),
        ]
        return [stage for stage in every if stage.name in settings.stages]

    async def start(self) -> None:
        """Check the topics, start the producer and every stage's consumer loop."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        if self.serve_http:
            self.server = ObservabilityServer(
                self.metrics,
                self.health,
                settings.http_host,
                settings.http_port,
                self._plan_routes(),
            )
            await self.server.start()
            self._background.append(
                asyncio.create_task(
                    ProgressReporter(self.metrics, settings.progress_log_interval_s).run()
                )
            )
        log_startup(settings, self.server.url if self.server else None)
        security = _security(settings)

        async def check_topics() -> Partitions:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=settings.bootstrap_servers, client_id=CLIENT_ID, **security
            )
            await admin.start()
            try:
                return await ensure_topics(settings, admin)
            finally:
                await admin.close()

        deadline_s = settings.startup_deadline_s
        broker = f"the broker at {settings.bootstrap_servers}"
        partitions = await starting(check_topics, broker, deadline_s)
        counts = StageCounts(partitions.orders, partitions.services, partitions.activity)
        before = await starting(
            partial(record_topology, self.redis, settings.group_id, counts),
            f"Redis at {mask_url(settings.redis_url)}",
            deadline_s,
        )
        if before is not None:
            raise Fatal(
                f"the topics' partition counts changed from {before} to {counts}: the state in "
                "Redis is keyed by partition (see the README on changing partition counts)"
            )
        self.publisher = Publisher(
            settings.max_record_bytes,
            bootstrap_servers=settings.bootstrap_servers,
            client_id=CLIENT_ID,
            enable_idempotence=settings.producer_idempotence,
            **security,
        )
        await self.publisher.start()
        topologies = _topologies(partitions)
        limits = Limits(
            dead_letter_topic=settings.topics.dead_letter,
            max_record_bytes=settings.max_record_bytes,
            idle_ms=settings.max_task_idle_ms,
            idle_timeout_ms=settings.idle_timeout_ms,
            announce_interval_s=max(settings.max_task_idle_ms, 20) / 1000,
        )
        for stage in self._stages():
            group_id = (
                settings.group_id if stage.name == "orders" else f"{settings.group_id}.{stage.name}"
            )
            store: StageStore[Any] = StageStore(
                self.redis,
                settings.group_id,
                stage.name,
                stage.codec.encode,
                stage.codec.decode,
                settings.snapshot_cache_entries,
            )
            pipeline: Pipeline[Any, Any] = Pipeline(
                stage,
                store,
                self.publisher.publish,
                topologies[stage.name],
                limits,
                self.clock,
                self.observer.retried,
            )
            options = ConsumerOptions(
                bootstrap_servers=settings.bootstrap_servers,
                group_id=group_id,
                max_records=settings.batch_max_records,
                poll_timeout_ms=settings.batch_timeout_ms,
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_interval_ms=settings.max_poll_interval_ms,
                commit_interval_s=settings.commit_interval_ms / 1000,
                buffer_limit=settings.batch_max_records,
                security=security,
            )
            self.runners.append(StageRunner(pipeline, options, self.observer))
        for runner in self.runners:
            await runner.start()
            task = asyncio.create_task(runner.run(), name=f"stage {runner.pipeline.stage.name}")
            self._tasks.append(task)
        self.health.add_check("broker", broker_check(self.runners[0].consumer))

    def _plan_routes(self) -> list[BaseRoute]:
        """The plan view over this worker's Redis, unless it would be open to the network: on an
        address other than loopback it needs a token or basic-auth credentials."""
        settings = self.settings
        if not (settings.web.protected or _is_loopback(settings.http_host)):
            log.warning(
                "plan view not served: it would be open to the network without credentials",
                http_host=settings.http_host,
                set="ORDER_STATUS_WEB__BEARER_TOKEN, or ORDER_STATUS_WEB__BASIC_USERNAME and "
                "ORDER_STATUS_WEB__BASIC_PASSWORD",
            )
            return []
        return plan_routes(
            PlanStore(self.redis, settings.group_id),
            settings.web,
            timeline_limit=settings.web.timeline_events,
        )

    def request_stop(self) -> None:
        """SIGTERM: every stage stops after the batch in hand."""
        log.info("stop requested: finishing the batch in hand")
        for runner in self.runners:
            runner.stop()

    def failed(self, error: BaseException) -> None:
        """The one line that says why the worker stops without committing."""
        self.metrics.fatal(error)
        log.error("worker stopping on an error", error=repr(error), exc_info=error)
        log_shutdown(False, f"{type(error).__name__}: {error}")

    async def wait(self) -> None:
        """Until every stage stopped. When one fails, the others are stopped (each after its
        batch in hand) and the failure is raised."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        await self.stop()

    async def stop(self) -> None:
        """Stop every stage after its batch in hand (a batch still running after the grace period
        is cancelled: nothing of it is committed), then the producer. A stage's failure is
        raised."""
        for runner in self.runners:
            runner.stop()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s)
            for task in late:
                log.warning("batch in hand not finished in time: cancelled", task=task.get_name())
                task.cancel()
            await asyncio.wait(self._tasks)
        if self.publisher is not None:
            await self.publisher.stop()
        for task in self._background:
            task.cancel()
        if self.server is not None:
            await self.server.stop()
        failures = [
            error
            for task in self._tasks
            if not task.cancelled() and (error := task.exception()) is not None
        ]
        if failures:
            raise failures[0]
        cancelled = any(task.cancelled() for task in self._tasks)
        log_shutdown(not cancelled, "stop requested")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def consumer_group(settings: Settings, stage: str) -> str:
    """The orders stage uses the configured group; the others `<group>.<stage>`."""
    return settings.group_id if stage == "orders" else f"{settings.group_id}.{stage}"
