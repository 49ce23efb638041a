"""Publishing a batch's outputs through aiokafka's producer: one record batch per partition.

Each key is hashed once per batch (every output of an entity shares its key) and each partition's
records go out as record batches in the order given, so an entity's events keep their order (child
before parent) and a watermark follows the outputs it covers. `acks=all` always: with idempotence
off aiokafka would otherwise fall back to one acknowledgement, and an output acknowledged by a
leader that then fails would be lost after its offsets were committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from worker.engine.records import Outgoing

Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
"""Sends records and returns once the broker has acknowledged every one."""

DEFAULT_MAX_RECORD_BYTES = 1_048_576
"""The broker's default `message.max.bytes` (and the producer's `max_request_size`)."""


class Publisher:
    """The worker's producer. Created on `start`, inside the running event loop."""

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, **options: Any) -> None:
        self._options: dict[str, Any] = {
            **options,
            "acks": "all",
            "max_request_size": max_record_bytes,
            # A batch is one message to the broker: half the limit leaves room for its framing.
            "max_batch_size": max_record_bytes // 2,
        }
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._options)
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def partitions(self, topic: str) -> int:
        if self._producer is None:
            raise RuntimeError("the publisher is not started")
        return len(await self._producer.partitions_for(topic))

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send every record and wait until the broker has acknowledged all of them."""
        if not records:
            return
        if self._producer is None:
            raise RuntimeError("the publisher is not started")
        producer = self._producer
        acks: list[asyncio.Future[Any]] = []
        for (topic, partition), batch_records in (await self._by_partition(records)).items():
            batch = producer.create_batch()
            for record in batch_records:
                # A full batch refuses the record; the first record of a batch always fits.
                while (
                    batch.append(
                        key=record.key,
                        value=record.value,
                        timestamp=None,
                        headers=list(record.headers),
                    )
                    is None
                ):
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    async def _by_partition(
        self, records: Sequence[Outgoing]
    ) -> dict[tuple[str, int], list[Outgoing]]:
        """The records grouped by partition: the one given, else the default partitioner's for
        their key (the Java client's murmur2, so billing's records and ours for one service meet
        on one partition)."""
        assert self._producer is not None
        partitions = {
            topic: sorted(await self._producer.partitions_for(topic))
            for topic in {record.topic for record in records if record.partition is None}
        }
        partition_of: dict[tuple[str, bytes | None], int] = {}
        grouped: dict[tuple[str, int], list[Outgoing]] = {}
        for record in records:
            partition = record.partition
            if partition is None:
                where = (record.topic, record.key)
                partition = partition_of.get(where)
                if partition is None:  # a keyless record: a random partition, the batch's for all
                    every = partitions[record.topic]
                    partition = partition_of[where] = self._partitioner(record.key, every, every)
            grouped.setdefault((record.topic, partition), []).append(record)
        return grouped
