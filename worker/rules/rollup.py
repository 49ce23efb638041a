"""Parent states decided by the set of their children's states, never by deltas (DOMAIN.md). Each
function answers with the parent's state, or None when the children give no opinion and the
parent keeps the state its lifecycle gave it. `derive` applies them to an order.
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


def _ending(profile: Profile, *, delivered: bool, failed: bool) -> OrderState:
    """The final state of a parent whose children are all final."""
    if profile is Profile.TMF and failed:
        # Decision: failed next to completed is partial (TMF641); failed with only canceled is
        # failed, since nothing was delivered.
        return OrderState.PARTIAL if delivered else OrderState.FAILED
    return OrderState.COMPLETED if delivered else OrderState.CANCELED


def work_started(
    profile: Profile, work_orders: Collection[WorkOrderState], *, has_tasks: bool
) -> bool:
    """Seed 003: work has started once a work order is in progress (or blocked, winding down, or
    already ended with something delivered or failed); seed 000 (psa): once any work order has a
    task (an assignment) in any state."""
    return any(state in _STARTED for state in work_orders) or (profile is Profile.PSA and has_tasks)


def parent_from_work_orders(
    profile: Profile, work_orders: Collection[WorkOrderState], *, has_tasks: bool
) -> OrderState | None:
    """A line item's state from its work orders, for the given profile.

    standard (seeds 001, 003): all final -> completed when at least one closed complete, else
    canceled; any started -> in_progress; otherwise (none, or none started) no opinion.
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
        return _ending(
            profile,
            delivered=WorkOrderState.CLOSED_COMPLETE in work_orders,
            failed=WorkOrderState.FAILED in work_orders,
        )
    if work_started(profile, work_orders, has_tasks=has_tasks):
        return OrderState.IN_PROGRESS
    return None


def order_ending(profile: Profile, line_items: Collection[OrderState]) -> OrderState:
    """The final state of an order whose line items are all final (each completed, canceled,
    rejected, partial or failed): completed when one was completed, else canceled (seed 003, and
    DOMAIN.md: "an order whose line items all end canceled or rejected is canceled"); tmf: partial
    or failed as for work orders."""
    return _ending(
        profile,
        delivered=bool({OrderState.COMPLETED, OrderState.PARTIAL} & set(line_items)),
        failed=bool({OrderState.FAILED, OrderState.PARTIAL} & set(line_items)),
    )
