"""Line items: the order's creation with its line items, line items added and removed (seed 003:
never once the order is final), and the line-item commands of ServiceNow's in-flight order change
(seed 001): reject, hold and resume, and the cancellation request, approval and denial of one
line item. The order rolls up from the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from schemas import inbound as ev
from worker.rules.changes import NO_ACTOR, Actor
from worker.rules.derive import refresh
from worker.rules.inputs import Policy
from worker.rules.refusal import Refused
from worker.rules.snapshot import LineItem, Order, OrderRecord, Task, WorkOrder
from worker.rules.states import CAPTURE_STATES, LIFECYCLE_STATES, OrderState, order_is_final
from worker.rules.work import cancel_work_orders, check_new_work_order, require_order, wind_down

_O = OrderState


def create_order(record: OrderRecord, event: ev.OrderCreated, policy: Policy) -> Actor:
    if record.order is not None:
        raise Refused(f"order {record.order_id} already exists")
    data = event.data
    order = Order(
        order_id=data.order_id,
        profile=data.profile or policy.default_profile,
        state=data.state,
        lifecycle=data.state,
        enrichment=data.enrichment,
        account_id=data.account_id,
        due_at=data.due_at,
    )
    for line_item in data.line_items:
        _check_new_line_item(order, line_item)
        _add_line_item(order, line_item)
    record.order = order
    refresh(order)
    return NO_ACTOR


def _check_new_line_item(order: Order, line_item: ev.NewLineItem) -> None:
    if line_item.line_item_id in order.line_items:
        raise Refused(f"line item {line_item.line_item_id} already exists")
    # Ids repeated inside the line item itself count too (nothing of it is in the order yet).
    work_order_ids: set[str] = set()
    task_ids: set[str] = set()
    for work_order in line_item.work_orders:
        if work_order.work_order_id in work_order_ids:
            raise Refused(f"work order {work_order.work_order_id} already exists")
        check_new_work_order(order, work_order.work_order_id, work_order.state)
        work_order_ids.add(work_order.work_order_id)
        for task in work_order.tasks:
            if task.task_id in order.tasks or task.task_id in task_ids:
                raise Refused(f"task {task.task_id} already exists")
            task_ids.add(task.task_id)


def _add_line_item(order: Order, line_item: ev.NewLineItem) -> None:
    order.line_items[line_item.line_item_id] = LineItem(
        line_item_id=line_item.line_item_id,
        action=line_item.action,
        state=order.state if order.state in LIFECYCLE_STATES else order.lifecycle,
        service_id=line_item.service_id,
        product_id=line_item.product_id,
        location_id=line_item.location_id,
        term=line_item.term,
        due_at=line_item.due_at,
        work_order_ids=[work_order.work_order_id for work_order in line_item.work_orders],
    )
    for work_order in line_item.work_orders:
        order.work_orders[work_order.work_order_id] = WorkOrder(
            work_order_id=work_order.work_order_id,
            line_item_id=line_item.line_item_id,
            kind=work_order.kind,
            state=work_order.state,
            due_at=work_order.due_at,
            task_ids=[task.task_id for task in work_order.tasks],
        )
        for task in work_order.tasks:
            order.tasks[task.task_id] = Task(
                task_id=task.task_id,
                work_order_id=work_order.work_order_id,
                state=task.state,
                due_at=task.due_at,
            )


def _refuse_when_final(order: Order) -> None:
    # Seed 003 rule 3: once final, no line item may be added or deleted.
    if order_is_final(order.state):
        raise Refused(f"order is {order.state}: no line item may be added or removed once final")


def add_line_item(record: OrderRecord, event: ev.LineItemAdded) -> Actor:
    order = require_order(record)
    _refuse_when_final(order)
    # Decision: an order whose cancellation was approved takes no new work.
    if order.state is _O.CANCELLATION_IN_PROGRESS:
        raise Refused("the order is being canceled: no line item may be added")
    _check_new_line_item(order, event.data.line_item)
    _add_line_item(order, event.data.line_item)
    refresh(order)
    return NO_ACTOR


def remove_line_item(record: OrderRecord, event: ev.LineItemRemoved) -> Actor:
    order = require_order(record)
    _refuse_when_final(order)
    line_item = _known_line_item(order, event.data.line_item_id)
    for work_order_id in line_item.work_order_ids:
        for task_id in order.work_orders.pop(work_order_id).task_ids:
            del order.tasks[task_id]
    del order.line_items[line_item.line_item_id]
    refresh(order)
    return NO_ACTOR


def _known_line_item(order: Order, line_item_id: str) -> LineItem:
    # Line items arrive on the orders topic like the commands naming them, in order: an unknown
    # one is refused, not waited for.
    line_item = order.line_items.get(line_item_id)
    if line_item is None:
        raise Refused(f"unknown line item {line_item_id}")
    return line_item


# --- line-item commands ---------------------------------------------------------------------------

_OPEN: Final = frozenset(
    state for state in OrderState if not order_is_final(state) and state not in CAPTURE_STATES
)
"""Orders whose line items take line-item commands: captured (and enriched), not final."""
_TAKING_WORK: Final = _OPEN - {_O.CANCELLATION_IN_PROGRESS}
"""Orders whose line items may still be held or asked to be canceled: not being canceled whole."""


@dataclass(frozen=True, slots=True)
class LineItemCommand:
    """One line-item command: the order states and the line item's own overlays (None: none) it
    may be given in, and what it does."""

    order_states: frozenset[OrderState]
    overlays: frozenset[OrderState | None]
    act: Callable[[Order, LineItem], None]


def _push(overlay: OrderState) -> Callable[[Order, LineItem], None]:
    def push(order: Order, line_item: LineItem) -> None:
        order.line_item_to_change(line_item.line_item_id).overlays.append(overlay)

    return push


def _pop(order: Order, line_item: LineItem) -> None:
    order.line_item_to_change(line_item.line_item_id).overlays.pop()


def _reject(order: Order, line_item: LineItem) -> None:
    """Seed 001: the fulfillment manager rejected this line item: its work orders and tasks are
    canceled, and it is rejected (final)."""
    cancel_work_orders(order, line_item.work_order_ids)
    rejected = order.line_item_to_change(line_item.line_item_id)
    rejected.state, rejected.overlays = _O.REJECTED, []


def _approve_cancellation(order: Order, line_item: LineItem) -> None:
    """Its work orders not started are canceled at once, started ones wind down through
    cancellation_in_progress; the line item shows that until they all end (then its work orders
    decide: canceled, or completed when some were), canceled at once without any."""
    wind_down(order, line_item.work_order_ids)
    winding_down = order.line_item_to_change(line_item.line_item_id)
    winding_down.overlays = [_O.CANCELLATION_IN_PROGRESS]
    if not line_item.work_order_ids:
        winding_down.state, winding_down.overlays = _O.CANCELED, []


_NOT_HELD: Final = frozenset[OrderState | None]({None})
_ASSESSING: Final = frozenset[OrderState | None]({_O.ASSESSING_CANCELLATION})

COMMANDS: Final[dict[str, LineItemCommand]] = {
    # Seed 001: rejected by the fulfillment manager, so before the order is approved.
    "order.line_item.rejected": LineItemCommand(
        frozenset({_O.NEW}), frozenset({None, _O.ON_HOLD, _O.ASSESSING_CANCELLATION}), _reject
    ),
    "order.line_item.hold.requested": LineItemCommand(_TAKING_WORK, _NOT_HELD, _push(_O.ON_HOLD)),
    "order.line_item.resumed": LineItemCommand(_OPEN, frozenset({_O.ON_HOLD}), _pop),
    # Like the order's: a cancellation may be requested over a hold, and its denial restores it.
    "order.line_item.cancellation.requested": LineItemCommand(
        _TAKING_WORK, frozenset({None, _O.ON_HOLD}), _push(_O.ASSESSING_CANCELLATION)
    ),
    "order.line_item.cancellation.approved": LineItemCommand(
        _OPEN, _ASSESSING, _approve_cancellation
    ),
    "order.line_item.cancellation.denied": LineItemCommand(_OPEN, _ASSESSING, _pop),
}
"""Every line-item command, as data: one place to audit them."""


def line_item_command(record: OrderRecord, event: ev.LineItemCommand) -> Actor:
    order = require_order(record)
    line_item = _known_line_item(order, event.data.line_item_id)
    command = COMMANDS[event.type]
    if order.state not in command.order_states:
        raise Refused(f"{event.type} is not allowed when the order is {order.state}")
    overlay = line_item.overlays[-1] if line_item.overlays else None
    if order_is_final(line_item.state) or overlay not in command.overlays:
        raise Refused(
            f"{event.type} is not allowed when line item {line_item.line_item_id} is "
            f"{line_item.state}"
        )
    command.act(order, line_item)
    refresh(order)
    return event.data.actor, event.data.reason
