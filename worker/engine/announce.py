"""The watermarks one stage sends the next (`worker.engine.merge` reads them): how far each of its
groups has got in event time, and whether it is idle.

Sent at once with a batch that publishes (in the same request, after the outputs they cover), at
most every `interval_s` otherwise; and every group's frontier again once per `heartbeat_s`, moved
or not. A downstream group taken up again (a restart, a rebalance, a fence) resumes past the
watermarks it read before, and without hearing again from an upstream group that went quiet it
would wait for it for good.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.engine.control import Frontier, watermark_records
from worker.engine.group import GroupState
from worker.engine.merge import NEVER
from worker.engine.records import Outgoing


@dataclass(frozen=True, slots=True)
class Announcement:
    """The watermarks a batch sends the next stage (`records`), and what they say (`moved`)."""

    at: float  # time.monotonic()
    heartbeat: bool  # every group's frontier, moved or not
    moved: Mapping[int, Frontier]
    records: list[Outgoing]


class Announcer:
    """What one stage tells the next stage (`downstream_topic`; None: there is none)."""

    def __init__(
        self,
        downstream_topic: str | None,
        downstream_partitions: int,
        groups: int,
        interval_s: float,
        heartbeat_s: float,
    ) -> None:
        self._topic = downstream_topic
        self._partitions = downstream_partitions
        self._groups = groups
        self._interval_s = interval_s
        self._heartbeat_s = heartbeat_s
        self._announced_at = 0.0
        self._repeated_at = 0.0  # when every group's frontier was last announced

    def announcement(self, published: bool, groups: Mapping[int, GroupState[Any]]) -> Announcement:
        """What to send after a batch (`published`: it publishes outputs)."""
        now = time.monotonic()
        if self._topic is None or (not published and now - self._announced_at < self._interval_s):
            return Announcement(now, False, {}, [])
        heartbeat = now - self._repeated_at >= self._heartbeat_s
        moved = {
            partition: Frontier(max(group.frontier, group.announced), group.idle)
            for partition, group in groups.items()
            if group.frontier > group.announced
            or group.idle != group.announced_idle
            or (heartbeat and (group.announced != NEVER or group.idle))
        }
        records = (
            watermark_records(self._topic, self._partitions, moved, self._groups) if moved else []
        )
        return Announcement(now, heartbeat, moved, records)

    def announced(self, announcement: Announcement, groups: Mapping[int, GroupState[Any]]) -> None:
        """The announcement was published (acknowledged by the broker)."""
        if announcement.heartbeat:
            self._repeated_at = announcement.at
        if not announcement.records:
            return
        self._announced_at = announcement.at
        for partition, frontier in announcement.moved.items():
            group = groups[partition]
            group.announced, group.announced_idle = frontier.below, frontier.idle
