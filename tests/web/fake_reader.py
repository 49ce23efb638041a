"""An in-memory `PlanReader` (a test double of the worker's Redis store), and a feed that runs
inbound CloudEvents through the worker's rules (`simulate`) and writes the outcome into it the way
the store writes: each changed order with its new timeline events, its version bumped, its lists
from `order_lists`."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from worker.rules import OrderRecord, Profile
from worker.rules.service import ServiceRecord
from worker.settings import Settings
from worker.simulate import simulate
from worker.web import ListedOrder, Overview, PlanList, order_lists

Json = dict[str, Any]

# The outbound types of the status and ops streams: what an order's timeline holds.
TIMELINE_TYPES: Final = frozenset(
    {
        "task.state.changed",
        "workorder.state.changed",
        "lineitem.state.changed",
        "order.state.changed",
        "order.deleted",
        "fallout.raised",
        "fallout.resolved",
        "fallout.reassigned",
        "command.rejected",
        "update.stale",
    }
)


class FakeReader:
    def __init__(self) -> None:
        self.records: dict[str, OrderRecord] = {}
        self.versions: Counter[str] = Counter()
        self.timelines: dict[str, list[Json]] = {}  # newest first
        self.changed_at: dict[str, datetime] = {}
        self.services: dict[str, ServiceRecord] = {}

    def write_order(self, record: OrderRecord, events: list[Json], at: datetime) -> None:
        """What the store does in one atomic step: the snapshot, its version, its timeline."""
        order_id = record.order_id
        self.records[order_id] = record
        self.versions[order_id] += 1
        self.timelines[order_id] = [*reversed(events), *self.timelines.get(order_id, [])]
        self.changed_at[order_id] = at

    async def order(self, order_id: str) -> OrderRecord | None:
        return self.records.get(order_id)

    async def order_version(self, order_id: str) -> int:
        return self.versions[order_id]

    async def timeline(self, order_id: str, limit: int) -> list[Json]:
        return self.timelines.get(order_id, [])[:limit]

    async def service(self, service_id: str) -> ServiceRecord | None:
        return self.services.get(service_id)

    async def overview(self, limit: int) -> Overview:
        newest_first = sorted(self.records, key=self.changed_at.__getitem__, reverse=True)
        lists: dict[str, list[ListedOrder]] = {PlanList.RECENTLY_CHANGED: []}
        for order_id in newest_first:
            record = self.records[order_id]
            listed = ListedOrder(
                order_id=order_id,
                state=record.order.state if record.order else None,
                changed_at=self.changed_at[order_id],
            )
            for name in [PlanList.RECENTLY_CHANGED, *order_lists(record)]:
                lists.setdefault(name, []).append(listed)
        counts = Counter(
            record.order.state
            for record in self.records.values()
            if record.order is not None and not record.deleted
        )
        return Overview(
            lists={name: orders[:limit] for name, orders in lists.items()}, counts=dict(counts)
        )


class Feed:
    """Sends inbound CloudEvents through the rules into a FakeReader."""

    def __init__(self, reader: FakeReader, profile: Profile = Profile.STANDARD) -> None:
        self.reader = reader
        self.profile = profile
        self.lines: list[str] = []
        self.seen: set[str] = set()

    def send(self, *events: Json) -> None:
        """Apply the events after every earlier one (the rules are deterministic, so the whole
        feed is simulated again and the outputs not seen before are what these caused)."""
        self.lines.extend(json.dumps(event) for event in events)
        result = simulate(self.lines, Settings(default_profile=self.profile))
        assert not result.invalid, result.invalid
        new_events = [event for event in result.emitted if event["id"] not in self.seen]
        self.seen.update(event["id"] for event in new_events)
        at = datetime.fromisoformat(events[-1]["time"])
        for order_id, record in result.records.items():
            ours = [
                event
                for event in new_events
                if event["type"] in TIMELINE_TYPES and event["data"].get("order_id") == order_id
            ]
            before = self.reader.records.get(order_id)
            if ours or before is None or before.model_dump() != record.model_dump():
                self.reader.write_order(record, ours, at)
        self.reader.services.update(result.services)


T0: Final = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


class OrderEvents:
    """Inbound CloudEvents of one order, as JSON: ids `<order>-e1`, `-e2`, ... one minute apart."""

    def __init__(self, order_id: str, start: datetime = T0) -> None:
        self.order_id = order_id
        self.start = start
        self.count = 0

    def make(self, type_: str, source: str = "/tests", **data: Any) -> Json:
        self.count += 1
        return {
            "specversion": "1.0",
            "id": f"{self.order_id}-e{self.count}",
            "source": source,
            "type": type_,
            "subject": self.order_id,
            "time": (self.start + timedelta(minutes=self.count)).isoformat(),
            "datacontenttype": "application/json",
            "data": {"order_id": self.order_id, **data},
        }

    def command(self, type_: str, actor: str = "agent.kim", reason: str = "because") -> Json:
        return self.make(type_, actor=actor, reason=reason)

    def task_updated(self, task_id: str, state: str) -> Json:
        return self.make("task.updated", task_id=task_id, state=state)


def order_in_fallout(e: OrderEvents, service_prefix: str = "SVC") -> list[Json]:
    """An order in progress with an open fallout, a resolved one, a refused command and an event
    parked for a work order that does not exist yet:

        LI-1 add <prefix>-1 (term, auto renew)   WO-1 service: T-1 closed complete, T-2 on hold
                                                   (fallout FO-1 open, reassigned)
        LI-2 add <prefix>-2                      WO-2 resource: T-3 resolved (fallout FO-0 resolved)

    Later events of the order continue from `e`."""
    term = {"end": "2027-11-21T00:00:00Z", "renewal": "auto_renew"}
    return [
        e.make(
            "order.created",
            account_id="ACC-1",
            line_items=[
                {
                    "line_item_id": "LI-1",
                    "action": "add",
                    "service_id": f"{service_prefix}-1",
                    "product_id": "fiber-1g",
                    "term": term,
                    "work_orders": [
                        {
                            "work_order_id": "WO-1",
                            "kind": "service",
                            "state": "scheduled",
                            "tasks": [
                                {"task_id": "T-1", "state": "scheduled"},
                                {"task_id": "T-2", "state": "open"},
                            ],
                        }
                    ],
                },
                {
                    "line_item_id": "LI-2",
                    "action": "add",
                    "service_id": f"{service_prefix}-2",
                    "work_orders": [
                        {
                            "work_order_id": "WO-2",
                            "kind": "resource",
                            "state": "qualified",
                            "tasks": [{"task_id": "T-3", "state": "open"}],
                        }
                    ],
                },
            ],
        ),
        e.command("order.submitted", reason="capture complete"),
        e.command("order.approved", actor="manager.ode", reason="credit check passed"),
        e.command("order.approved", actor="manager.ode", reason="twice"),  # refused
        e.task_updated("T-1", "in_progress"),
        e.task_updated("T-1", "closed_complete"),
        e.task_updated("T-3", "in_progress"),
        e.make(
            "task.fallout.raised",
            task_id="T-3",
            fallout_id="FO-0",
            category="inventory allocation failure",
            reason="no spare router",
            assigned_group="logistics",
        ),
        e.make("task.fallout.resolved", task_id="T-3", fallout_id="FO-0", resolution="restocked"),
        e.task_updated("T-2", "in_progress"),
        e.make(
            "task.fallout.raised",
            task_id="T-2",
            fallout_id="FO-1",
            category="provisioning failure",
            reason="OLT port not reachable",
            assigned_group="provisioning",
        ),
        e.make(
            "task.fallout.reassigned",
            task_id="T-2",
            fallout_id="FO-1",
            assigned_group="network-operations",
        ),
        e.make("task.created", work_order_id="WO-9", task_id="T-9", state="open"),  # parked
    ]


def order_overdue(e: OrderEvents) -> list[Json]:
    """An order whose task T-1 falls due a minute after it is created (LI-1 and the order only
    later), then submitted and approved: T-1 is overdue from its due time, judged by its timer
    when the approval's time passes it. Later events continue from `e`."""
    return [
        e.make(
            "order.created",
            due_at=(T0 + timedelta(days=30)).isoformat(),
            line_items=[
                {
                    "line_item_id": "LI-1",
                    "due_at": (T0 + timedelta(days=7)).isoformat(),
                    "work_orders": [
                        {
                            "work_order_id": "WO-1",
                            "state": "scheduled",
                            "tasks": [
                                {
                                    "task_id": "T-1",
                                    "due_at": (T0 + timedelta(minutes=2)).isoformat(),
                                },
                                {"task_id": "T-2"},
                            ],
                        }
                    ],
                }
            ],
        ),
        e.command("order.submitted"),  # at T0 + 2 min: T-1 falls due
        e.command("order.approved"),  # at T0 + 3 min: its jeopardy timer fired before this
    ]
