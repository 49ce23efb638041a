"""The order stage's input (`Stage.release`) against a consumer stand-in: a partition whose buffer
is full waits for its co-partitions without being fetched further, and is fetched again once its
records are released. Consumption itself is proven against a real broker in tests/integration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition

from schemas.inbound import OrderEvent, parse_order_event
from worker.merge import Partition
from worker.pipeline import Stage

ORDERS, TASKS = "orders", "tasks"
LIMIT = 3


@dataclass(frozen=True)
class FetchedRecord:
    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp: int = 1_763_719_200_000
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class StandInConsumer:
    """Owns partition 0 of both topics; `ends` is each one's high-water mark as last fetched."""

    ends: dict[TopicPartition, int]
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    paused_partitions: set[TopicPartition] = field(default_factory=set)
    polled: dict[TopicPartition, int] = field(default_factory=dict)
    """When each partition's high-water mark was read (ms); 0 where not set."""
    on_broker: dict[TopicPartition, int] = field(default_factory=dict)
    """End offsets on the broker now, where they moved past `ends`."""

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.ends[partition]

    def last_poll_timestamp(self, partition: TopicPartition) -> int | None:
        return self.polled.get(partition, 0)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.on_broker.get(tp, self.ends[tp]) for tp in partitions}

    async def position(self, partition: TopicPartition) -> int:
        return self.positions.get(partition, 0)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        raise AssertionError("the stage commits only when asked to")

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused_partitions |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused_partitions -= set(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    def fetch(self, topic: str, offsets: range, minute: int) -> list[FetchedRecord]:
        self.positions[TopicPartition(topic, 0)] = offsets.stop
        return [task_update(topic, offset, minute) for offset in offsets]


def task_update(topic: str, offset: int, minute: int) -> FetchedRecord:
    event = {
        "specversion": "1.0",
        "id": f"{topic}-{offset}",
        "source": "/tests",
        "type": "task.updated" if topic == TASKS else "order.canceled",
        "time": f"2026-11-21T10:{minute:02d}:00Z",
        "data": {"order_id": "O-1", "task_id": "T-1", "state": "in_progress"}
        if topic == TASKS
        else {"order_id": "O-1"},
    }
    return FetchedRecord(topic, 0, offset, json.dumps(event).encode())


def stage() -> Stage[OrderEvent]:
    return Stage((ORDERS, TASKS), parse_order_event, lambda event: event.data.order_id, LIMIT)


async def test_a_partition_with_a_full_buffer_is_paused_until_its_co_partition_arrives() -> None:
    orders, tasks = TopicPartition(ORDERS, 0), TopicPartition(TASKS, 0)
    consumer = StandInConsumer({orders: 2, tasks: 10})
    orders_stage = stage()

    released, _ = await orders_stage.release(consumer.fetch(TASKS, range(2), 5), consumer)
    assert released == {}  # the orders partition may hold something earlier
    assert consumer.paused() == set()  # two buffered, below the limit: keep fetching

    released, _ = await orders_stage.release(consumer.fetch(TASKS, range(2, 4), 5), consumer)
    assert released == {}
    assert consumer.paused() == {tasks}  # full: the next fetches go to the orders partition

    released, _ = await orders_stage.release(consumer.fetch(ORDERS, range(2), 1), consumer)
    assert [item.event.id for item in released["O-1"]] == [
        "orders-0",
        "orders-1",
        "tasks-0",
        "tasks-1",
        "tasks-2",
        "tasks-3",
    ]
    assert consumer.paused() == set()


async def test_records_buffered_for_a_partition_lost_in_a_rebalance_are_dropped() -> None:
    orders, tasks = TopicPartition(ORDERS, 0), TopicPartition(TASKS, 0)
    consumer = StandInConsumer({orders: 2, tasks: 10})
    orders_stage = stage()
    await orders_stage.release(consumer.fetch(TASKS, range(2), 5), consumer)
    assert orders_stage.merge.buffered(Partition(TASKS, 0)) == 2

    del consumer.ends[tasks]  # revoked: its next owner reads it from the committed offset
    await orders_stage.release([], consumer)
    assert orders_stage.merge.buffered(Partition(TASKS, 0)) == 0


async def test_a_partition_whose_high_water_mark_is_older_than_the_records_is_asked_again() -> None:
    """Tasks were fetched at t=2 with a record at 10:05; the orders partition looked caught up at
    t=1, but an order command at 10:01 reached the broker in between."""
    orders, tasks = TopicPartition(ORDERS, 0), TopicPartition(TASKS, 0)
    consumer = StandInConsumer({orders: 0, tasks: 10}, polled={orders: 1, tasks: 2})
    consumer.on_broker[orders] = 1
    orders_stage = stage()

    released, _ = await orders_stage.release(consumer.fetch(TASKS, range(1), 5), consumer)
    assert released == {}  # the end offset says the orders partition holds more

    consumer.ends[orders], consumer.polled[orders] = 1, 3
    released, _ = await orders_stage.release(consumer.fetch(ORDERS, range(1), 1), consumer)
    assert [item.event.id for item in released["O-1"]] == ["orders-0", "tasks-0"]


async def test_a_stale_high_water_mark_the_end_offset_confirms_lets_the_records_go() -> None:
    orders, tasks = TopicPartition(ORDERS, 0), TopicPartition(TASKS, 0)
    consumer = StandInConsumer({orders: 0, tasks: 10}, polled={orders: 1, tasks: 2})
    released, _ = await stage().release(consumer.fetch(TASKS, range(1), 5), consumer)
    assert [item.event.id for item in released["O-1"]] == ["tasks-0"]
