"""A realistic, seeded stream of inbound CloudEvents for the benchmark and the crash test.

Orders of 1 to 5 line items, 1 to 3 work orders each, 2 to 6 tasks each, progressing through their
lifecycles with some fallout, holds and cancellations, interleaved across orders, on all three
inbound topics. About 1% of events are delivered twice and some task updates arrive after a newer
one (lower `sequence`, so stale). The same seed gives the same stream.

Every event has its own time, increasing in stream order, so the stream is in event-time order: the
order the worker applies each order's events in, and the order `order-status simulate` reads them.
A duplicate keeps its original's time and comes right after another event of its topic and order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TERM_END = "2031-01-01T00:00:00Z"  # far enough ahead that no term ends during a run
FALLOUTS = ("provisioning failure", "inventory allocation failure", "billing issue")


@dataclass(frozen=True)
class StreamSpec:
    orders: int = 200
    seed: int = 7
    duplicate_rate: float = 0.01
    stale_rate: float = 0.02
    fallout_rate: float = 0.08
    hold_rate: float = 0.1
    cancel_rate: float = 0.06
    prefix: str = ""  # prepended to every id, so runs against one Redis never share an order
    start: datetime = START
    """The first event's time. A stream fed to a worker after another must start after it: the
    worker applies in event time, and its clock has already passed an earlier stream's times."""


class _Order:
    """One order's events, in its own order, before interleaving."""

    def __init__(self, number: int, prefix: str, rng: random.Random) -> None:
        self.id = f"{prefix}O-{number:05d}"
        self.rng = rng
        self.script: list[tuple[str, Event, int | None]] = []  # (type, data, sequence)
        self.sequences: dict[str, int] = {}

    def add(self, event_type: str, data: Event, entity: str | None = None) -> None:
        sequence = None
        if entity is not None:
            sequence = self.sequences[entity] = self.sequences.get(entity, 0) + 1
        self.script.append((event_type, {"order_id": self.id, **data}, sequence))


def _order_script(number: int, spec: StreamSpec, rng: random.Random) -> _Order:
    order = _Order(number, spec.prefix, rng)
    tag = f"{spec.prefix}{number:05d}"
    oid = order.id
    profile = rng.choices(["standard", "psa", "tmf"], weights=[6, 2, 2])[0]
    draft = rng.random() < 0.5
    line_items: list[Event] = []
    later_work_orders: list[tuple[str, str, list[str]]] = []  # created on the work-order topic
    tasks: list[str] = []
    for li in range(rng.randint(1, 5)):
        line_item_id = f"{oid}-L{li}"
        work_orders = []
        for wo in range(rng.randint(1, 3)):
            work_order_id = f"{line_item_id}-W{wo}"
            task_ids = [f"{work_order_id}-T{t}" for t in range(rng.randint(2, 6))]
            tasks.extend(task_ids)
            if rng.random() < 0.6:
                work_orders.append(
                    {
                        "work_order_id": work_order_id,
                        "kind": "service",
                        "tasks": [{"task_id": task_id} for task_id in task_ids],
                    }
                )
            else:
                later_work_orders.append((line_item_id, work_order_id, task_ids))
        item: Event = {"line_item_id": line_item_id, "action": "add", "work_orders": work_orders}
        # One service per order, account and product: which of several services flips a shared
        # account first depends on timing across partitions, so the stream shares none.
        if li == 0:
            item |= {
                "service_id": f"SVC-{tag}",
                "product_id": f"PRD-{tag}",
                "term": {"end": TERM_END, "renewal": "auto_renew"},
            }
        line_items.append(item)
    order.add(
        "order.created",
        {
            "profile": profile,
            "state": "draft" if draft else "new",
            "account_id": f"ACC-{tag}",
            "line_items": line_items,
        },
        entity=oid,
    )
    if draft:
        order.add("order.submitted", {"actor": "capture"}, entity=oid)
    order.add("order.approved", {"actor": "manager"}, entity=oid)
    for line_item_id, work_order_id, task_ids in later_work_orders:
        order.add(
            "workorder.created",
            {
                "line_item_id": line_item_id,
                "work_order_id": work_order_id,
                "kind": "resource",
                "state": "qualified",
            },
        )
        for task_id in task_ids:
            order.add(
                "task.created",
                {"work_order_id": work_order_id, "task_id": task_id, "state": "open"},
                entity=task_id,
            )
    _progress(order, tasks, spec, rng)
    return order


