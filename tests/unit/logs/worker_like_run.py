"""A run that writes what a worker writes, through every logger a worker has: the worker's
lines, the HTTP server's (uvicorn), a Kafka client failing to connect (aiokafka), asyncio, a Python
warning and, last, an uncaught exception. `python -m tests.unit.logs.worker_like_run FORMAT`."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import warnings

import httpx
from aiokafka import AIOKafkaConsumer

from worker.logs import (
    ProgressReporter,
    configure_logging,
    log_assigned,
    log_revoked,
    log_shutdown,
    log_startup,
)
from worker.observe import Health, Metrics, ObservabilityServer
from worker.settings import Settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run() -> None:
    settings = Settings(redis_url="redis://:s3cret@127.0.0.1:6379/0", sasl_password="hunter2")
    metrics = Metrics()
    server = ObservabilityServer(metrics, Health(["g"], 60, 1), "127.0.0.1", 0)
    await server.start()
    log_startup(settings, server.url)
    async with httpx.AsyncClient() as client:
        await client.get(f"{server.url}/health/ready")
    log_assigned("g", [("fulfillment.orders.v1", 0), ("fulfillment.tasks.v1", 0)])
    reporter = ProgressReporter(metrics, 60)
    metrics.applied("orders", 12)
    reporter.report()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}", request_timeout_ms=1000
    )
    try:
        await consumer.start()
    except Exception:
        logging.getLogger("worker.test").exception("the broker did not answer")
    finally:
        await consumer.stop()
    warnings.warn("a deprecated thing", DeprecationWarning, stacklevel=1)
    logging.getLogger("asyncio").error("a line from the standard library\nover two lines")
    log_revoked("g", [("fulfillment.orders.v1", 0)])
    await server.stop()
    log_shutdown(batch_finished=True, reason="SIGTERM")
    raise RuntimeError("and an uncaught exception")


if __name__ == "__main__":
    configure_logging(sys.argv[1], "DEBUG")  # type: ignore[arg-type]
    asyncio.run(run())
