"""Event-time order for one stage: Kafka Streams' timestamp synchronisation, with watermarks.

A stage's input is split into groups by partition number: group q is partition q of every input
topic (co-partitioned: keyed alike, the same partition count), and all of a group's state is one
unit (`worker.store.groups`). Per group, this merge buffers fetched items and releases them in
event-time order, `(time, rank, tiebreak)`, taking the earliest head among its sources, each first
in, first out:

- **External** topic-partitions (upstream systems' topics), assumed to come in roughly event-time
  order, as Kafka Streams assumes. An empty one holds the group back until it may no longer
  deliver anything earlier: its `bound` is the last time it delivered (or was passed at while
  empty; what it delivers below that is late), and once it is caught up (nothing more on the broker
  as of its last poll) it is passed when it has stayed empty for `idle` after the candidate arrived
  (Kafka Streams' `max.task.idle.ms`). A backlog is therefore applied in event-time order whatever
  the fetch sizes; live input waits at most `idle` for a lagging co-partition.
- **Origins**: the groups of the upstream stage, whose outputs reach this stage interleaved on one
  internal topic-partition. Each origin's outputs are in its own event-time order, numbered by a
  sequence of its own, and followed by watermark records: "everything below event time W is
  published", or "idle: nothing is coming, do not wait for me". An empty origin is passed below its
  watermark, or at any time while idle (what it sends after is applied as it comes).

The group's `frontier` after a release is the event time below which everything has been released:
timers due before it may fire, and it is the watermark this stage announces downstream. Where a
source is idle the frontier follows the group's clock: the latest event time seen, less `idle`,
advanced by the time that passed since anything arrived (events are taken to reach the broker in
event-time order within `idle`; a replay of old events therefore advances time no faster than it
arrives). A group with nothing buffered and nothing arriving for `idle_timeout` is idle.

Records that cannot be read never enter the merge (they go to the dead-letter topic at once), so a
bad record holds nothing back.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

NEVER = -(2**62)
"""An event time (µs since the epoch) before every real one: a source that has said nothing yet."""
ALWAYS = 2**62
"""An event time after every real one: a source that holds nothing back."""


class Partition(NamedTuple):
    """A topic-partition (aiokafka's TopicPartition has the same shape)."""

    topic: str
    partition: int


SortKey = tuple[int, int, tuple[str | int, ...]]
"""(event time in µs since the epoch, source rank, tiebreak): the order items are applied in."""


@dataclass(frozen=True, slots=True)
class Item(Generic[T]):
    """A decoded input waiting to be released."""

    key: SortKey
    partition: Partition
    offset: int
    polled_at_us: int  # when the poll that fetched it returned (the consumer's clock)
    value: T
    origin: int | None = None  # the upstream group that published it, with its sequence number
    sequence: int = 0

    @property
    def time(self) -> int:
        return self.key[0]


@dataclass(slots=True)
class _Source(Generic[T]):
    external: bool
    items: deque[Item[T]] = field(default_factory=deque)
    bound: int = NEVER
    """Everything below this event time has been delivered: an origin's watermark, or the latest
    time an external source delivered or was passed at while empty."""
    idle: bool = False  # origins only: it announced it has nothing coming
    caught_up: bool = False  # externals only: nothing more on the broker as of `polled_at_us`
    polled_at_us: int | None = None

    def passes(self, candidate: Item[T], idle_us: int) -> bool:
        """Whether `candidate`, the head of another source, may go before anything this source may
        still deliver (asked only while this source is empty)."""
        if candidate.time < self.bound or self.idle:
            return True
        return (
            self.external
            and self.caught_up
            and self.polled_at_us is not None
            and self.polled_at_us >= candidate.polled_at_us + idle_us
        )

    def low(self, clock: Callable[[int | None], int]) -> int:
        """Below which event time this source has nothing more to give. An empty external
        source caught up follows the group's clock as of its own last poll: records fetched
        since (another partition's poll may be newer) can still come before anything later."""
        if self.items:
            return self.items[0].time
        if self.idle:
            return ALWAYS
        if self.external and self.caught_up:
            return max(self.bound, clock(self.polled_at_us))
        return self.bound


@dataclass(slots=True)
class Released(Generic[T]):
    items: list[Item[T]]
    frontier: int
    """Event time below which the group has released everything (NEVER: nothing known yet)."""
    idle: bool
    """Nothing buffered, every partition caught up, nothing arrived for the idle timeout."""


class GroupMerge(Generic[T]):
    """The buffered input of one group (one partition number of a stage)."""

    def __init__(self, externals: Iterable[Partition], origins: int) -> None:
        """`externals`: this group's external topic-partitions; `origins`: how many upstream
        groups publish to this one through the internal topic (each announces watermarks)."""
        self._externals = {p: _Source[T](external=True) for p in externals}
        self._origins = [_Source[T](external=False) for _ in range(origins)]
        self._sources: list[_Source[T]] = [*self._externals.values(), *self._origins]
        self._caught_up: dict[Partition, bool] = {}
        self._polled_at_us: int | None = None
        self._max_seen = NEVER  # the latest event time seen
        self._last_arrival: int | None = None  # when the latest item arrived (poll time)
        self.late = 0
        """Items that arrived below a bound their source had already passed (counted, applied)."""

    def resume(self, frontier: int, at_us: int) -> None:
        """A group taken up from the state in Redis (a restart, a rebalance): until its input
        delivers, its event time follows the clock from the frontier its last owner wrote, as if
        an event of that time had arrived at `at_us`. Else a group whose input stays quiet after
        it changed hands would never pass its timers (term ends, parked events' expiry)."""
        self._max_seen = max(self._max_seen, frontier)
        self._last_arrival = max(self._last_arrival or at_us, at_us)

    def watermark(self, origin: int, below: int, idle: bool) -> None:
        """Origin `origin` has published everything below event time `below` (monotone), and
        says whether it is idle."""
        source = self._origins[origin]
        source.bound = max(source.bound, below)
        source.idle = idle

    def add(self, item: Item[T]) -> None:
        if item.origin is None:
            source = self._externals[item.partition]
            if item.time < source.bound:
                self.late += 1
        else:
            source = self._origins[item.origin]
            source.idle = False  # an idle origin sends nothing: it is active again
        source.items.append(item)
        self._max_seen = max(self._max_seen, item.time)
        self._last_arrival = max(self._last_arrival or item.polled_at_us, item.polled_at_us)

    def polled(self, partition: Partition, caught_up: bool, polled_at_us: int | None) -> None:
        """What the consumer's latest poll says of one of the group's partitions."""
        self._caught_up[partition] = caught_up
        if polled_at_us is not None:
            self._polled_at_us = max(self._polled_at_us or polled_at_us, polled_at_us)
        source = self._externals.get(partition)
        if source is not None:
            source.caught_up, source.polled_at_us = caught_up, polled_at_us

    def buffered(self, partition: Partition) -> int:
        """How many items of an external partition are buffered (all origins' for the internal
        one)."""
        source = self._externals.get(partition)
        if source is not None:
            return len(source.items)
        return sum(len(origin.items) for origin in self._origins)

    def first_offsets(self) -> dict[Partition, int]:
        """Per topic-partition, the offset of its first record still buffered."""
        firsts: dict[Partition, int] = {}
        for source in self._sources:
            if source.items:
                head = source.items[0]
                firsts[head.partition] = min(firsts.get(head.partition, head.offset), head.offset)
        return firsts

    def next_sequences(self) -> dict[int, int]:
        """Per origin with buffered items, the sequence number of its first one (everything of it
        below has been released)."""
        return {
            origin: source.items[0].sequence
            for origin, source in enumerate(self._origins)
            if source.items
        }

    def release(self, idle_us: int, idle_timeout_us: int) -> Released[T]:
        released: list[Item[T]] = []
        sources = self._sources
        heads = [
            (source.items[0].key, index) for index, source in enumerate(sources) if source.items
        ]
        heapq.heapify(heads)
        empty = [source for source in sources if not source.items]
        while heads:
            _, index = heads[0]
            source = sources[index]
            candidate = source.items[0]
            if not all(other.passes(candidate, idle_us) for other in empty):
                break
            source.items.popleft()
            if candidate.time > source.bound:
                source.bound = candidate.time
            if source.items:
                heapq.heapreplace(heads, (source.items[0].key, index))
            else:
                heapq.heappop(heads)
                empty.append(source)
            for other in empty:
                if other.external and other.bound < candidate.time:
                    other.bound = candidate.time  # passed while empty: what comes below is late
            released.append(candidate)
        clock = partial(self._clock, idle_us)
        frontier = min((source.low(clock) for source in sources), default=ALWAYS)
        return Released(
            released,
            clock(self._polled_at_us) if frontier == ALWAYS else frontier,
            self._idle(idle_timeout_us),
        )

    def _clock(self, idle_us: int, polled_at_us: int | None) -> int:
        """The group's event time while its sources are idle, as of a poll: the latest event
        time seen, less `idle`, advanced by the time that passed from the latest arrival to the
        poll."""
        if self._max_seen == NEVER or self._last_arrival is None or polled_at_us is None:
            return NEVER
        return self._max_seen - idle_us + max(0, polled_at_us - self._last_arrival)

    def _idle(self, idle_timeout_us: int) -> bool:
        if any(source.items for source in self._sources):
            return False
        if not self._caught_up or not all(self._caught_up.values()):
            return False
        if self._polled_at_us is None:
            return False
        return self._last_arrival is None or (
            self._polled_at_us - self._last_arrival >= idle_timeout_us
        )
