"""Nothing lost, nothing doubled: the worker killed with SIGKILL mid-stream and restarted, three
times, ends exactly where the reference model (`order-status simulate`) does."""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis

from bench.generator import StreamSpec, generate
from tests.integration.harness import WorkerProcess, is_control, snapshots, worker_env
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3


async def test_a_worker_killed_three_times_loses_nothing_and_doubles_nothing(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis, tmp_path: Path
) -> None:
    stream = generate(StreamSpec(orders=200, seed=20261122, prefix=f"{settings.group_id}-"))
    assert len(stream) >= 5000
    assert len({event["data"]["order_id"] for event in stream}) >= 200
    expected = simulate([json.dumps(event) for event in stream], settings)
    expected_ids = {event["id"] for event in expected.emitted}

    sends = [
        await producer.send(
            settings.topics.for_event(event["type"]),
            json.dumps(event).encode(),
            key=event["data"]["order_id"].encode(),
        )
        for event in stream
    ]
    await asyncio.gather(*sends)

    outbound = [
        settings.topics.order_status,
        settings.topics.ops,
        settings.topics.service_status,
        settings.topics.service_actions,
        settings.topics.activity_inputs,
    ]
    consumer = AIOKafkaConsumer(
        *outbound,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    payloads: dict[str, set[bytes]] = defaultdict(set)
    rng = random.Random(7)
    kill_at = sorted(rng.uniform(0.1, 0.85) * len(expected_ids) for _ in range(KILLS))
    worker = WorkerProcess(
        worker_env(settings, ORDER_STATUS_BATCH_MAX_RECORDS="200"), str(tmp_path / "worker.log")
    )
    worker.start()
    kills = 0
    try:
        async with asyncio.timeout(240):
            while not expected_ids <= payloads.keys():
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        if record.value is not None and not is_control(record.headers):
                            payloads[json.loads(record.value)["id"]].add(record.value)
                if kills < KILLS and len(payloads) >= kill_at[kills]:
                    worker.kill()  # at a random moment, whatever the worker was doing
                    kills += 1
                    worker.start()
        assert worker.terminate() == 0  # SIGTERM: a clean stop
    finally:
        await consumer.stop()
        if worker.process and worker.process.poll() is None:
            worker.kill()

    assert kills == KILLS
    doubled = {event_id: seen for event_id, seen in payloads.items() if len(seen) > 1}
    assert not doubled, f"ids published with different payloads: {list(doubled)[:5]}"
    by_id = {event["id"]: event for event in expected.emitted}
    unexpected = [json.loads(next(iter(payloads[i]))) for i in payloads.keys() - expected_ids]
    assert unexpected == [], [by_id.get(e["data"].get("caused_by")) for e in unexpected[:3]]
    assert payloads.keys() == expected_ids  # nothing lost

    reader = snapshots(redis, settings)
    for order_id, reference in expected.records.items():
        stored = await reader.order(order_id)
        assert stored == reference, order_id
    for service_id, service in expected.services.items():
        assert await reader.service(service_id) == service, service_id
