"""What one stage tells the next through their internal topic, besides its outputs.

Every output on an internal topic carries headers naming its origin (the upstream group, by
partition number), its sequence number in that origin's outputs, and the event time it is ordered
by. After a batch's outputs are acknowledged, the upstream group writes a watermark record to every
partition of the internal topic: "origin p has published everything below event time W", and
whether it is idle (nothing buffered, nothing arriving: do not wait for it). The downstream stage
merges its origins by event time and passes an empty origin only below its watermark, or while it
is idle (`worker.engine.merge`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from worker.engine.records import Header, Outgoing

ORIGIN = "order-status-origin"
SEQUENCE = "order-status-sequence"
ORDER_TIME = "order-status-time"
CONTROL = "order-status-control"
WATERMARK = b"watermark"


@dataclass(frozen=True, slots=True)
class Frontier:
    below: int  # everything below this event time (µs since the epoch) is published
    idle: bool


@dataclass(frozen=True, slots=True)
class Watermark:
    """Each origin named has published everything below its event time, idle or not."""

    origins: dict[int, Frontier]
    groups: int  # how many groups the upstream stage has


@dataclass(frozen=True, slots=True)
class Routing:
    """The headers of an output on an internal topic."""

    origin: int
    sequence: int
    time_us: int

    def headers(self) -> list[Header]:
        return [
            (ORIGIN, str(self.origin).encode()),
            (SEQUENCE, str(self.sequence).encode()),
            (ORDER_TIME, str(self.time_us).encode()),
        ]


def watermark_records(
    topic: str, partitions: int, origins: Mapping[int, Frontier], groups: int
) -> list[Outgoing]:
    value = json.dumps(
        {
            "origins": {str(o): [f.below, f.idle] for o, f in origins.items()},
            "groups": groups,
        }
    ).encode()
    return [
        Outgoing(topic, None, value, [(CONTROL, WATERMARK)], partition)
        for partition in range(partitions)
    ]


def read_control(headers: Sequence[Header], value: bytes | None) -> Watermark | None:
    """The watermark a record carries, None for any other record."""
    if (CONTROL, WATERMARK) not in headers or value is None:
        return None
    body = json.loads(value)
    origins = {
        int(k): Frontier(int(below), bool(idle)) for k, (below, idle) in body["origins"].items()
    }
    return Watermark(origins, int(body["groups"]))


def read_routing(headers: Sequence[Header]) -> Routing | None:
    """The routing headers of an output on an internal topic; None if any is missing or bad."""
    found: dict[str, int] = {}
    for name, value in headers:
        if name in (ORIGIN, SEQUENCE, ORDER_TIME) and value is not None and value.isdigit():
            found[name] = int(value)
    if len(found) < 3:
        return None
    return Routing(found[ORIGIN], found[SEQUENCE], found[ORDER_TIME])
