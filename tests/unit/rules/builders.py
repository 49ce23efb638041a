"""Terse builders for the order rules' tests: inbound events, a running order, and readers of what
the rules emitted.

    e = Events()
    run = Run()
    run.send(e.created(item("L1", wo("W1", task("T1")))), e.command("order.submitted"))
    sent = run.send(e.task_updated("T1", "in_progress"))
    assert sent.state("O-1") == "in_progress"
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import TypeAdapter

from schemas import inbound as ev
from schemas import outbound as out
from schemas.inbound import Action, Term
from schemas.internal import ServiceAction, ServiceActionData
from worker.rules import Emitted, Input, Order, OrderRecord, Policy, Profile, apply
from worker.rules.inputs import LEVELS, JeopardyLimits

ORDER_ID = "O-1"
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

JEOPARDY_OFF = dict.fromkeys(Profile, JeopardyLimits(dict.fromkeys(LEVELS), dict.fromkeys(LEVELS)))
"""`Policy.jeopardy` that judges nothing: for tests of other timers."""

_EVENT = TypeAdapter[ev.OrderEvent](ev.OrderEventField)

Json = dict[str, Any]


# --- the hierarchy carried by order.created and order.line_item.added -----------------------------


def task(task_id: str, state: str = "open") -> Json:
    return {"task_id": task_id, "state": state}


def wo(work_order_id: str, *tasks: Json, state: str = "draft", kind: str = "service") -> Json:
    return {"work_order_id": work_order_id, "kind": kind, "state": state, "tasks": list(tasks)}


def item(line_item_id: str, *work_orders: Json, action: str = "add", **fields: Any) -> Json:
    return {
        "line_item_id": line_item_id,
        "action": action,
        "work_orders": list(work_orders),
        **fields,
    }


# --- inbound events -------------------------------------------------------------------------------


@dataclass
class Events:
    """Builds one order's inbound events: ids evt-1, evt-2, ... and times one second apart."""

    order_id: str = ORDER_ID
    count: int = 0
    source: str = "/tests"

    def make(
        self,
        type_: str,
        *,
        sequence: int | None = None,
        time: datetime | None = None,
        untimed: bool = False,
        event_id: str | None = None,
        source: str | None = None,
        **data: Any,
    ) -> ev.OrderEvent:
        """An event of `type_`; without `time` it is T0 plus one second per event built."""
        self.count += 1
        body: Json = {
            "specversion": "1.0",
            "id": event_id or f"evt-{self.count}",
            "source": source or self.source,
            "type": type_,
            "data": {"order_id": self.order_id, **data},
        }
        if not untimed:
            body["time"] = (time or T0 + timedelta(seconds=self.count)).isoformat()
        if sequence is not None:
            body["sequence"] = sequence
        return _EVENT.validate_python(body)

    def created(
        self, *line_items: Json, profile: str | None = None, state: str = "draft", **fields: Any
    ) -> ev.OrderEvent:
        if profile is not None:
            fields["profile"] = profile
        return self.make("order.created", state=state, line_items=list(line_items), **fields)

    def command(
        self, type_: str, *, actor: str | None = None, reason: str | None = None, **envelope: Any
    ) -> ev.OrderEvent:
        return self.make(type_, actor=actor, reason=reason, **envelope)

    def line_item_command(
        self, type_: str, line_item_id: str, *, actor: str | None = None, reason: str | None = None
    ) -> ev.OrderEvent:
        return self.make(type_, line_item_id=line_item_id, actor=actor, reason=reason)

    def state_set(
        self, state: str, *, actor: str | None = None, reason: str | None = None
    ) -> ev.OrderEvent:
        return self.make("order.state.set", state=state, actor=actor, reason=reason)

    def item_added(self, line_item: Json) -> ev.OrderEvent:
        return self.make("order.line_item.added", line_item=line_item)

    def item_removed(self, line_item_id: str) -> ev.OrderEvent:
        return self.make("order.line_item.removed", line_item_id=line_item_id)

    def wo_created(
        self, line_item_id: str, work_order_id: str, state: str = "draft", kind: str = "service"
    ) -> ev.OrderEvent:
        return self.make(
            "workorder.created",
            line_item_id=line_item_id,
            work_order_id=work_order_id,
            kind=kind,
            state=state,
        )

    def wo_updated(self, work_order_id: str, state: str, **envelope: Any) -> ev.OrderEvent:
        return self.make("workorder.updated", work_order_id=work_order_id, state=state, **envelope)

    def task_created(self, work_order_id: str, task_id: str, state: str = "open") -> ev.OrderEvent:
        return self.make("task.created", work_order_id=work_order_id, task_id=task_id, state=state)

    def task_updated(self, task_id: str, state: str, **envelope: Any) -> ev.OrderEvent:
        return self.make("task.updated", task_id=task_id, state=state, **envelope)

    def fallout_raised(
        self,
        task_id: str,
        fallout_id: str,
        category: str = "provisioning failure",
        reason: str = "port not reachable",
        assigned_group: str | None = "network-ops",
    ) -> ev.OrderEvent:
        return self.make(
            "task.fallout.raised",
            task_id=task_id,
            fallout_id=fallout_id,
            category=category,
            reason=reason,
            assigned_group=assigned_group,
        )

    def fallout_resolved(
        self, task_id: str, fallout_id: str, resolution: str | None = None
    ) -> ev.OrderEvent:
        return self.make(
            "task.fallout.resolved", task_id=task_id, fallout_id=fallout_id, resolution=resolution
        )

    def fallout_reassigned(
        self, task_id: str, fallout_id: str, assigned_group: str
    ) -> ev.OrderEvent:
        return self.make(
            "task.fallout.reassigned",
            task_id=task_id,
            fallout_id=fallout_id,
            assigned_group=assigned_group,
        )


