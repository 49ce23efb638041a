"""The event-time merge of one group: external partitions first in, first out, merged by event time;
an empty one waited for until it has stayed empty for the idle time after the candidate arrived;
upstream origins passed only below their watermarks or while idle; the frontier below which
everything was released, following the group's clock while its sources are idle."""

from __future__ import annotations

from worker.engine.merge import NEVER, GroupMerge, Item, Partition

ORDERS, TASKS = Partition("orders", 0), Partition("tasks", 0)
INTERNAL = Partition("internal", 0)
RANKS = {"orders": 0, "tasks": 1, "internal": 2}
MINUTE = 60_000_000  # µs
IDLE = 100_000  # µs
IDLE_TIMEOUT = 1_000_000


def item(
    partition: Partition,
    offset: int,
    minute: int,
    *,
    polled: int = 0,
    origin: int | None = None,
    sequence: int = 0,
) -> Item[str]:
    key = (minute * MINUTE, RANKS[partition.topic], ("", offset))
    name = f"{partition.topic}@{offset}"
    return Item(key, partition, offset, polled, name, origin, sequence)


def merge(*items: Item[str], origins: int = 0) -> GroupMerge[str]:
    merged: GroupMerge[str] = GroupMerge([ORDERS, TASKS], origins)
    for each in items:
        merged.add(each)
    return merged


def poll(merged: GroupMerge[str], at: int, *partitions: Partition, caught_up: bool = True) -> None:
    for partition in partitions or (ORDERS, TASKS, INTERNAL):
        merged.polled(partition, caught_up, at)


def released(merged: GroupMerge[str]) -> list[str]:
    return [each.value for each in merged.release(IDLE, IDLE_TIMEOUT).items]


def test_a_backlog_is_released_in_event_time_order_across_topics() -> None:
    merged = merge(item(TASKS, 0, 2), item(TASKS, 1, 5), item(ORDERS, 0, 1), item(ORDERS, 1, 3))
    poll(merged, 0)
    assert released(merged) == ["orders@0", "tasks@0", "orders@1"]  # then orders is empty
    poll(merged, IDLE)  # and stayed empty the idle time after tasks@1 arrived
    assert released(merged) == ["tasks@1"]


def test_at_equal_times_the_parent_topic_goes_first() -> None:
    merged = merge(item(TASKS, 0, 1), item(ORDERS, 0, 1))
    poll(merged, 0)
    assert released(merged) == ["orders@0"]


def test_an_empty_partition_is_passed_once_caught_up_for_the_idle_time() -> None:
    arrived = 30 * MINUTE
    merged = merge(item(TASKS, 0, 30, polled=arrived))
    poll(merged, arrived + IDLE, ORDERS, caught_up=False)  # more on the broker: maybe earlier
    assert released(merged) == []
    poll(merged, arrived, ORDERS)  # caught up, but a co-partition may be a moment behind
    assert released(merged) == []
    poll(merged, arrived + IDLE - 1, ORDERS)
    assert released(merged) == []
    poll(merged, arrived + IDLE, ORDERS)
    assert released(merged) == ["tasks@0"]


def test_a_late_record_is_applied_as_it_comes_and_counted() -> None:
    merged = merge(item(TASKS, 0, 5))
    poll(merged, IDLE)
    assert released(merged) == ["tasks@0"]
    merged.add(item(ORDERS, 0, 1))  # reached the broker after the group moved past minute 5
    assert merged.late == 1
    assert released(merged) == ["orders@0"]


def test_within_a_partition_the_offset_order_is_kept_whatever_the_times() -> None:
    merged = merge(item(TASKS, 0, 9), item(TASKS, 1, 1))
    poll(merged, IDLE)
    assert released(merged) == ["tasks@0", "tasks@1"]


def test_an_empty_origin_is_passed_only_below_its_watermark_or_while_idle() -> None:
    merged = merge(
        item(INTERNAL, 0, 4, origin=0),
        item(INTERNAL, 1, 2, origin=1),
        item(ORDERS, 0, 3),
        origins=2,
    )
    poll(merged, IDLE)
    # Every source holds something or is idle long enough: the earliest head goes.
    assert released(merged) == ["internal@1"]
    # Origin 1 is empty and has said nothing beyond minute 2: it may still send minute 3.
    assert released(merged) == []
    merged.watermark(1, 3 * MINUTE, idle=False)
    assert released(merged) == []
    merged.watermark(1, 3 * MINUTE + 1, idle=False)
    assert released(merged) == ["orders@0"]
    merged.watermark(1, 3 * MINUTE + 1, idle=True)  # nothing coming from it: not waited for
    assert released(merged) == ["internal@0"]


def test_an_item_from_an_idle_origin_makes_it_waited_for_again() -> None:
    merged = merge(item(ORDERS, 0, 9, polled=0), origins=1)
    merged.watermark(0, MINUTE, idle=True)
    merged.add(item(INTERNAL, 0, 2, origin=0))
    poll(merged, IDLE)
    # Its minute-2 output goes first; then it may send more below minute 9: orders@0 waits.
    assert released(merged) == ["internal@0"]
    merged.watermark(0, 10 * MINUTE, idle=False)
    assert released(merged) == ["orders@0"]


