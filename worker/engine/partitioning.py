"""Which partition a key belongs on: the Java client's default partitioner (murmur2), which
aiokafka's producer also uses. The worker's state is keyed like its input partitions, and billing's
topic must meet the worker's internal topic partition for partition, so every keyed input must be
where this function puts it (librdkafka's default, consistent_random, is not: set
`partitioner=murmur2_random` there)."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)  # keys repeat: every event of an order carries its id
def partition_for(key: bytes, partitions: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions
