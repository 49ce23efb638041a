"""The events one applied input publishes, found by comparing the order before and after it: one
state change per entity that moved (child before parent), the fallout events, and what each line
item did to its service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel

from schemas import inbound as ev
from schemas import outbound as out
from schemas.internal import ServiceAction, ServiceActionData
from worker.rules.emit import Cause, Emitted, Stream
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS, Labels
from worker.rules.snapshot import LineItem, Order, Task, Trusted, WorkOrder
from worker.rules.states import OrderState, TaskState, WorkOrderState

S = TypeVar("S", bound=StrEnum)

Actor = tuple[str | None, str | None]
"""Who asked for a change and why, carried onto the change events of commands."""
NO_ACTOR: Final[Actor] = (None, None)

EntityKind = Literal["task", "work_order", "line_item", "order"]

FalloutSeen = tuple[bool, str | None]
"""A fallout as the diff compares it: open, and its assigned group."""


@dataclass(frozen=True, slots=True)
class States:
    """What an event may change, as it was before it, to diff against after: every entity's state
    per kind, and the fallouts of the tasks in question.

    An event about one work order or one of its tasks changes at most that work order's tasks, the
    work order and, by rollup, its line item, the order and (when the order's state moves) every
    line item (see `derive.refresh`): only those are kept, so such an event costs the size of its
    work order, not of the order. Any other event may change anything: every entity is kept.
    """

    work_order_id: str | None  # the one work order in question; None: every entity
    tasks: dict[str, TaskState]
    work_orders: dict[str, WorkOrderState]
    line_items: dict[str, OrderState]
    order: OrderState | None
    fallouts: dict[str, dict[str, FalloutSeen]]  # of the tasks in question that have any

    @classmethod
    def of(cls, order: Order | None, event: ev.OrderEvent) -> States:
        if order is None:
            return cls(None, {}, {}, {}, None, {})
        line_items = {li_id: line_item.state for li_id, line_item in order.line_items.items()}
        work_order_id = _work_order_in_question(order, event)
        if work_order_id is None:
            tasks: Mapping[str, Task] = order.tasks
            work_orders = {
                wo_id: work_order.state for wo_id, work_order in order.work_orders.items()
            }
        elif (work_order := order.work_orders.get(work_order_id)) is not None:
            tasks = {task_id: order.tasks[task_id] for task_id in work_order.task_ids}
            work_orders = {work_order_id: work_order.state}
        else:  # the event creates it (or names one not known yet: it is parked)
            tasks, work_orders = {}, {}
        return cls(
            work_order_id,
            {task_id: task.state for task_id, task in tasks.items()},
            work_orders,
            line_items,
            order.state,
            {task_id: _fallouts(task) for task_id, task in tasks.items() if task.fallouts},
        )


def _fallouts(task: Task) -> dict[str, FalloutSeen]:
    return {key: (fallout.open, fallout.assigned_group) for key, fallout in task.fallouts.items()}


# Tuples, not unions: `A | B` builds a new union at each call, and this runs on every event.
_NAMING_A_WORK_ORDER: Final = (
    ev.WorkOrderCreatedData,
    ev.WorkOrderUpdatedData,
    ev.TaskCreatedData,
)
_NAMING_A_TASK: Final = (
    ev.TaskUpdatedData,
    ev.FalloutRaisedData,
    ev.FalloutResolvedData,
    ev.FalloutReassignedData,
)


def _work_order_in_question(order: Order, event: ev.OrderEvent) -> str | None:
    """The work order an event about one work order or one of its tasks is about (maybe one it
    creates); None for any other event, and for one about a task not known yet (it is parked)."""
    data = event.data
    if isinstance(data, _NAMING_A_WORK_ORDER):
        return data.work_order_id
    if isinstance(data, _NAMING_A_TASK):
        task = order.tasks.get(data.task_id)
        return task.work_order_id if task is not None else None
    return None


def _in_question(
    order: Order, before: States
) -> tuple[Mapping[str, Task], Mapping[str, WorkOrder]]:
    """The tasks and work orders the event may have changed, as they are now."""
    if before.work_order_id is None:
        return order.tasks, order.work_orders
    work_order = order.work_orders[before.work_order_id]
    tasks = {task_id: order.tasks[task_id] for task_id in work_order.task_ids}
    return tasks, {work_order.work_order_id: work_order}


@dataclass(frozen=True, slots=True)
class _ChangeEvent:
    """How a state change of one kind of entity is published."""

    event: Trusted[out.StatusEvent]
    data: Trusted[BaseModel]
    id_field: str | None  # the data field naming the entity; the order has only `order_id`
    labels: dict[str, out.StateLabels]


def _change_event(
    event: type[out.StatusEvent],
    data: type[BaseModel],
    id_field: str | None,
    labels: dict[S, Labels],
) -> _ChangeEvent:
    # One StateLabels per state, shared by every event: events are never changed once built.
    state_labels: dict[str, out.StateLabels] = {
        state: out.StateLabels(**names._asdict()) for state, names in labels.items()
    }
    return _ChangeEvent(Trusted(event), Trusted(data), id_field, state_labels)


_CHANGE_EVENTS: Final[dict[EntityKind, _ChangeEvent]] = {
    "task": _change_event(out.TaskStateChanged, out.TaskStateChangedData, "task_id", TASK_LABELS),
    "work_order": _change_event(
        out.WorkOrderStateChanged, out.WorkOrderStateChangedData, "work_order_id", WORK_ORDER_LABELS
    ),
    "line_item": _change_event(
        out.LineItemStateChanged, out.LineItemStateChangedData, "line_item_id", ORDER_LABELS
    ),
    "order": _change_event(out.OrderStateChanged, out.OrderStateChangedData, None, ORDER_LABELS),
}


def state_changes(order: Order, before: States, cause: Cause, actor: Actor) -> list[Emitted]:
    """One event per entity whose state changed, child before parent, each kind in the order's
    own order (a work order's task ids are in the order its tasks have in `order.tasks`: both are
    only ever appended to and removed from together)."""
    tasks, work_orders = _in_question(order, before)
    emitted: list[Emitted] = []
    kinds: tuple[tuple[EntityKind, Mapping[str, Any], Mapping[str, StrEnum]], ...] = (
        ("task", tasks, before.tasks),
        ("work_order", work_orders, before.work_orders),
        ("line_item", order.line_items, before.line_items),
    )
    for kind, entities, previous_states in kinds:
        for entity_id, entity in entities.items():
            previous = previous_states.get(entity_id)
            if previous != entity.state:
                emitted.append(
                    _change(order, kind, entity_id, previous, entity.state, cause, actor)
                )
    if before.order != order.state:
        emitted.append(
            _change(order, "order", order.order_id, before.order, order.state, cause, actor)
        )
    return emitted


def _change(
    order: Order,
    kind: EntityKind,
    entity_id: str,
    previous: StrEnum | None,
    state: StrEnum,
    cause: Cause,
    actor: Actor,
) -> Emitted:
    change = _CHANGE_EVENTS[kind]
    data = {
        "order_id": order.order_id,
        "previous": previous,
        "state": state,
        "labels": change.labels[state],
        "caused_by": cause.caused_by,
        "at": cause.at,
        "actor": actor[0],
        "reason": actor[1],
    }
    if change.id_field is not None:
        data[change.id_field] = entity_id
    event = change.event(
        {
            "id": cause.id_for(kind, entity_id),
            "subject": entity_id,
            "time": cause.at,
            "data": change.data(data),
        }
    )
    return Emitted(Stream.STATUS, order.order_id, event, cause.emitted_at)


def fallout_events(order: Order, before: States, cause: Cause) -> list[Emitted]:
    """A fallout that appeared was raised; one open before and closed now was resolved (by its
    resolution, or because its task ended); one whose group changed was reassigned."""
    tasks, _ = _in_question(order, before)
    emitted: list[Emitted] = []
    for task_id, task in tasks.items():
        seen = before.fallouts.get(task_id, {})
        for fallout_id, fallout in task.fallouts.items():
            was = seen.get(fallout_id)
            if was is None:
                kind = "fallout.raised"
            elif was[0] and not fallout.open:
                kind = "fallout.resolved"
            elif fallout.open and was[1] != fallout.assigned_group:
                kind = "fallout.reassigned"
            else:
                continue
            emitted.append(_fallout_event(order, task, fallout_id, kind, cause))
    return emitted


def _fallout_event(order: Order, task: Task, fallout_id: str, kind: str, cause: Cause) -> Emitted:
    fallout = task.fallouts[fallout_id]
    # Fallout ids are unique per task only: the subject of the id names both.
    event = out.FalloutEvent(
        id=cause.id_for(kind, f"{task.task_id}/{fallout_id}"),
        type=kind,
        subject=fallout_id,
        time=cause.at,
        data=out.FalloutData(
            order_id=order.order_id,
            task_id=task.task_id,
            fallout_id=fallout_id,
            category=fallout.category,
            reason=fallout.reason,
            assigned_group=fallout.assigned_group,
            resolution=None if fallout.open else fallout.resolution,
            caused_by=cause.caused_by,
            at=cause.at,
        ),
    )
    return Emitted(Stream.OPS, order.order_id, event, cause.emitted_at)


_SERVICE_OUTCOMES: Final[dict[OrderState, Literal["completed", "canceled"]]] = {
    OrderState.COMPLETED: "completed",
    OrderState.PARTIAL: "completed",  # something was delivered
    OrderState.CANCELED: "canceled",
    OrderState.REJECTED: "canceled",
    OrderState.FAILED: "canceled",
}


def service_actions(
    order: Order,
    line_items: dict[str, LineItem],
    before: States,
    line_items_before: dict[str, LineItem],
    cause: Cause,
) -> list[Emitted]:
    """What each line item did to its service: an `add` creates it; reaching a final state
    completes or cancels the line item's action, and removing the line item (or deleting the
    order) cancels it (the service stage decides what that means for the service's status)."""
    emitted = []
    removed = [item for key, item in line_items_before.items() if key not in line_items]
    for line_item in [*line_items.values(), *removed]:
        if line_item.service_id is None:
            continue
        previous = before.line_items.get(line_item.line_item_id)
        outcome: Literal["created", "completed", "canceled"] | None
        if line_item in removed:
            outcome = "canceled"
        elif previous is None and line_item.action == "add":
            outcome = "created"
        elif previous != line_item.state:
            outcome = _SERVICE_OUTCOMES.get(line_item.state)
        else:
            outcome = None
        if outcome is None:
            continue
        data = ServiceActionData(
            service_id=line_item.service_id,
            action=line_item.action,
            outcome=outcome,
            order_id=order.order_id,
            line_item_id=line_item.line_item_id,
            account_id=order.account_id,
            product_id=line_item.product_id,
            location_id=line_item.location_id,
            term=line_item.term,
            caused_by=cause.caused_by,
            at=cause.at,
        )
        action = ServiceAction(
            id=cause.id_for(f"service.action.{outcome}", line_item.line_item_id),
            subject=line_item.service_id,
            time=cause.at,
            data=data,
        )
        emitted.append(
            Emitted(Stream.SERVICE_ACTIONS, line_item.service_id, action, cause.emitted_at)
        )
    return emitted


def deleted(order_id: str, cause: Cause, actor: Actor) -> Emitted:
    event = out.OrderDeleted(
        id=cause.id_for("order.deleted", order_id),
        subject=order_id,
        time=cause.at,
        data=out.OrderDeletedData(
            order_id=order_id,
            actor=actor[0],
            reason=actor[1],
            caused_by=cause.caused_by,
            at=cause.at,
        ),
    )
    return Emitted(Stream.STATUS, order_id, event, cause.emitted_at)
