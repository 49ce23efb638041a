"""Work orders and tasks: their creation and the updates their owners report (DOMAIN.md "Rollup
rules": a work order with tasks is derived from them, one without takes what its owner reports),
and how a cancellation reaches them.

Every handler checks everything before it changes anything, so a refusal changes nothing. Entities
may still be shared with the record `apply` was given (copy-on-write): every change is made to the
order's own copy, from `order.task_to_change` (`work_order_`, `line_item_to_change`).
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas import inbound as ev
from worker.rules.changes import NO_ACTOR, Actor
from worker.rules.derive import refresh
from worker.rules.refusal import Missing, Refused
from worker.rules.snapshot import Order, OrderRecord, Task, WorkOrder
from worker.rules.states import (
    TASK_MOVES,
    WORK_ORDER_CLASS,
    WORK_ORDER_MOVES,
    OrderState,
    Profile,
    StateClass,
    TaskState,
    WorkOrderState,
    order_is_final,
    task_is_final,
    work_order_is_final,
)

TASK_CLOSED = "task closed"
"""The resolution of a fallout closed because its task ended (DOMAIN.md "Fallout")."""


def require_order(record: OrderRecord) -> Order:
    assert record.order is not None  # the engine parks every event but order.created until then
    return record.order


def check_new_work_order(order: Order, work_order_id: str, state: WorkOrderState) -> None:
    if work_order_id in order.work_orders:
        raise Refused(f"work order {work_order_id} already exists")
    if state is WorkOrderState.FAILED and order.profile is not Profile.TMF:
        raise Refused("work order state failed exists only in the tmf profile")


def create_work_order(record: OrderRecord, event: ev.WorkOrderCreated) -> Actor:
    order = require_order(record)
    data = event.data
    line_item = order.line_items.get(data.line_item_id)
    if line_item is None:
        raise Missing(f"line item {data.line_item_id}")
    if order_is_final(line_item.state):
        raise Refused(f"line item {data.line_item_id} is {line_item.state}")
    # Decision: the cancellation of a line item (or of its order) was approved; new work for it
    # would only be canceled again.
    if OrderState.CANCELLATION_IN_PROGRESS in (line_item.state, order.state):
        raise Refused(f"line item {data.line_item_id} is being canceled")
    check_new_work_order(order, data.work_order_id, data.state)
    order.work_orders[data.work_order_id] = WorkOrder(
        work_order_id=data.work_order_id,
        line_item_id=data.line_item_id,
        kind=data.kind,
        state=data.state,
        due_at=data.due_at,
    )
    order.line_item_to_change(data.line_item_id).work_order_ids.append(data.work_order_id)
    refresh(order, data.work_order_id)
    return NO_ACTOR


def update_work_order(record: OrderRecord, event: ev.WorkOrderUpdated) -> Actor:
    order = require_order(record)
    data = event.data
    work_order = order.work_orders.get(data.work_order_id)
    if work_order is None:
        raise Missing(f"work order {data.work_order_id}")
    moves = data.state is not work_order.state
    if moves and data.state is WorkOrderState.FAILED and order.profile is not Profile.TMF:
        raise Refused("work order state failed exists only in the tmf profile")
    if moves and data.state not in WORK_ORDER_MOVES[work_order.state]:
        raise Refused(
            f"work order {work_order.work_order_id} cannot move from {work_order.state} to "
            f"{data.state}"
        )
    if data.due_at is not None:
        order.work_order_to_change(data.work_order_id).due_at = data.due_at
    if not moves:
        return NO_ACTOR
    order.work_order_to_change(data.work_order_id).state = data.state
    if data.state is WorkOrderState.CANCELED:
        _cancel_tasks(order, work_order)
    refresh(order, data.work_order_id)
    return NO_ACTOR


def cancel_work_orders(order: Order, work_order_ids: Iterable[str]) -> None:
    """A manager's cancel: every work order not final is canceled at once, with its tasks."""
    for work_order_id in work_order_ids:
        work_order = order.work_orders[work_order_id]
        if not work_order_is_final(work_order.state):
            order.work_order_to_change(work_order_id).state = WorkOrderState.CANCELED
            _cancel_tasks(order, work_order)


def wind_down(order: Order, work_order_ids: Iterable[str]) -> None:
    """An approved cancellation: work orders not started are canceled at once with their tasks;
    started ones go to cancellation_in_progress until their owner reports them canceled or their
    tasks end."""
    for work_order_id in work_order_ids:
        work_order = order.work_orders[work_order_id]
        state_class = WORK_ORDER_CLASS[work_order.state]
        if state_class is StateClass.NOT_STARTED:
            order.work_order_to_change(work_order_id).state = WorkOrderState.CANCELED
            _cancel_tasks(order, work_order)
        elif state_class in (StateClass.ACTIVE, StateClass.BLOCKED):
            winding_down = order.work_order_to_change(work_order_id)
            winding_down.state = WorkOrderState.CANCELLATION_IN_PROGRESS


def _cancel_tasks(order: Order, work_order: WorkOrder) -> None:
    for task_id in work_order.task_ids:
        if not task_is_final(order.tasks[task_id].state):
            _end_task(order.task_to_change(task_id), TaskState.CANCELED)


def _end_task(task: Task, state: TaskState) -> None:
    """A task reaching a final state closes its open fallouts: nothing is left to resolve."""
    task.state = state
    for fallout in task.fallouts.values():  # the task's own copies (see `Task.own_copy`)
        if fallout.open:
            fallout.open, fallout.resolution = False, TASK_CLOSED


def create_task(record: OrderRecord, event: ev.TaskCreated) -> Actor:
    order = require_order(record)
    data = event.data
    work_order = order.work_orders.get(data.work_order_id)
    if work_order is None:
        raise Missing(f"work order {data.work_order_id}")
    if work_order_is_final(work_order.state):
        raise Refused(f"work order {data.work_order_id} is {work_order.state}")
    if data.task_id in order.tasks:
        raise Refused(f"task {data.task_id} already exists")
    order.tasks[data.task_id] = Task(
        task_id=data.task_id, work_order_id=data.work_order_id, state=data.state, due_at=data.due_at
    )
    order.work_order_to_change(data.work_order_id).task_ids.append(data.task_id)
    refresh(order, data.work_order_id)
    return NO_ACTOR


def known_task(order: Order, task_id: str) -> Task:
    task = order.tasks.get(task_id)
    if task is None:
        raise Missing(f"task {task_id}")
    return task


def check_task_move(task: Task, state: TaskState) -> None:
    if state is not task.state and state not in TASK_MOVES[task.state]:
        raise Refused(f"task {task.task_id} cannot move from {task.state} to {state}")


def update_task(record: OrderRecord, event: ev.TaskUpdated) -> Actor:
    order = require_order(record)
    state = event.data.state
    task = known_task(order, event.data.task_id)
    check_task_move(task, state)
    open_fallouts = [key for key, fallout in task.fallouts.items() if fallout.open]
    if open_fallouts and state is not task.state and not task_is_final(state):
        # Seed 001: on hold "until the person or group that is assigned to the fallout record
        # resolves the issue"; ending the task (closed complete or canceled) is still possible.
        raise Refused(
            f"task {task.task_id} stays on hold while fallout {', '.join(open_fallouts)} is open"
        )
    if event.data.due_at is not None:
        order.task_to_change(task.task_id).due_at = event.data.due_at
    if task_is_final(state):
        _end_task(order.task_to_change(task.task_id), state)
    else:
        order.task_to_change(task.task_id).state = state
    refresh(order, task.work_order_id)
    return NO_ACTOR
