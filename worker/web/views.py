"""The pages' view models: a record in, plain data out (pure: no I/O, no clock).

Each state carries its labels in every vocabulary; the page shows the viewer's pick and the JSON API
gives them all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, get_args

from pydantic import computed_field

from schemas.inbound import Term
from schemas.outbound import JeopardyLevel, JeopardyReason
from worker.rules import OrderRecord
from worker.rules.jeopardy import entity_of
from worker.rules.service import ServiceRecord
from worker.rules.snapshot import Order, Task, WorkOrder
from worker.rules.states import OrderState, task_is_final, work_order_is_final
from worker.web.indexes import PlanList
from worker.web.reader import Overview
from worker.web.timeline import TimelineEntry, TimelineStep, timeline_entries, timeline_steps
from worker.web.vocabulary import (
    EntityKind,
    Frozen,
    ServiceBadge,
    StateBadge,
    badge,
    service_badge,
)


class Progress(Frozen):
    final: int
    total: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def percent(self) -> int:
        """Rounded down, so that 100 means all final."""
        return self.final * 100 // self.total if self.total else 0


class FalloutView(Frozen):
    fallout_id: str
    task_id: str
    work_order_id: str
    category: str
    reason: str
    assigned_group: str | None
    open: bool
    history: list[TimelineEntry]  # newest first, as far back as the timeline read goes


# The reasons in words, as the page says them (the JSON API gives the reason's name too).
_JEOPARDY_REASONS: Final[dict[JeopardyReason, str]] = {
    "overdue": "Overdue: not finished by its due time",
    "stalled": "Stalled: no state change for longer than its profile allows",
    "fallout_open": "Fallout open for longer than its profile allows",
}
_JEOPARDY_LEVELS: Final[dict[JeopardyLevel, EntityKind]] = {
    level: EntityKind(level.replace("_", " ")) for level in get_args(JeopardyLevel)
}


class JeopardyView(Frozen):
    """An open jeopardy episode of the order or one of its entities."""

    entity: EntityKind
    entity_id: str
    reason: JeopardyReason
    reason_text: str
    since: datetime
    due_at: datetime | None  # the entity's due time, if it has one
    late_by_s: float | None  # overdue: how far past its due time at the moment of the view


class TaskView(Frozen):
    task_id: str
    state: StateBadge
    open_fallouts: list[str]
    due_at: datetime | None
    jeopardy: list[JeopardyReason]  # of its open episodes


class WorkOrderView(Frozen):
    work_order_id: str
    kind: str
    state: StateBadge
    due_at: datetime | None
    jeopardy: list[JeopardyReason]
    tasks: Progress
    task_views: list[TaskView]


class LineItemView(Frozen):
    line_item_id: str
    action: str
    service_id: str | None
    product_id: str | None
    location_id: str | None
    state: StateBadge
    due_at: datetime | None
    jeopardy: list[JeopardyReason]
    work_orders: Progress
    work_order_views: list[WorkOrderView]


class ServiceSummary(Frozen):
    """A service the order's line items act on."""

    service_id: str
    line_item_ids: list[str]
    status: ServiceBadge | None  # None: the service stage has no record of it (yet)
    term_end: datetime | None
    renewal: str | None


class ParkedView(Frozen):
    event_id: str
    type: str
    subject: str | None
    time: datetime | None
    received_at: datetime
    waiting_for: str


class OrderView(Frozen):
    order_id: str
    created: bool  # False: only parked events so far
    deleted: bool
    profile: str | None
    account_id: str | None
    state: StateBadge | None
    due_at: datetime | None
    jeopardy: list[JeopardyView]  # open episodes, the longest open first
    tasks: Progress
    work_orders: Progress
    line_items: list[LineItemView]
    fallouts: list[FalloutView]  # open ones first
    services: list[ServiceSummary]
    timeline: list[TimelineStep]  # newest first
    parked: list[ParkedView]