def test_an_origin_is_read_first_in_first_out() -> None:
    merged = merge(item(INTERNAL, 0, 5, origin=0), item(INTERNAL, 1, 1, origin=0), origins=1)
    poll(merged, IDLE)
    merged.watermark(0, 10 * MINUTE, idle=False)
    assert released(merged) == ["internal@0", "internal@1"]


def test_the_frontier_follows_the_group_clock_while_its_sources_are_idle() -> None:
    merged = merge(item(TASKS, 0, 1, polled=0), item(TASKS, 1, 7, polled=0))
    poll(merged, 0, TASKS)
    poll(merged, 0, ORDERS, caught_up=False)
    outcome = merged.release(IDLE, IDLE_TIMEOUT)
    assert (outcome.items, outcome.frontier) == ([], NEVER)  # orders may still hold anything
    poll(merged, 5 * MINUTE)
    outcome = merged.release(IDLE, IDLE_TIMEOUT)
    assert [each.value for each in outcome.items] == ["tasks@0", "tasks@1"]
    # The latest event seen (minute 7), less the idle time, plus the five minutes since it came.
    assert outcome.frontier == 12 * MINUTE - IDLE
    assert outcome.idle


def test_a_group_taken_up_from_redis_follows_the_clock_from_its_last_frontier() -> None:
    quiet = merge()
    poll(quiet, 5 * MINUTE, ORDERS, TASKS)
    assert quiet.release(IDLE, IDLE_TIMEOUT).frontier == NEVER  # nothing seen: no clock
    quiet.resume(10 * MINUTE, at_us=MINUTE)  # the frontier the last owner wrote, taken up at 1
    poll(quiet, 5 * MINUTE, ORDERS, TASKS)
    assert quiet.release(IDLE, IDLE_TIMEOUT).frontier == 14 * MINUTE - IDLE
    quiet.add(item(ORDERS, 0, 20, polled=6 * MINUTE))  # input again: its time leads
    poll(quiet, 6 * MINUTE, ORDERS, TASKS)
    assert released(quiet) == []  # tasks was polled no later than the item came: waited for
    poll(quiet, 6 * MINUTE + IDLE, ORDERS, TASKS)
    outcome = quiet.release(IDLE, IDLE_TIMEOUT)
    assert [each.value for each in outcome.items] == ["orders@0"]
    assert outcome.frontier == 20 * MINUTE


def test_a_group_is_idle_only_when_nothing_came_for_the_idle_timeout() -> None:
    merged = merge(item(ORDERS, 0, 1, polled=0))
    poll(merged, IDLE)
    assert merged.release(IDLE, IDLE_TIMEOUT).idle is False
    poll(merged, IDLE_TIMEOUT)
    assert merged.release(IDLE, IDLE_TIMEOUT).idle is True
    empty: GroupMerge[str] = GroupMerge([ORDERS], 0)
    assert empty.release(IDLE, IDLE_TIMEOUT).idle is False  # not polled yet
    empty.polled(ORDERS, True, 0)
    assert empty.release(IDLE, IDLE_TIMEOUT).idle is True  # nothing ever came


def test_where_to_resume_is_the_first_record_still_buffered() -> None:
    merged = merge(
        item(TASKS, 3, 5),
        item(ORDERS, 7, 1),
        item(INTERNAL, 11, 2, origin=0, sequence=40),
        item(INTERNAL, 12, 2, origin=1, sequence=9),
        origins=2,
    )
    poll(merged, IDLE)
    merged.watermark(0, 10 * MINUTE, idle=False)
    # Tasks' minute 5 waits for origin 1, which has said nothing beyond its minute 2.
    assert released(merged) == ["orders@7", "internal@11", "internal@12"]
    assert merged.first_offsets() == {TASKS: 3}
    merged.add(item(INTERNAL, 13, 8, origin=1, sequence=10))
    assert merged.next_sequences() == {1: 10}
    assert merged.first_offsets() == {TASKS: 3, INTERNAL: 13}


def test_a_caught_up_partition_holds_the_frontier_at_its_own_last_poll() -> None:
    """Orders was last polled (caught up) when tasks@0 came; tasks has been polled five minutes
    later since. What reached orders' partition meanwhile is not known: the frontier may follow
    the clock only as far as orders' own last poll, not tasks'."""
    merged = merge(item(TASKS, 0, 7, polled=0))
    poll(merged, IDLE)
    assert released(merged) == ["tasks@0"]
    poll(merged, 5 * MINUTE, TASKS)  # orders' records since are still to be fetched
    assert merged.release(IDLE, IDLE_TIMEOUT).frontier == 7 * MINUTE
    poll(merged, 5 * MINUTE, ORDERS)  # orders caught up as of the same moment: nothing came
    assert merged.release(IDLE, IDLE_TIMEOUT).frontier == 12 * MINUTE - IDLE
