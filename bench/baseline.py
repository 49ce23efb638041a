"""The transport ceiling: the least a Kafka-to-Kafka worker in Python can do per record.

A plain aiokafka loop over the worker's input topics: fetch a batch, parse each record's JSON,
produce it (its original bytes and key) to one output topic, wait for the acks, commit the batch.
No validation, no state, no Redis. The worker's throughput is read against this, measured in the
same run on the same machine and broker (LOCAL-KAFKA.md measured about 33k/s here).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.settings import Settings


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


async def consume_parse_produce(
    settings: Settings, total: int, group: str, timeout_s: float = 120.0
) -> Rate:
    """Relay `total` records from the inbound topics to the order-status topic, as consumer group
    `group`; the rate from the first fetched batch to the last commit (the group join before it is
    not counted)."""
    consumer = AIOKafkaConsumer(
        *settings.topics.inbound,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"{settings.group_id}.{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_idempotence=settings.producer_idempotence,
    )
    await consumer.start()
    await producer.start()
    relayed, started = 0, 0.0
    try:
        async with asyncio.timeout(timeout_s):
            while relayed < total:
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=settings.batch_max_records
                )
                if not batches:
                    continue
                started = started or time.perf_counter()
                acks = []
                for record in (record for records in batches.values() for record in records):
                    json.loads(record.value)
                    acks.append(
                        await producer.send(
                            settings.topics.order_status, record.value, key=record.key
                        )
                    )
                await asyncio.gather(*acks)
                await consumer.commit()
                relayed += len(acks)
    finally:
        await producer.stop()
        await consumer.stop()
    return Rate(relayed, time.perf_counter() - started)