def inputs(*events: ev.OrderEvent) -> list[Input[ev.OrderEvent]]:
    """The events as the worker hands them to the rules, received at T0."""
    return [Input(event, T0) for event in events]


# --- event sequences that bring an order somewhere ------------------------------------------------

Steps = Callable[[Events], list[ev.OrderEvent]]

# Two line items, each with one work order of one task: the usual shape of an order in these tests.
TWO_ITEMS = (item("L1", wo("W1", task("T1"))), item("L2", wo("W2", task("T2"))))
# One line item with two work orders without tasks (their owner reports their state).
TWO_WORK_ORDERS = (item("L1", wo("W1"), wo("W2")),)


def submitted(*items: Json, profile: str | None = None) -> Steps:
    return lambda e: [e.created(*items, profile=profile), e.command("order.submitted")]


def for_enrichment(*items: Json) -> Steps:
    """Created for enrichment and submitted: the order waits in submitted."""
    return lambda e: [e.created(*items, enrichment=True), e.command("order.submitted")]


def approved(*items: Json, profile: str | None = None) -> Steps:
    return lambda e: [*submitted(*items, profile=profile)(e), e.command("order.approved")]


def started(*items: Json, profile: str | None = None) -> Steps:
    """Approved, and task T1 in progress (so the order is in progress)."""
    return lambda e: [*approved(*items, profile=profile)(e), e.task_updated("T1", "in_progress")]


def then(first: Steps, *more: Callable[[Events], ev.OrderEvent]) -> Steps:
    """`first`'s events followed by one event from each of `more`."""
    return lambda e: [*first(e), *(make(e) for make in more)]


def event(
    method: Callable[..., ev.OrderEvent], *args: Any, **kwargs: Any
) -> Callable[[Events], ev.OrderEvent]:
    """An event built later from the test's Events: `event(Events.task_updated, "T1", "open")`."""
    return lambda e: method(e, *args, **kwargs)


def commands(first: Steps, *types: str) -> Steps:
    """`first`'s events followed by the given lifecycle commands."""
    return lambda e: [*first(e), *(e.command(type_) for type_ in types)]


_IN_PROGRESS = started(*TWO_ITEMS)

REACH: dict[str, Steps] = {
    "draft": lambda e: [e.created(*TWO_ITEMS)],
    "submitted": for_enrichment(*TWO_ITEMS),
    "enrichment_in_progress": commands(for_enrichment(*TWO_ITEMS), "order.enrichment.started"),
    "enrichment_on_hold": commands(
        for_enrichment(*TWO_ITEMS), "order.enrichment.started", "order.enrichment.held"
    ),
    "new": submitted(*TWO_ITEMS),
    "acknowledged": approved(*TWO_ITEMS),
    "in_progress": _IN_PROGRESS,
    "on_hold": commands(_IN_PROGRESS, "order.hold.requested"),
    "awaiting_information": commands(_IN_PROGRESS, "order.information.requested"),
    "revision_in_progress": commands(_IN_PROGRESS, "order.revision.started"),
    "assessing_cancellation": commands(_IN_PROGRESS, "order.cancellation.requested"),
    "cancellation_in_progress": commands(
        _IN_PROGRESS, "order.cancellation.requested", "order.cancellation.approved"
    ),
    "completed": then(
        _IN_PROGRESS,
        lambda e: e.task_updated("T1", "closed_complete"),
        lambda e: e.task_updated("T2", "closed_complete"),
    ),
    "canceled": commands(_IN_PROGRESS, "order.canceled"),
    "rejected": commands(submitted(*TWO_ITEMS), "order.rejected"),
    "partial": then(
        started(*TWO_ITEMS, profile="tmf"),
        lambda e: e.wo_updated("W1", "failed"),
        lambda e: e.wo_updated("W2", "closed_complete"),
    ),
    "failed": then(
        started(*TWO_ITEMS, profile="tmf"),
        lambda e: e.wo_updated("W1", "failed"),
        lambda e: e.wo_updated("W2", "failed"),
    ),
}
"""How a standard order of TWO_ITEMS (tmf for partial and failed) reaches each order state; every
overlay is entered from in_progress. `scheduled` is a line item state only."""


# --- what the rules emitted -----------------------------------------------------------------------

Change = (
    out.TaskStateChangedData
    | out.WorkOrderStateChangedData
    | out.LineItemStateChangedData
    | out.OrderStateChangedData
)


