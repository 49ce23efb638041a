"""A simplified order rollup for the quix-streams comparison (bench/quix_baseline.py).

One order's state as plain JSON-able dicts, and one pure function that applies one inbound event
to it and answers with the state-change events it causes. The parent states come from the
worker's own rollup functions (`worker.rules.rollup`); what is left out of the worker's rules:
validation, event-id deduplication (only the per-entity `sequence` guard stays, which drops the
benchmark stream's duplicates and stale updates), the parked events' timeout, line-item commands,
enrichment, rejection, the fallout records and every ops event, the line items' `scheduled`, the
order's rollup from its line items (it rolls up from all its work orders), the profiles' finer
rules, and the service stage.

The quix application (bench/quix_app.py) runs `apply` per record, in a RocksDB state store; the
benchmark folds it over the whole stream (`reference`) to know which outputs to expect.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, TypedDict

from worker.rules import output_id
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS
from worker.rules.rollup import parent_from_work_orders, work_order_from_tasks
from worker.rules.states import (
    ORDER_OVERLAYS,
    OrderState,
    Profile,
    TaskState,
    WorkOrderState,
    order_is_final,
    task_is_final,
    work_order_is_final,
)

Event = dict[str, Any]

SOURCE: Final = "/quix-baseline"

# Per kind of entity: the output's type, the field naming the entity, each state's labels.
_KINDS: Final[dict[str, tuple[str, str, dict[str, dict[str, str]]]]] = {
    kind: (f"{kind}.state.changed", field, {state: lab._asdict() for state, lab in labels.items()})
    for kind, field, labels in (
        ("task", "task_id", TASK_LABELS),
        ("workorder", "work_order_id", WORK_ORDER_LABELS),
        ("lineitem", "line_item_id", ORDER_LABELS),
        ("order", "order_id", ORDER_LABELS),
    )
}

_NOT_STARTED: Final = frozenset({"draft", "qualified", "scheduled"})


class WorkOrder(TypedDict):
    line_item: str
    state: str
    tasks: list[str]


class Task(TypedDict):
    work_order: str
    state: str


class Order(TypedDict):
    id: str
    created: bool
    """False while only events waiting for the order's `order.created` are known."""
    profile: str
    state: str
    lifecycle: str
    """draft, new or acknowledged: what the order and its line items show without progress."""
    canceling: bool
    """A cancellation was approved: the order shows cancellation_in_progress until all is final."""
    line_items: dict[str, dict[str, Any]]
    """Each line item's state and work order ids: {"state": ..., "work_orders": [...]}."""
    work_orders: dict[str, WorkOrder]
    tasks: dict[str, Task]
    sequences: dict[str, int]
    parked: list[Event]
    """Events waiting for the order, work order or task they name (see `apply`)."""


class _Changes:
    """The state-change events one input causes, child before parent, one per entity: an entity
    that changes twice (a psa order created and rolled up to in_progress) gets one event."""

    def __init__(self, order_id: str, event: Event) -> None:
        self.order_id = order_id
        self.cause: str = event["id"]
        self.at: str = event["time"]
        self.by_subject: dict[str, Event] = {}

    @property
    def events(self) -> list[Event]:
        return list(self.by_subject.values())

    def add(self, kind: str, subject: str, previous: str | None, state: str) -> None:
        event_type, field, labels = _KINDS[kind]
        if (earlier := self.by_subject.get(subject)) is not None:
            earlier["data"] |= {"state": state, "labels": labels[state]}
            return
        self.by_subject[subject] = {
            "specversion": "1.0",
            "id": output_id(self.cause, event_type, subject),
            "source": SOURCE,
            "type": event_type,
            "subject": subject,
            "time": self.at,
            "datacontenttype": "application/json",
            "data": {
                "order_id": self.order_id,
                field: subject,
                "previous": previous,
                "state": state,
                "labels": labels[state],
                "caused_by": self.cause,
                "at": self.at,
            },
        }


def apply(order: Order | None, event: Event) -> tuple[Order, list[Event]]:
    """The order after `event`, and the state changes it caused (the order is changed in place).

    An event naming an order, work order or task not seen yet waits in the order's state and is
    applied right after that parent arrives, with its own id as the cause (as the worker parks
    it): quix merges the topics by record timestamp, and records of one millisecond on two topics
    come in topic order, so a task can come before its work order."""
    order = order or _placeholder(event["data"]["order_id"])
    outputs: list[Event] = []
    if _waits(order, event):
        order["parked"].append(event)
    else:
        _apply_one(order, event, outputs)
        _apply_parked(order, outputs)
    return order, outputs


def reference(stream: Sequence[Event]) -> list[Event]:
    """Every output of `apply` folded over the stream, each order's events in stream order."""
    orders: dict[str, Order] = {}
    outputs: list[Event] = []
    for event in stream:
        order_id = event["data"]["order_id"]
        orders[order_id], emitted = apply(orders.get(order_id), event)
        outputs += emitted
    return outputs


