"""The co-partitioned merge: event-time order across topics, waiting only for partitions that
may still deliver something earlier, and commit offsets that never skip a buffered record."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.merge import Buffered, CoPartitionMerge, Partition

ORDERS, TASKS = Partition("orders", 0), Partition("tasks", 0)
OTHER_ORDERS, OTHER_TASKS = Partition("orders", 1), Partition("tasks", 1)
ASSIGNED = [ORDERS, TASKS, OTHER_ORDERS, OTHER_TASKS]


def record(partition: Partition, offset: int, minute: int) -> Buffered[str]:
    moment = datetime(2026, 11, 21, 10, minute, tzinfo=UTC)
    return Buffered(partition, offset, moment, f"{partition.topic}-{partition.partition}@{offset}")


def merge_with(*records: Buffered[str]) -> CoPartitionMerge[str]:
    merge: CoPartitionMerge[str] = CoPartitionMerge(["orders", "tasks"])
    merge.add(records)
    return merge


def items(released: list[Buffered[str]]) -> list[str]:
    return [buffered.item for buffered in released]


def test_topics_of_one_partition_are_released_in_event_time_order() -> None:
    merge = merge_with(
        record(TASKS, 0, 2), record(TASKS, 1, 5), record(ORDERS, 0, 1), record(ORDERS, 1, 3)
    )
    released = merge.release(ASSIGNED, caught_up=ASSIGNED)
    assert items(released) == ["orders-0@0", "tasks-0@0", "orders-0@1", "tasks-0@1"]


def test_at_equal_times_the_parent_topic_goes_first() -> None:
    merge = merge_with(record(TASKS, 0, 1), record(ORDERS, 0, 1))
    assert items(merge.release(ASSIGNED, caught_up=ASSIGNED)) == ["orders-0@0", "tasks-0@0"]


def test_a_topic_with_nothing_buffered_that_is_not_caught_up_holds_its_partition_only() -> None:
    merge = merge_with(record(TASKS, 0, 1), record(OTHER_TASKS, 0, 1))
    released = merge.release(ASSIGNED, caught_up=[TASKS, OTHER_ORDERS, OTHER_TASKS])
    assert items(released) == ["tasks-1@0"]  # orders-0 may still hold something earlier
    assert merge.buffered(TASKS) == 1


def test_a_topic_drained_during_release_still_counts_as_caught_up() -> None:
    merge = merge_with(record(ORDERS, 0, 1), record(TASKS, 0, 2), record(TASKS, 1, 3))
    assert len(merge.release(ASSIGNED, caught_up=ASSIGNED)) == 3


def test_within_a_topic_the_partition_order_is_kept_whatever_the_times() -> None:
    merge = merge_with(record(TASKS, 0, 9), record(TASKS, 1, 1))
    assert items(merge.release(ASSIGNED, caught_up=ASSIGNED)) == ["tasks-0@0", "tasks-0@1"]


def test_commit_offsets_stop_at_the_first_record_still_buffered() -> None:
    merge = merge_with(record(TASKS, 0, 1), record(TASKS, 1, 2))
    merge.release(ASSIGNED, caught_up=[])
    positions = {ORDERS: 4, TASKS: 2, OTHER_ORDERS: 0, OTHER_TASKS: 0}
    assert merge.commit_offsets(positions) == {ORDERS: 4, TASKS: 0, OTHER_ORDERS: 0, OTHER_TASKS: 0}


def test_a_record_fetched_again_is_not_buffered_twice_until_its_partition_is_forgotten() -> None:
    merge = merge_with(record(TASKS, 0, 1))
    merge.add([record(TASKS, 0, 1)])
    assert merge.buffered(TASKS) == 1
    merge.forget([TASKS])
    assert merge.buffered(TASKS) == 0
    merge.add([record(TASKS, 0, 1)])
    assert merge.buffered(TASKS) == 1


def test_partitions_of_topics_outside_the_merge_are_ignored() -> None:
    merge = merge_with(record(TASKS, 0, 1))
    released = merge.release([*ASSIGNED, Partition("elsewhere", 0)], caught_up=ASSIGNED)
    assert items(released) == ["tasks-0@0"]


def test_a_record_fetched_after_later_ones_of_its_partition_were_released_is_reported_late() -> (
    None
):
    merge = merge_with(record(TASKS, 0, 5))
    merge.release(ASSIGNED, caught_up=ASSIGNED)
    merge.add([record(ORDERS, 0, 3), record(OTHER_ORDERS, 0, 1)])
    assert items(merge.late) == ["orders-0@0"]  # partition 1 had released nothing yet
