"""What a stage holds in memory for one group it owns (partition q of each of its topics): the
merge buffer, the group's meta as last written (its version is the fence), and what was consumed
(offsets and origins' sequence numbers, to skip what is already applied or buffered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from worker.engine.merge import NEVER, GroupMerge, Partition
from worker.store.groups import GroupMeta

T = TypeVar("T")


@dataclass(slots=True)
class GroupState(Generic[T]):
    partition: int
    merge: GroupMerge[T]
    meta: GroupMeta
    partitions: list[Partition]
    """The topic-partitions of the group."""
    next_offsets: dict[Partition, int] = field(default_factory=dict)
    """Per topic-partition, the offset of the next record not yet seen (buffered or applied)."""
    next_sequences: dict[int, int] = field(default_factory=dict)
    """Per origin, the sequence number of its next output not yet seen."""
    due_floor_ms: int | None = None
    """No timer of the group is due before this (None: none is pending)."""
    frontier: int = NEVER
    idle: bool = False
    announced: int = NEVER
    """The watermark last announced downstream."""
    announced_idle: bool = False

    def seen(self, partition: Partition, offset: int) -> bool:
        return offset < self.next_offsets.get(partition, 0)

    def applied_offsets(self) -> dict[Partition, int]:
        """Per topic-partition, where to resume: its first record still buffered, else the next
        one not seen (everything before was applied, or dead-lettered)."""
        resume = dict(self.next_offsets)
        resume.update(self.merge.first_offsets())
        return resume

    def applied_sequences(self) -> dict[int, int]:
        resume = dict(self.next_sequences)
        resume.update(self.merge.next_sequences())
        return resume

    def meta_for_write(self, sequence: int) -> GroupMeta:
        """The meta a write of this batch leaves (its version: the one read, for the fence)."""
        return GroupMeta(
            version=self.meta.version,
            offsets={p.topic: offset for p, offset in self.applied_offsets().items()},
            sequences=self.applied_sequences(),
            sequence=sequence,
            announced=self.frontier if self.frontier != NEVER else self.meta.announced,
            exists=True,
        )
