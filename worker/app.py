"""The FastStream application: one batch subscriber on the inbound topics, the outbound publishers,
and the Redis store, wired from settings. The batch flow itself is in `worker.pipeline`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import structlog
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from redis.asyncio import Redis

from schemas.outbound import OpsEvent, StatusEvent
from worker.pipeline import BatchReport, Pipeline
from worker.settings import Settings
from worker.store.orders import OrderStore

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


def create_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_servers,
        enable_idempotence=settings.producer_idempotence,
        security=_security(settings),
        client_id="order-status-worker",
        logger=None,  # the pipeline logs what happened to each batch through structlog
    )


def build_app(
    settings: Settings, redis: Redis, on_batch: BatchListener | None = None
) -> tuple[FastStream, KafkaBroker]:
    """The worker as a FastStream app; `on_batch` sees every processed batch's report."""
    broker = create_broker(settings)
    # Declared so the AsyncAPI document lists what the worker publishes.
    broker.publisher(
        settings.topics.order_status,
        title="order-status",
        schema=StatusEvent,
        description="One event per entity whose state changed, child before parent.",
    )
    broker.publisher(
        settings.topics.ops,
        title="ops",
        schema=OpsEvent,
        description="Fallout, refused commands and stale updates, for operations.",
    )
    broker.publisher(
        settings.topics.dead_letter,
        title="dead-letter",
        description="Records that could not be read or validated, bytes untouched.",
    )

    async def send(
        topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[Any]:
        return await broker.publish(value, topic, key=key, headers=headers, no_confirm=True)

    pipeline = Pipeline(settings, OrderStore(redis), send)

    @broker.subscriber(
        *settings.topics.inbound,
        batch=True,
        group_id=settings.group_id,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        ack_policy=AckPolicy.MANUAL,
        title="fulfillment-inbound",
    )
    async def consume(message: KafkaMessage) -> None:
        report = await pipeline.process(message.raw_message)
        await message.ack()  # commits offsets only now, after every output was acknowledged
        log.debug(
            "batch done",
            records=report.records,
            orders=report.orders,
            published=report.published,
            dead_lettered=report.dead_lettered,
        )
        if on_batch is not None:
            on_batch(report)

    async def close_redis() -> None:
        await redis.aclose()

    app = FastStream(broker, logger=None, on_shutdown=[close_redis])
    return app, broker
