"""Fallout (seed 002, ServiceNow; DOMAIN.md "Fallout"): a task that cannot be completed gets a
fallout record and goes on hold until it is resolved, then `resolved`. Operations hear of each
fallout raised, reassigned and resolved (see `changes.fallout_events`)."""

from __future__ import annotations

from schemas import inbound as ev
from worker.rules.changes import NO_ACTOR, Actor
from worker.rules.derive import refresh
from worker.rules.refusal import Refused
from worker.rules.snapshot import Fallout, Order, OrderRecord, Task
from worker.rules.states import TaskState
from worker.rules.work import check_task_move, known_task, require_order


def raise_fallout(record: OrderRecord, event: ev.FalloutRaised) -> Actor:
    order = require_order(record)
    data = event.data
    task = known_task(order, data.task_id)
    if data.fallout_id in task.fallouts:
        raise Refused(f"fallout {data.fallout_id} already exists")
    check_task_move(task, TaskState.ON_HOLD)
    task = order.task_to_change(data.task_id)
    task.fallouts[data.fallout_id] = Fallout(
        fallout_id=data.fallout_id,
        category=data.category,
        reason=data.reason,
        assigned_group=data.assigned_group,
    )
    task.state = TaskState.ON_HOLD
    refresh(order, task.work_order_id)
    return NO_ACTOR


def _open_fallout(order: Order, task_id: str, fallout_id: str) -> tuple[Task, Fallout]:
    """The task (the order's own copy) and its open fallout, to change."""
    fallout = known_task(order, task_id).fallouts.get(fallout_id)
    if fallout is None:
        raise Refused(f"unknown fallout {fallout_id} on task {task_id}")
    if not fallout.open:
        raise Refused(f"fallout {fallout_id} is already resolved")
    task = order.task_to_change(task_id)
    return task, task.fallouts[fallout_id]


def resolve_fallout(record: OrderRecord, event: ev.FalloutResolved) -> Actor:
    order = require_order(record)
    task, fallout = _open_fallout(order, event.data.task_id, event.data.fallout_id)
    fallout.open, fallout.resolution = False, event.data.resolution
    # The task is on hold while any fallout on it is open (a fallout puts it there, and an update
    # that would move it on is refused): it is resolved with the last one.
    if not any(other.open for other in task.fallouts.values()):
        task.state = TaskState.RESOLVED
    refresh(order, task.work_order_id)
    return NO_ACTOR


def reassign_fallout(record: OrderRecord, event: ev.FalloutReassigned) -> Actor:
    order = require_order(record)
    _, fallout = _open_fallout(order, event.data.task_id, event.data.fallout_id)
    fallout.assigned_group = event.data.assigned_group
    return NO_ACTOR
