"""Parent states recomputed from the whole current set of children, never from deltas (DOMAIN.md).

Each function answers with the parent's state, or None when the children give no opinion and the
parent keeps the state its lifecycle gave it.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

from worker.rules.states import (
    FINAL_CLASSES,
    TASK_CLASS,
    WORK_ORDER_CLASS,
    OrderState,
    Profile,
    StateClass,
    TaskState,
    WorkOrderState,
)

# A work order counts as started once it is being worked, blocked, or already closed complete
# (seed 003: "at least one work order is in progress").
_STARTED = frozenset(
    {
        WorkOrderState.IN_PROGRESS,
        WorkOrderState.ON_HOLD,
        WorkOrderState.CANCELLATION_IN_PROGRESS,
        WorkOrderState.CLOSED_COMPLETE,
        WorkOrderState.FAILED,
    }
)


def work_order_from_tasks(tasks: Collection[TaskState]) -> WorkOrderState | None:
    """all final: closed_complete if any task completed, else canceled; any blocked: on_hold;
    any active or final: in_progress; any scheduled: scheduled; else no opinion."""
    # Which states the tasks are in decides, not how many are in each: every set of states (at
    # most 2^9) is worked out once, as this runs after every task update.
    return _work_order_from_task_states(frozenset(tasks))


@cache
def _work_order_from_task_states(tasks: frozenset[TaskState]) -> WorkOrderState | None:
    if not tasks:
        return None
    classes = {TASK_CLASS[task] for task in tasks}
    if classes <= FINAL_CLASSES:
        if TaskState.CLOSED_COMPLETE in tasks:
            return WorkOrderState.CLOSED_COMPLETE
        return WorkOrderState.CANCELED
    if StateClass.BLOCKED in classes:
        return WorkOrderState.ON_HOLD
    if classes & {StateClass.ACTIVE, *FINAL_CLASSES}:
        return WorkOrderState.IN_PROGRESS
    if TaskState.SCHEDULED in tasks:
        return WorkOrderState.SCHEDULED
    return None


def _ending(profile: Profile, work_orders: Collection[WorkOrderState]) -> OrderState:
    """The final state of a parent whose work orders are all final."""
    completed = WorkOrderState.CLOSED_COMPLETE in work_orders
    failed = WorkOrderState.FAILED in work_orders
    if profile is Profile.TMF and failed:
        # Decision: failed next to completed is partial (TMF641); failed with only canceled is
        # failed, since nothing was delivered.
        return OrderState.PARTIAL if completed else OrderState.FAILED
    return OrderState.COMPLETED if completed else OrderState.CANCELED


def parent_from_work_orders(
    profile: Profile, work_orders: Collection[WorkOrderState], *, has_tasks: bool
) -> OrderState | None:
    """Order or line item state from its work orders, for the given profile.

    standard (seeds 001, 003): any started -> in_progress; all final -> completed when at least one
    closed complete, else canceled; otherwise (none, or none started) no opinion.
    psa (seed 000): in_progress as soon as any work order has a task (an assignment) in any state.
    tmf: as standard, plus failed and partial once every work order is final.
    """
    # As for tasks, only which states occur decides: each combination is worked out once.
    return _parent_from_work_order_states(profile, frozenset(work_orders), has_tasks)


@cache
def _parent_from_work_order_states(
    profile: Profile, work_orders: frozenset[WorkOrderState], has_tasks: bool
) -> OrderState | None:
    if not work_orders:
        return None
    if all(WORK_ORDER_CLASS[state] in FINAL_CLASSES for state in work_orders):
        return _ending(profile, work_orders)
    if any(state in _STARTED for state in work_orders):
        return OrderState.IN_PROGRESS
    if profile is Profile.PSA and has_tasks:
        return OrderState.IN_PROGRESS
    return None
