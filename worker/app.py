"""The FastStream application: one batch subscriber on the inbound topics, the outbound publishers,
and the Redis store, wired from settings. The batch flow itself is in `worker.pipeline`."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import structlog
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from redis.asyncio import Redis

from schemas.internal import ServiceEvent
from schemas.outbound import OpsEvent, ServiceStatusEvent, StatusEvent
from worker.pipeline import BatchReport, Consumer, Pipeline
from worker.publish import Publisher
from worker.scheduler import expire_due, run_periodically
from worker.settings import Settings
from worker.store.snapshots import Stores

log = structlog.get_logger("worker.app")

BatchListener = Callable[[BatchReport], None]


def _security(settings: Settings) -> BaseSecurity | None:
    if settings.security_protocol == "PLAINTEXT":
        return None
    use_ssl = settings.security_protocol.endswith("SSL")
    context = ssl.create_default_context(cafile=settings.ssl_cafile) if use_ssl else None
    if settings.sasl_mechanism is None:
        return BaseSecurity(ssl_context=context, use_ssl=use_ssl)
    username = settings.sasl_username or ""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        settings.sasl_mechanism
    ]
    return sasl(username, password, ssl_context=context, use_ssl=use_ssl)


async def _undecoded(message: KafkaMessage) -> KafkaMessage:
    """The batch itself as the handler's body. FastStream's decoder would JSON-decode every record;
    the pipeline reads and validates the raw records itself (`worker.pipeline.decode`)."""
    return message


def _consumer(message: KafkaMessage) -> Consumer:
    # FastStream types it as its minimal protocol; it is the subscriber's AIOKafkaConsumer.
    return cast("Consumer", message.consumer)


CLIENT_ID = "order-status-worker"


def create_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_servers,
        enable_idempotence=settings.producer_idempotence,
        security=_security(settings),
        client_id=CLIENT_ID,
        logger=None,  # the pipeline logs what happened to each batch through structlog
        # Handlers take the batch as it comes: resolving a `KafkaMessage` parameter through
        # FastDepends ran a function in a worker thread for every batch.
        apply_types=False,
    )


@dataclass(frozen=True, slots=True)
class Worker:
    """The built worker. `app` runs all of it (`order-status run`): consumers, publisher and the
    housekeeping timer. `start` and `stop` run the consumers and the publisher only, for callers
    that drive time themselves (the demo, tests, the profiler)."""

    app: FastStream
    broker: KafkaBroker
    publisher: Publisher

    async def start(self) -> None:
        await self.publisher.start()
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()  # finishes the batch in hand, which may still publish
        await self.publisher.stop()


def build_app(
    settings: Settings,
    redis: Redis,
    on_batch: BatchListener | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Worker:
    """The worker as a FastStream app: the order stage, the service stage and the term-expiry
    scheduler. `on_batch` sees every processed batch's report; `clock` is the scheduler's now."""
    broker = create_broker(settings)
    # The broker consumes; the outputs go out through our own producer, a record batch per
    # partition (worker.publish). The broker's publishers are declared for the AsyncAPI document.
    publisher = Publisher(
        settings.bootstrap_servers,
        client_id=CLIENT_ID,
        enable_idempotence=settings.producer_idempotence,
        security=_security(settings),
    )
    topics = settings.topics
    # Declared so the AsyncAPI document lists what the worker publishes.
    broker.publisher(
        topics.order_status,
        title="order-status",
        schema=StatusEvent,
        description="One event per entity whose state changed, child before parent.",
    )
    broker.publisher(
        topics.service_status,
        title="service-status",
        schema=ServiceStatusEvent,
        description="Service fulfillment status and account, product and location "
        "activity, for billing.",
    )
    broker.publisher(
        topics.ops,
        title="ops",
        schema=OpsEvent,
        description="Fallout, refused commands and stale updates, for operations.",
    )
    broker.publisher(
        topics.dead_letter,
        title="dead-letter",
        description="Records that could not be read or validated, bytes untouched.",
    )
    broker.publisher(
        topics.service_actions,
        title="service-actions (internal)",
        schema=ServiceEvent,
        description="The order stage to the service stage, "
        "keyed by service id; also the expiry scheduler's term ends.",
    )

    stores = Stores(redis, settings.snapshot_cache_entries)
    pipeline = Pipeline(settings, stores, publisher.publish)

    def batch_subscriber(*names: str, group_id: str, title: str) -> BatchSubscriber:
        # The pipeline commits offsets itself, after the batch's outputs are acknowledged. The
        # range assignor gives one instance partition p of every topic: the merge needs it.
        return broker.subscriber(
            *names,
            batch=True,
            group_id=group_id,
            title=title,
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_records=settings.batch_max_records,
            batch_timeout_ms=settings.batch_timeout_ms,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            ack_policy=AckPolicy.MANUAL,
            decoder=_undecoded,
        )

    @batch_subscriber(*topics.inbound, group_id=settings.group_id, title="fulfillment-inbound")
    async def consume_orders(message: KafkaMessage) -> None:
        _finish(await pipeline.process_orders(message.raw_message, _consumer(message)))

    @batch_subscriber(
        topics.service_actions,
        topics.billing,
        title="services-inbound",
        group_id=f"{settings.group_id}.services",
    )
    async def consume_services(message: KafkaMessage) -> None:
        _finish(await pipeline.process_services(message.raw_message, _consumer(message)))

    def _finish(report: BatchReport) -> None:
        # Refusals and stale updates are also logged one by one at info, with their ids. Counting
        # them walks every output of the batch: only when the line is written.
        if log.is_enabled_for(logging.DEBUG):
            log.debug(
                "batch done",
                records=report.records,
                entities=report.entities,
                published=report.published,
                dead_lettered=report.dead_lettered,
                refused=report.count("command.rejected"),
                stale=report.count("update.stale"),
            )
        if on_batch is not None:
            on_batch(report)

    scheduler: list[asyncio.Task[None]] = []

    async def expire_term_ends(now: datetime) -> int:
        return await expire_due(pipeline.term_ends, publisher.publish, topics.service_actions, now)

    async def start_scheduler() -> None:
        jobs = [expire_term_ends, pipeline.expire_parked]
        scheduler.append(
            asyncio.create_task(run_periodically(jobs, clock, settings.expiry_interval_s))
        )

    async def stop_scheduler() -> None:
        for task in scheduler:
            task.cancel()

    app = FastStream(
        broker,
        logger=None,
        on_startup=[publisher.start],
        after_startup=[start_scheduler],
        on_shutdown=[stop_scheduler],
        # After the broker stopped: the batch in hand has finished publishing and writing.
        after_shutdown=[publisher.stop, redis.aclose],
    )
    return Worker(app, broker, publisher)
