"""`order-status dev`: the worker on embedded services, fed the demo scenario, with a timeline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from worker.app import Worker
from worker.embedded import local_broker, local_redis
from worker.logs import configure_logging
from worker.render import order_tree, service_view, timeline_line
from worker.rules.states import OrderState, order_is_final
from worker.settings import Settings
from worker.store.reader import Snapshots, topology_key
from worker.web.ids import id_path

DEMO_TIMEOUT_S = 60.0
DEMO_GROUP = "order-status-dev"
"""The demo's group id and Redis namespace, made unique per run (the broker is new each run)."""
# Upstream systems publish minutes apart; pacing the feed keeps the demo's topics from interleaving.
DEMO_PACE_S = 0.15


async def create_topics(settings: Settings, partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, partitions, replication_factor=1) for topic in settings.topics.all]
        )
    finally:
        await admin.close()


async def clear_namespace(redis: Redis, namespace: str) -> None:
    """Delete every key a worker of this group id keeps."""
    keys = [key async for key in redis.scan_iter(match=f"{{{namespace}:*")]
    keys.append(topology_key(namespace))
    await redis.delete(*keys)


async def feed(
    settings: Settings, events: Sequence[dict[str, object]], pace_s: float = 0.0
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for event in events:
            data = event["data"]
            assert isinstance(data, dict)
            await producer.send_and_wait(
                settings.topics.for_event(str(event["type"])),
                json.dumps(event).encode(),
                key=str(data["order_id"]).encode(),
            )
            await asyncio.sleep(pace_s)
    finally:
        await producer.stop()


class Demo:
    """The demo scenario's events and the orders and services it touches."""

    def __init__(self) -> None:
        text = files("worker.demo").joinpath("scenario.jsonl").read_text()
        self.events: list[dict[str, Any]] = [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
        self.order_ids = {event["data"]["order_id"] for event in self.events}
        created = [e["data"] for e in self.events if e["type"] == "order.created"]
        line_items = [item for order in created for item in order["line_items"]]
        self.service_ids = {item["service_id"] for item in line_items if item.get("service_id")}
        self.activity_ids = {f"account:{order['account_id']}" for order in created}


async def print_timeline(settings: Settings, demo: Demo, stop: asyncio.Event) -> None:
    """Print every outbound event until each demo order reached a final state and each demo
    service left `new` (or `stop`)."""
    consumer = AIOKafkaConsumer(
        settings.topics.order_status,
        settings.topics.service_status,
        settings.topics.ops,
        settings.topics.dead_letter,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    unfinished = demo.order_ids | demo.service_ids | demo.activity_ids
    try:
        while unfinished and not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for record in (record for records in batches.values() for record in records):
                if record.topic == settings.topics.dead_letter:
                    headers = dict(record.headers)
                    print(f"dead letter: {headers.get('dlq-error', b'').decode()}", flush=True)
                    continue
                event = json.loads(record.value)
                print(timeline_line(event), flush=True)
                data = event["data"]
                order_ended = event["type"] == "order.state.changed" and order_is_final(
                    OrderState(data["state"])
                )
                if order_ended:
                    unfinished.discard(data["order_id"])
                if event["type"] == "service.fulfillment.changed" and data["state"] != "new":
                    unfinished.discard(data["service_id"])
                if event["type"] == "account.activity.changed":
                    unfinished.discard(f"account:{data['account_id']}")
    finally:
        await consumer.stop()


async def run_dev(once: bool) -> int:
    configure_logging("console", os.environ.get("ORDER_STATUS_LOG_LEVEL", "WARNING"))
    demo = Demo()
    group_id = f"{DEMO_GROUP}-{uuid.uuid4().hex[:8]}"
    with local_broker() as broker, local_redis(os.environ.get("REDIS_URL")) as redis_url:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers,
            redis_url=redis_url,
            group_id=group_id,
            producer_idempotence=False,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
            http_port=0,  # a free port: the plan's address is printed
            log_format="console",
        )
        print(
            f"broker {settings.bootstrap_servers}, redis {redis_url}, "
            f"state under ORDER_STATUS_GROUP_ID={group_id}",
            flush=True,
        )
        redis = Redis.from_url(redis_url)
        await create_topics(settings)
        worker = Worker(settings, redis, serve_http=True)
        await worker.start()
        assert worker.server is not None  # serve_http
        plan = worker.server.url
        plan_pages = [f"{plan}/orders/{id_path(order_id)}" for order_id in sorted(demo.order_ids)]
        print(f"plan view: {plan}/ (watch the demo live: {' '.join(plan_pages)})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            timeline = asyncio.create_task(print_timeline(settings, demo, stop))
            await feed(settings, demo.events, DEMO_PACE_S)
            try:
                await asyncio.wait_for(timeline, DEMO_TIMEOUT_S)
            except TimeoutError:
                print(f"the demo did not finish within {DEMO_TIMEOUT_S:.0f}s", file=sys.stderr)
                return 1
            snapshots = Snapshots(redis, group_id)
            for order_id in sorted(demo.order_ids):
                record = await snapshots.order(order_id)
                print(order_tree(record) if record else f"order {order_id}: not in Redis")
            for service_id in sorted(demo.service_ids):
                service = await snapshots.service(service_id)
                print(service_view(service) if service else f"service {service_id}: not in Redis")
            for page in plan_pages:
                print(f"plan of the demo order: {page}", flush=True)
            if not once:
                print(
                    f"worker running, serving the plan view; publish to "
                    f"{settings.bootstrap_servers}. Ctrl-C stops.",
                    flush=True,
                )
                await stop.wait()
        finally:
            await worker.stop()
            await clear_namespace(redis, group_id)  # its broker is gone: the state is of no use
            await redis.aclose()
    return 0