def order_view(
    record: OrderRecord,
    timeline: Sequence[Mapping[str, Any]],
    services: Mapping[str, ServiceRecord | None],
    now: datetime,
) -> OrderView:
    """The order page's data: the record, its timeline (newest first) and the records of the
    services its line items name (absent ones missing or None), at `now` (how late an overdue
    entity is)."""
    entries = timeline_entries(timeline)
    order = record.order
    return OrderView(
        order_id=record.order_id,
        created=order is not None,
        deleted=record.deleted,
        profile=order.profile.value if order else None,
        account_id=order.account_id if order else None,
        state=badge(EntityKind.ORDER, order.state) if order else None,
        due_at=order.due_at if order else None,
        jeopardy=_jeopardy(order, now) if order else [],
        tasks=_progress([task_is_final(t.state) for t in order.tasks.values()] if order else []),
        work_orders=_progress(
            [work_order_is_final(w.state) for w in order.work_orders.values()] if order else []
        ),
        line_items=_line_items(order) if order else [],
        fallouts=_fallouts(order, entries) if order else [],
        services=_services(order, services) if order else [],
        timeline=timeline_steps(entries),
        parked=[
            ParkedView(
                event_id=parked.event.id,
                type=parked.event.type,
                subject=parked.event.subject,
                time=parked.event.time,
                received_at=parked.received_at,
                waiting_for=parked.waiting_for,
            )
            for parked in record.parked
        ],
    )


def _progress(finals: Sequence[bool]) -> Progress:
    return Progress(final=sum(finals), total=len(finals))


def _jeopardy(order: Order, now: datetime) -> list[JeopardyView]:
    views = [
        JeopardyView(
            entity=_JEOPARDY_LEVELS[episode.entity],
            entity_id=episode.id,
            reason=episode.reason,
            reason_text=_JEOPARDY_REASONS[episode.reason],
            since=episode.since,
            due_at=(due_at := _due_at(order, episode.entity, episode.id)),
            late_by_s=(now - due_at).total_seconds()
            if episode.reason == "overdue" and due_at is not None and due_at <= now
            else None,
        )
        for episode in order.jeopardy.values()
    ]
    return sorted(views, key=lambda view: view.since)  # stable: record order on a tie


def _due_at(order: Order, level: JeopardyLevel, entity_id: str) -> datetime | None:
    """The entity's due time (None: it has none, or it was removed with its line item)."""
    found = entity_of(order, level, entity_id)
    return found[0].due_at if found is not None else None


def _in_jeopardy(order: Order, level: JeopardyLevel, entity_id: str) -> list[JeopardyReason]:
    return [
        episode.reason
        for episode in order.jeopardy.values()
        if episode.entity == level and episode.id == entity_id
    ]


def _line_items(order: Order) -> list[LineItemView]:
    views = []
    for item in order.line_items.values():
        work_orders = [order.work_orders[wid] for wid in item.work_order_ids]
        views.append(
            LineItemView(
                line_item_id=item.line_item_id,
                action=item.action,
                service_id=item.service_id,
                product_id=item.product_id,
                location_id=item.location_id,
                state=badge(EntityKind.LINE_ITEM, item.state),
                due_at=item.due_at,
                jeopardy=_in_jeopardy(order, "line_item", item.line_item_id),
                work_orders=_progress([work_order_is_final(w.state) for w in work_orders]),
                work_order_views=[_work_order(order, work_order) for work_order in work_orders],
            )
        )
    return views


def _work_order(order: Order, work_order: WorkOrder) -> WorkOrderView:
    tasks = [order.tasks[tid] for tid in work_order.task_ids]
    return WorkOrderView(
        work_order_id=work_order.work_order_id,
        kind=work_order.kind,
        state=badge(EntityKind.WORK_ORDER, work_order.state),
        due_at=work_order.due_at,
        jeopardy=_in_jeopardy(order, "work_order", work_order.work_order_id),
        tasks=_progress([task_is_final(task.state) for task in tasks]),
        task_views=[_task(order, task) for task in tasks],
    )


def _task(order: Order, task: Task) -> TaskView:
    return TaskView(
        task_id=task.task_id,
        state=badge(EntityKind.TASK, task.state),
        open_fallouts=[f.fallout_id for f in task.fallouts.values() if f.open],
        due_at=task.due_at,
        jeopardy=_in_jeopardy(order, "task", task.task_id),
    )


def _fallouts(order: Order, timeline: list[TimelineEntry]) -> list[FalloutView]:
    views = [
        FalloutView(
            fallout_id=fallout.fallout_id,
            task_id=task.task_id,
            work_order_id=task.work_order_id,
            category=fallout.category,
            reason=fallout.reason,
            assigned_group=fallout.assigned_group,
            open=fallout.open,
            history=[
                entry
                for entry in timeline
                if entry.fallout_id == fallout.fallout_id and entry.entity_id == task.task_id
            ],
        )
        for task in order.tasks.values()
        for fallout in task.fallouts.values()
    ]
    return sorted(views, key=lambda view: not view.open)  # stable: record order within each