def _progress(order: _Order, tasks: list[str], spec: StreamSpec, rng: random.Random) -> None:
    """Each task's updates, interleaved within the order, with holds and cancellations."""
    lanes: list[list[tuple[str, Event, str | None]]] = []
    for task_id in tasks:
        lane: list[tuple[str, Event, str | None]] = [
            ("task.updated", {"task_id": task_id, "state": "scheduled"}, task_id),
            ("task.updated", {"task_id": task_id, "state": "in_progress"}, task_id),
        ]
        if rng.random() < spec.fallout_rate:
            fallout: Event = {"task_id": task_id, "fallout_id": f"F-{task_id}"}
            lane += [
                (
                    "task.fallout.raised",
                    fallout
                    | {
                        "category": rng.choice(FALLOUTS),
                        "reason": "device not reachable",
                        "assigned_group": "provisioning",
                    },
                    task_id,
                ),
                ("task.fallout.reassigned", fallout | {"assigned_group": "network-ops"}, task_id),
                ("task.fallout.resolved", fallout | {"resolution": "fixed"}, task_id),
            ]
        final = "canceled" if rng.random() < 0.05 else "closed_complete"
        lane.append(("task.updated", {"task_id": task_id, "state": final}, task_id))
        lanes.append(lane)
    commands: list[tuple[str, Event, str | None]] = []
    if rng.random() < spec.hold_rate:
        commands = [
            ("order.hold.requested", {"actor": "ops"}, order.id),
            ("order.resumed", {"actor": "ops"}, order.id),
        ]
    elif rng.random() < spec.cancel_rate:
        commands = [
            ("order.cancellation.requested", {"actor": "customer"}, order.id),
            ("order.cancellation.approved", {"actor": "manager"}, order.id),
        ]
    lanes.append(commands)
    while any(lanes):
        lane = rng.choice([lane for lane in lanes if lane])
        event_type, data, entity = lane.pop(0)
        order.add(event_type, data, entity)


def _envelope(
    event_id: str, event_type: str, data: Event, sequence: int | None, moment: datetime
) -> Event:
    event: Event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/bench",
        "type": event_type,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    if sequence is not None:
        event["sequence"] = sequence
    return event


def _topic_family(event_type: str) -> str:
    return event_type.split(".", 1)[0]


def generate(spec: StreamSpec = StreamSpec()) -> list[Event]:
    """The whole stream, in event-time order (see the module docstring for duplicates)."""
    rng = random.Random(spec.seed)
    orders = [_order_script(number, spec, rng) for number in range(spec.orders)]
    for order in orders:
        _make_stale(order, spec, rng)
    # Interleave: up to 20 orders are in flight at once, the rest start as others finish.
    waiting, active = list(reversed(orders)), list[_Order]()
    stream: list[Event] = []
    moment = spec.start
    while waiting or active:
        while waiting and len(active) < 20:
            active.append(waiting.pop())
        order = rng.choice(active)
        event_type, data, sequence = order.script.pop(0)
        moment += timedelta(seconds=1)
        event_id = f"{spec.prefix}evt-{len(stream):07d}"
        stream.append(_envelope(event_id, event_type, data, sequence, moment))
        if not order.script:
            active.remove(order)
    return _with_duplicates(stream, spec, rng)


def _make_stale(order: _Order, spec: StreamSpec, rng: random.Random) -> None:
    """Swap some consecutive updates of one task: the newer arrives first, the older is stale."""
    script = order.script
    for index in range(len(script) - 1):
        first, second = script[index], script[index + 1]
        same_task = (
            first[0] == second[0] == "task.updated" and first[1]["task_id"] == second[1]["task_id"]
        )
        if same_task and rng.random() < spec.stale_rate:
            script[index], script[index + 1] = second, first


def _with_duplicates(stream: list[Event], spec: StreamSpec, rng: random.Random) -> list[Event]:
    result: list[Event] = []
    pending: list[Event] = []  # duplicates waiting for the next event of their topic and order
    for event in stream:
        result.append(event)
        key = (_topic_family(event["type"]), event["data"]["order_id"])
        for duplicate in [
            d for d in pending if (_topic_family(d["type"]), d["data"]["order_id"]) == key
        ]:
            result.append(duplicate)
            pending.remove(duplicate)
        if rng.random() < spec.duplicate_rate:
            pending.append(dict(event))
    return result
