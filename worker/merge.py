"""Kafka Streams' timestamp synchronisation across co-partitioned topics.

The three fulfillment topics are keyed by order id with the same partition count, so partition p of
each holds the same orders (and a range assignor gives one consumer partition p of all three). No
broker orders topics against each other, so a task update can be fetched before the order command
that preceded it. This merge buffers fetched records per topic-partition and releases, for each
partition number, the record with the earliest event time among the topics' heads, but only while
every topic of that partition has a buffered record or is caught up (nothing more on the broker
right now). The order in which an order's events are applied is then their event-time order,
whatever the fetch sizes, batch boundaries or crashes: the worker is deterministic and replayable.

Offsets are committed up to the first record not yet released, so a buffered record is never lost.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

E = TypeVar("E")


class Partition(NamedTuple):
    """A topic-partition (aiokafka's TopicPartition has the same shape)."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Buffered(Generic[E]):
    partition: Partition
    offset: int
    time: datetime
    item: E


class CoPartitionMerge(Generic[E]):
    def __init__(self, topics: Sequence[str]) -> None:
        # At equal times the earlier topic goes first: the parent's (orders, work orders, tasks).
        self._rank = {topic: rank for rank, topic in enumerate(topics)}
        self._buffers: dict[Partition, deque[Buffered[E]]] = {}
        self._next_offset: dict[Partition, int] = {}
        # The latest event time released per partition number: a record fetched later with an
        # earlier time arrived out of order (it reached the broker after the merge moved on).
        self._released_until: dict[int, datetime] = {}
        self.late: list[Buffered[E]] = []

    def add(self, items: Iterable[Buffered[E]]) -> None:
        """Buffer fetched records; a record already buffered or released (fetched again after a
        rebalance kept the partition here) is skipped."""
        for buffered in items:
            partition = buffered.partition
            if buffered.offset < self._next_offset.get(partition, -1):
                continue
            released_until = self._released_until.get(partition.partition)
            if released_until is not None and buffered.time < released_until:
                self.late.append(buffered)
            self._buffers.setdefault(partition, deque()).append(buffered)
            self._next_offset[partition] = buffered.offset + 1

    def release(
        self, assigned: Iterable[Partition], caught_up: Iterable[Partition]
    ) -> list[Buffered[E]]:
        """Everything that can be applied now, in event-time order per partition number."""
        idle = set(caught_up)
        groups: dict[int, list[Partition]] = {}
        for partition in assigned:
            if partition.topic in self._rank:
                groups.setdefault(partition.partition, []).append(partition)
        released: list[Buffered[E]] = []
        for number, members in groups.items():
            self._release_group(number, members, idle, released)
        return released

    def _release_group(
        self,
        number: int,
        members: list[Partition],
        idle: Set[Partition],
        released: list[Buffered[E]],
    ) -> None:
        """Merge one partition number's topics by their heads' (time, topic rank), until a topic
        that is not caught up runs dry: it may still hold something earlier."""
        buffers: list[deque[Buffered[E]]] = []
        owners: list[Partition] = []
        heads: list[tuple[datetime, int, int]] = []
        for partition in members:
            buffer = self._buffers.get(partition)
            if not buffer:
                if partition not in idle:
                    return
                continue
            heads.append((buffer[0].time, self._rank[partition.topic], len(buffers)))
            buffers.append(buffer)
            owners.append(partition)
        heapq.heapify(heads)
        until = self._released_until.get(number)
        while heads:
            _, rank, index = heads[0]
            buffer = buffers[index]
            head = buffer.popleft()
            released.append(head)
            if until is None or head.time > until:
                until = head.time
            if buffer:
                heapq.heapreplace(heads, (buffer[0].time, rank, index))
            elif owners[index] not in idle:
                break
            else:
                heapq.heappop(heads)
        if until is not None:
            self._released_until[number] = until

    def buffered(self, partition: Partition) -> int:
        return len(self._buffers.get(partition, ()))

    def partitions(self) -> set[Partition]:
        """The partitions records were buffered for."""
        return set(self._next_offset)

    def commit_offsets(self, positions: Mapping[Partition, int]) -> dict[Partition, int]:
        """Per partition, the offset to commit: the first record still buffered, else the
        consumer's position (everything fetched was released and applied)."""
        offsets = {}
        for partition, position in positions.items():
            buffer = self._buffers.get(partition)
            offsets[partition] = buffer[0].offset if buffer else position
        return offsets

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop what was buffered for partitions this consumer no longer owns: their next owner
        reads them again from the committed offsets."""
        for partition in partitions:
            self._buffers.pop(partition, None)
            self._next_offset.pop(partition, None)