def _services(order: Order, records: Mapping[str, ServiceRecord | None]) -> list[ServiceSummary]:
    line_items: dict[str, list[str]] = {}
    terms: dict[str, Term | None] = {}
    for item in order.line_items.values():
        if item.service_id is not None:
            line_items.setdefault(item.service_id, []).append(item.line_item_id)
            terms.setdefault(item.service_id, item.term)
    summaries = []
    for service_id, item_ids in line_items.items():
        record = records.get(service_id)
        service = record.service if record is not None else None
        # The service's own term is the current one (renewals move it); the line item's is what
        # was ordered, shown until the service stage has the service.
        term = service.term if service is not None else terms[service_id]
        summaries.append(
            ServiceSummary(
                service_id=service_id,
                line_item_ids=item_ids,
                status=service_badge(service.state) if service is not None else None,
                term_end=term.end if term is not None else None,
                renewal=term.renewal if term is not None else None,
            )
        )
    return summaries


class ServiceChangeView(Frozen):
    at: datetime
    previous: ServiceBadge | None
    state: ServiceBadge
    order_id: str | None  # None: billing's or the calendar's change
    caused_by: str


class ServiceView(Frozen):
    service_id: str
    status: ServiceBadge | None  # None: a record without a service (only refused events)
    account_id: str | None
    product_id: str | None
    location_id: str | None
    term_end: datetime | None
    renewal: str | None
    orders: list[str]
    history: list[ServiceChangeView]  # newest first


def service_view(record: ServiceRecord) -> ServiceView:
    service = record.service
    if service is None:
        return ServiceView(
            service_id=record.service_id,
            status=None,
            account_id=None,
            product_id=None,
            location_id=None,
            term_end=None,
            renewal=None,
            orders=[],
            history=[],
        )
    return ServiceView(
        service_id=service.service_id,
        status=service_badge(service.state),
        account_id=service.account_id,
        product_id=service.product_id,
        location_id=service.location_id,
        term_end=service.term.end if service.term else None,
        renewal=service.term.renewal if service.term else None,
        orders=list(service.orders),
        history=[
            ServiceChangeView(
                at=change.at,
                previous=service_badge(change.previous) if change.previous else None,
                state=service_badge(change.state),
                order_id=change.order_id,
                caused_by=change.caused_by,
            )
            for change in reversed(service.history)
        ],
    )


_LIST_TITLES: Final[dict[str, str]] = {
    PlanList.OPEN_FALLOUT: "Open fallout",
    PlanList.ON_HOLD: "On hold or awaiting information",
    PlanList.IN_CANCELLATION: "In cancellation",
    PlanList.IN_JEOPARDY: "In jeopardy",
    PlanList.RECENTLY_CHANGED: "Recently changed",
}


class ListedOrderView(Frozen):
    order_id: str
    state: StateBadge | None
    changed_at: datetime


class OrderListView(Frozen):
    name: str
    title: str
    orders: list[ListedOrderView]


class StateCount(Frozen):
    state: StateBadge
    count: int


class OverviewView(Frozen):
    lists: list[OrderListView]
    counts: list[StateCount]  # in the states' order, those with orders
    total: int


def overview_view(overview: Overview) -> OverviewView:
    """Every known list (empty ones too, so the page says so), then any list a newer store keeps."""
    names = [*_LIST_TITLES, *(name for name in overview.lists if name not in _LIST_TITLES)]
    counts = [
        StateCount(state=badge(EntityKind.ORDER, state), count=overview.counts[state])
        for state in OrderState
        if overview.counts.get(state)
    ]
    return OverviewView(
        lists=[
            OrderListView(
                name=name,
                title=_LIST_TITLES.get(name) or name.replace("_", " ").capitalize(),
                orders=[
                    ListedOrderView(
                        order_id=listed.order_id,
                        state=badge(EntityKind.ORDER, listed.state) if listed.state else None,
                        changed_at=listed.changed_at,
                    )
                    for listed in overview.lists.get(name, [])
                ],
            )
            for name in names
        ],
        counts=counts,
        total=sum(count.count for count in counts),
    )