def _placeholder(order_id: str) -> Order:
    """An order known only by its id, until its `order.created`."""
    return Order(
        id=order_id,
        created=False,
        profile=Profile.STANDARD,
        state=OrderState.DRAFT,
        lifecycle=OrderState.DRAFT,
        canceling=False,
        line_items={},
        work_orders={},
        tasks={},
        sequences={},
        parked=[],
    )


def _waits(order: Order, event: Event) -> bool:
    """Whether the order, work order or task the event is about is still unknown."""
    event_type, data = event["type"], event["data"]
    if not order["created"]:
        return bool(event_type != "order.created")
    if event_type in ("task.created", "workorder.updated"):
        return data["work_order_id"] not in order["work_orders"]
    return event_type.startswith("task.") and data["task_id"] not in order["tasks"]


def _apply_parked(order: Order, outputs: list[Event]) -> None:
    """The parked events whose parent is known now, in the order they came, until none is."""
    while ready := [event for event in order["parked"] if not _waits(order, event)]:
        order["parked"] = [event for event in order["parked"] if _waits(order, event)]
        for event in ready:
            _apply_one(order, event, outputs)


def _apply_one(order: Order, event: Event, outputs: list[Event]) -> None:
    if _stale(order, event):
        return
    data: dict[str, Any] = event["data"]
    event_type: str = event["type"]
    changes = _Changes(order["id"], event)
    if event_type == "order.created":
        _create(order, data, changes)
        touched: Iterable[str] = order["line_items"]
    elif event_type.startswith("order."):
        _command(order, event_type, changes)
        touched = order["line_items"]
    elif event_type == "workorder.created":
        touched = _add_work_order(order, data, changes)
    elif event_type == "workorder.updated":
        touched = _set_work_order(order, data["work_order_id"], data["state"], changes)
    else:
        touched = _task_event(order, event_type, data, changes)
    _remember_sequence(order, event)
    _roll_up(order, touched, changes)
    outputs += changes.events


def _entity(data: dict[str, Any]) -> str:
    """The entity an event's `sequence` counts versions of (bench/generator.py)."""
    return str(data.get("task_id") or data.get("work_order_id") or data["order_id"])


def _stale(order: Order, event: Event) -> bool:
    sequence = event.get("sequence")
    return sequence is not None and sequence <= order["sequences"].get(_entity(event["data"]), 0)


def _remember_sequence(order: Order, event: Event) -> None:
    if (sequence := event.get("sequence")) is not None:
        order["sequences"][_entity(event["data"])] = sequence


def _create(order: Order, data: dict[str, Any], changes: _Changes) -> None:
    if order["created"]:
        return  # a duplicate without its sequence
    order["created"] = True
    order["profile"] = data.get("profile") or Profile.STANDARD
    order["state"] = order["lifecycle"] = data.get("state", OrderState.DRAFT)
    changes.add("order", order["id"], None, order["state"])
    for item in data.get("line_items", ()):
        line_item_id = item["line_item_id"]
        order["line_items"][line_item_id] = {"state": order["lifecycle"], "work_orders": []}
        changes.add("lineitem", line_item_id, None, order["lifecycle"])
        for work_order in item.get("work_orders", ()):
            _add_work_order(order, {"line_item_id": line_item_id, **work_order}, changes)


def _add_work_order(order: Order, data: dict[str, Any], changes: _Changes) -> list[str]:
    work_order_id, line_item_id = data["work_order_id"], data["line_item_id"]
    if work_order_id in order["work_orders"] or line_item_id not in order["line_items"]:
        return []
    state = data.get("state", WorkOrderState.DRAFT)
    order["work_orders"][work_order_id] = WorkOrder(line_item=line_item_id, state=state, tasks=[])
    order["line_items"][line_item_id]["work_orders"].append(work_order_id)
    changes.add("workorder", work_order_id, None, state)
    for task in data.get("tasks", ()):
        _add_task(order, work_order_id, task["task_id"], task.get("state", "open"), changes)
    return [line_item_id]


def _add_task(
    order: Order, work_order_id: str, task_id: str, state: str, changes: _Changes
) -> None:
    order["tasks"][task_id] = Task(work_order=work_order_id, state=state)
    order["work_orders"][work_order_id]["tasks"].append(task_id)
    changes.add("task", task_id, None, state)


def _task_event(
    order: Order, event_type: str, data: dict[str, Any], changes: _Changes
) -> list[str]:
    task_id = data["task_id"]
    if event_type == "task.created":
        work_order_id = data["work_order_id"]
        if task_id in order["tasks"]:
            return []
        _add_task(order, work_order_id, task_id, data.get("state", "open"), changes)
        return _derive_work_order(order, work_order_id, changes)
    task = order["tasks"][task_id]
    state = {
        "task.updated": data.get("state"),
        "task.fallout.raised": TaskState.ON_HOLD,
        "task.fallout.resolved": TaskState.RESOLVED,
    }.get(event_type)
    if state is None or task_is_final(TaskState(task["state"])):
        return []
    if state != task["state"]:
        changes.add("task", task_id, task["state"], state)
        task["state"] = state
    return _derive_work_order(order, task["work_order"], changes)


