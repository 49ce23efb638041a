"""Publishing a batch's outputs through aiokafka's producer: one record batch per partition.

FastStream's `broker.publish` builds a message, a correlation id and middleware scopes for every
record, and aiokafka then hashes every record's key in pure Python; that was a third of the order
stage. Here each key is hashed once per batch (every output of an order shares its key) and each
partition's records go out as one record batch, in the order given, so an order's events keep
their order (child before parent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity

# Below the broker's default message.max.bytes (1 MiB): a batch is one message to the broker.
MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Mapping[str, str]


Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
"""Sends records and returns once the broker has acknowledged every one."""


class Publisher:
    """The worker's producer. Created on `start`, inside the running event loop."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        enable_idempotence: bool,
        security: BaseSecurity | None,
    ) -> None:
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "enable_idempotence": enable_idempotence,
            "max_batch_size": MAX_BATCH_BYTES,
            **parse_security(security),
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

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send every record and wait until the broker has acknowledged all of them."""
        if not records:
            return
        if self._producer is None:
            raise RuntimeError("the publisher is not started")
        producer = self._producer
        by_partition = await self._by_partition(producer, records)
        acks: list[asyncio.Future[Any]] = []
        for (topic, partition), batch_records in by_partition.items():
            batch = producer.create_batch()
            for record in batch_records:
                headers = [(name, value.encode()) for name, value in record.headers.items()]
                # A full batch refuses the record; the first record of a batch always fits.
                while (
                    batch.append(
                        key=record.key, value=record.value, timestamp=None, headers=headers
                    )
                    is None
                ):
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    async def _by_partition(
        self, producer: AIOKafkaProducer, records: Sequence[Outgoing]
    ) -> dict[tuple[str, int], list[Outgoing]]:
        """The records grouped by the partition the default partitioner gives their key (the Java
        client's murmur2, so billing's records and ours for one service meet on one partition)."""
        partitions = {
            topic: sorted(await producer.partitions_for(topic))
            for topic in {record.topic for record in records}
        }
        partition_of: dict[tuple[str, bytes | None], int] = {}
        grouped: dict[tuple[str, int], list[Outgoing]] = {}
        for record in records:
            where = (record.topic, record.key)
            partition = partition_of.get(where)
            if partition is None:  # a keyless record: a random partition, the batch's for all
                all_partitions = partitions[record.topic]
                partition = self._partitioner(record.key, all_partitions, all_partitions)
                partition_of[where] = partition
            grouped.setdefault((record.topic, partition), []).append(record)
        return grouped