def entity_of(change: Change) -> str:
    """The id of the entity a state-change event is about."""
    match change:
        case out.TaskStateChangedData():
            return change.task_id
        case out.WorkOrderStateChangedData():
            return change.work_order_id
        case out.LineItemStateChangedData():
            return change.line_item_id
        case out.OrderStateChangedData():
            return change.order_id


_CHANGE_TYPES = (
    out.TaskStateChanged,
    out.WorkOrderStateChanged,
    out.LineItemStateChanged,
    out.OrderStateChanged,
)


def change_events(emitted: list[Emitted]) -> list[Change]:
    """Every *.state.changed event's data, in emission order."""
    return [e.event.data for e in emitted if isinstance(e.event, _CHANGE_TYPES)]


@dataclass
class Sent:
    """What one `Run.send` emitted, with readers keyed by entity id."""

    emitted: list[Emitted]

    @property
    def changes(self) -> dict[str, Change]:
        """The last change of each entity (one per entity when one event was sent)."""
        return {entity_of(change): change for change in change_events(self.emitted)}

    def state(self, entity_id: str) -> str:
        """The state the entity changed to; fails when it did not change."""
        changes = self.changes
        assert entity_id in changes, f"{entity_id} did not change; changes: {list(changes)}"
        return changes[entity_id].state

    def label(self, entity_id: str, system: str) -> str:
        labels: str = getattr(self.changes[entity_id].labels, system)
        return labels

    @property
    def rejected(self) -> list[out.CommandRejectedData]:
        return [e.event.data for e in self.emitted if isinstance(e.event, out.CommandRejected)]

    @property
    def stale(self) -> list[out.UpdateStaleData]:
        return [e.event.data for e in self.emitted if isinstance(e.event, out.UpdateStale)]

    def fallouts(self, type_: str) -> list[out.FalloutData]:
        return [
            e.event.data
            for e in self.emitted
            if isinstance(e.event, out.FalloutEvent) and e.event.type == type_
        ]

    def of_type(self, type_: str) -> list[Emitted]:
        return [e for e in self.emitted if e.event.type == type_]


@dataclass
class Run:
    """One order fed through `worker.rules.apply`, event batch by event batch."""

    profile: Profile = Profile.STANDARD
    order_id: str = ORDER_ID
    record: OrderRecord | None = None
    history: list[Emitted] = field(default_factory=list)

    def send(self, *events: ev.OrderEvent) -> Sent:
        outcome = apply(self.record, self.order_id, inputs(*events), Policy(self.profile))
        self.record = outcome.record
        self.history.extend(outcome.emitted)
        return Sent(outcome.emitted)

    @property
    def order(self) -> Order:
        assert self.record is not None
        assert self.record.order is not None
        return self.record.order

    def snapshot(self) -> Json:
        """The order as plain data, to compare before and after a refused event."""
        return self.order.model_dump(mode="json")

    def states(self) -> dict[str, str]:
        """Every entity's current state, keyed by id (none before the order exists)."""
        if self.record is None or self.record.order is None:
            return {}
        order = self.record.order
        return {
            **{key: value.state for key, value in order.tasks.items()},
            **{key: value.state for key, value in order.work_orders.items()},
            **{key: value.state for key, value in order.line_items.items()},
            order.order_id: order.state,
        }


# --- what the order stage tells the service stage -------------------------------------------------

SERVICE = "S-1"
ORDER = ORDER_ID
ACCOUNT, PRODUCT, LOCATION = "A-1", "P-1", "LOC-1"
TERM_END = datetime(2027, 11, 21, tzinfo=UTC)
EXPIRING = Term(end=TERM_END, renewal="expires")
Outcome = Literal["created", "completed", "canceled"]

_ids = itertools.count(1)


def service_event_id(given: str | None = None) -> str:
    """`given`, else an id no other service event built here has."""
    return given or f"evt-{next(_ids)}"


def action(
    kind: Action,
    outcome: Outcome = "completed",
    *,
    order: str = ORDER,
    line_item: str = "L-1",
    account: str | None = None,
    product: str | None = None,
    location: str | None = None,
    term: Term | None = None,
    event_id: str | None = None,
    time: datetime | None = T0,
) -> ServiceAction:
    """What the order stage tells the service stage a line item did to SERVICE."""
    return ServiceAction(
        id=service_event_id(event_id),
        subject=SERVICE,
        time=time,
        data=ServiceActionData(
            service_id=SERVICE,
            action=kind,
            outcome=outcome,
            order_id=order,
            line_item_id=line_item,
            account_id=account,
            product_id=product,
            location_id=location,
            term=term,
            caused_by=f"order-event-{next(_ids)}",
            at=time or T0,
        ),
    )


def created(
    *, term: Term | None = EXPIRING, event_id: str | None = None, time: datetime | None = T0
) -> ServiceAction:
    """An `add` line item was created: the service exists, with its account, product, location."""
    return action(
        "add",
        "created",
        account=ACCOUNT,
        product=PRODUCT,
        location=LOCATION,
        term=term,
        event_id=event_id,
        time=time,
    )