def _set_work_order(order: Order, work_order_id: str, state: str, changes: _Changes) -> list[str]:
    work_order = order["work_orders"][work_order_id]
    if work_order_is_final(WorkOrderState(work_order["state"])):
        return []
    if state != work_order["state"]:
        changes.add("workorder", work_order_id, work_order["state"], state)
        work_order["state"] = state
    return [work_order["line_item"]]


def _derive_work_order(order: Order, work_order_id: str, changes: _Changes) -> list[str]:
    """The work order from its tasks; the line item it belongs to."""
    work_order = order["work_orders"][work_order_id]
    current = WorkOrderState(work_order["state"])
    tasks = [TaskState(order["tasks"][task_id]["state"]) for task_id in work_order["tasks"]]
    derived = work_order_from_tasks(tasks)
    winding_down = current is WorkOrderState.CANCELLATION_IN_PROGRESS and not all(
        task_is_final(task) for task in tasks
    )
    if derived is not None and not work_order_is_final(current) and not winding_down:
        _set_work_order(order, work_order_id, derived, changes)
    return [work_order["line_item"]]


def _command(order: Order, event_type: str, changes: _Changes) -> None:
    state = OrderState(order["state"])
    if order_is_final(state):
        return
    if event_type == "order.submitted" and order["lifecycle"] == OrderState.DRAFT:
        order["lifecycle"] = OrderState.NEW
    elif event_type == "order.approved" and order["lifecycle"] == OrderState.NEW:
        order["lifecycle"] = OrderState.ACKNOWLEDGED
    elif event_type == "order.hold.requested" and state not in ORDER_OVERLAYS:
        _set_order(order, OrderState.ON_HOLD, changes)
    elif event_type == "order.cancellation.requested" and state not in ORDER_OVERLAYS:
        _set_order(order, OrderState.ASSESSING_CANCELLATION, changes)
    elif event_type == "order.resumed" and state is OrderState.ON_HOLD:
        _set_order(order, _rolled_up(order), changes)
    elif event_type == "order.cancellation.approved" and state is OrderState.ASSESSING_CANCELLATION:
        order["canceling"] = True
        for work_order_id, work_order in order["work_orders"].items():
            _cancel(order, work_order_id, work_order, changes)
        _set_order(order, _rolled_up(order), changes)


def _cancel(order: Order, work_order_id: str, work_order: WorkOrder, changes: _Changes) -> None:
    """Unstarted work orders are canceled at once with their tasks; started ones wind down."""
    if work_order_is_final(WorkOrderState(work_order["state"])):
        return
    if work_order["state"] not in _NOT_STARTED:
        _set_work_order(order, work_order_id, WorkOrderState.CANCELLATION_IN_PROGRESS, changes)
        return
    for task_id in work_order["tasks"]:
        task = order["tasks"][task_id]
        if not task_is_final(TaskState(task["state"])):
            changes.add("task", task_id, task["state"], TaskState.CANCELED)
            task["state"] = TaskState.CANCELED
    _set_work_order(order, work_order_id, WorkOrderState.CANCELED, changes)


def _set_order(order: Order, state: str, changes: _Changes) -> None:
    if state != order["state"]:
        changes.add("order", order["id"], order["state"], state)
        order["state"] = state


def _roll_up(order: Order, line_item_ids: Iterable[str], changes: _Changes) -> None:
    """The touched line items from their work orders, then the order from all its work orders
    (simplified: not from its line items). A draft order holds its rollup until submitted."""
    profile, lifecycle = Profile(order["profile"]), order["lifecycle"]
    work_orders = order["work_orders"]
    for line_item_id in line_item_ids:
        line_item = order["line_items"][line_item_id]
        if order_is_final(OrderState(line_item["state"])):
            continue
        ids = line_item["work_orders"]
        state: str = lifecycle
        if lifecycle != OrderState.DRAFT:
            states = [WorkOrderState(work_orders[i]["state"]) for i in ids]
            has_tasks = any(work_orders[i]["tasks"] for i in ids)
            state = parent_from_work_orders(profile, states, has_tasks=has_tasks) or lifecycle
        if state != line_item["state"]:
            changes.add("lineitem", line_item_id, line_item["state"], state)
            line_item["state"] = state
    current = OrderState(order["state"])
    if not (order_is_final(current) or current in ORDER_OVERLAYS):
        _set_order(order, _rolled_up(order), changes)


def _rolled_up(order: Order) -> str:
    """The order's state from all its work orders, its lifecycle and an approved cancellation."""
    lifecycle = order["lifecycle"]
    if lifecycle == OrderState.DRAFT:
        return lifecycle
    states = [WorkOrderState(work_order["state"]) for work_order in order["work_orders"].values()]
    profile = Profile(order["profile"])
    derived = parent_from_work_orders(profile, states, has_tasks=bool(order["tasks"]))
    if order["canceling"] and (derived is None or not order_is_final(derived)):
        return OrderState.CANCELLATION_IN_PROGRESS
    return derived or lifecycle
