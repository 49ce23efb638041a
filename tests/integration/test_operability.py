"""A running worker as operations see it: `/metrics` moves by what happened (events applied, dead
letters by reason, refusals, lag back to zero), readiness follows the assignment, and liveness
fails while Redis is blocked past the stall threshold and recovers after."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.integration.harness import consume_until, event, eventually, publish, unique
from worker.app import Worker
from worker.embedded import embedded_redis
from worker.settings import Settings

pytestmark = pytest.mark.integration


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def scrape(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text


async def probe(url: str, which: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/health/{which}")).status_code


async def test_metrics_move_by_what_the_worker_did_and_lag_falls_to_zero(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    settings = settings.model_copy(update={"http_port": 0})
    worker = Worker(settings, Redis.from_url(settings.redis_url), serve_http=True)
    await worker.start()
    try:
        assert worker.server is not None
        url = worker.server.url
        await eventually(lambda: probe(url, "ready"), 200)  # every stage has its partitions
        order_id = unique("O")
        created = {"order_id": order_id, "state": "new", "line_items": []}
        events = [
            event("order.created", created),
            event("order.resumed", {"order_id": order_id}, time="2026-11-21T10:01:00Z"),
        ]
        await publish(producer, settings, events)  # the resume is refused: not on hold
        await producer.send_and_wait(settings.topics.orders, b"not json", key=order_id.encode())
        await consume_until(settings, [settings.topics.dead_letter], lambda seen: bool(seen))
        await consume_until(settings, [settings.topics.ops], lambda seen: bool(seen))

        async def settled() -> bool:
            text = await scrape(url)
            lag = samples(text, "order_status_consumer_lag_records", group=settings.group_id)
            applied = samples(text, "order_status_events_applied_total", stage="orders")
            return applied >= 2 and lag == 0

        await eventually(settled, True)
        text = await scrape(url)
        assert samples(text, "order_status_dead_letters_total", reason="unreadable") == 1
        assert samples(text, "order_status_refusals_total", stage="orders") == 1
        assert samples(text, "order_status_records_consumed_total", stage="orders") == 3
        published = "order_status_outputs_published_total"
        assert samples(text, published, type="order.state.changed") == 1
        assert samples(text, published, type="command.rejected") == 1
        assert samples(text, published, type="dead-letter") == 1
        assert samples(text, "order_status_batch_duration_seconds_count", stage="orders") >= 1
        assert await probe(url, "live") == 200
    finally:
        await worker.stop()
        await worker.redis.aclose()


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A Redis of this test's own, to pause (never the shared one)."""
    with embedded_redis() as url:
        yield url


async def test_liveness_fails_while_redis_is_blocked_with_lag_and_recovers(
    settings: Settings, producer: AIOKafkaProducer, private_redis: str
) -> None:
    url = private_redis
    settings = settings.model_copy(
        update={
            "http_port": 0,
            "redis_url": url,
            "liveness_stall_s": 1.0,
            "redis_socket_timeout_s": 0.5,
        }
    )
    redis = Redis.from_url(url)
    worker = Worker(settings, redis, serve_http=True)
    await worker.start()
    try:
        assert worker.server is not None
        base = worker.server.url
        order_id = unique("O")
        await publish(producer, settings, [event("order.created", {"order_id": order_id})])
        await consume_until(settings, [settings.topics.order_status], lambda seen: bool(seen))
        await redis.client_pause(4000, all=True)  # no answers for 4 s
        more = event("order.approved", {"order_id": order_id}, time="2026-11-21T10:05:00Z")
        await producer.send_and_wait(
            settings.topics.orders, json.dumps(more).encode(), key=order_id.encode()
        )
        await eventually(lambda: probe(base, "live"), 503)  # lag, and no batch finishes
        await eventually(lambda: probe(base, "live"), 200)  # Redis answers: the batch finishes
    finally:
        await worker.stop()
        await redis.aclose()
