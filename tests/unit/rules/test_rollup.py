"""The rollup functions on their own (DOMAIN.md "Rollup rules"), one case per rule."""

from __future__ import annotations

import pytest

from worker.rules.rollup import parent_from_work_orders, work_order_from_tasks
from worker.rules.states import OrderState, Profile, TaskState, WorkOrderState

_T, _W, _O = TaskState, WorkOrderState, OrderState

FROM_TASKS: list[tuple[str, list[TaskState], WorkOrderState | None]] = [
    ("no-tasks-no-opinion", [], None),
    ("all-final-one-complete", [_T.CLOSED_COMPLETE, _T.CANCELED], _W.CLOSED_COMPLETE),
    ("all-final-all-canceled", [_T.CANCELED, _T.CANCELED], _W.CANCELED),
    ("any-blocked-on-hold", [_T.IN_PROGRESS, _T.AWAITING_INFORMATION, _T.OPEN], _W.ON_HOLD),
    ("blocked-beats-final", [_T.ON_HOLD, _T.CLOSED_COMPLETE], _W.ON_HOLD),
    ("any-active-in-progress", [_T.RESOLVED, _T.OPEN], _W.IN_PROGRESS),
    ("any-final-in-progress", [_T.CANCELED, _T.DRAFT], _W.IN_PROGRESS),
    ("any-scheduled-scheduled", [_T.SCHEDULED, _T.OPEN], _W.SCHEDULED),
    ("only-unstarted-no-opinion", [_T.DRAFT, _T.OPEN], None),
]


@pytest.mark.parametrize(
    ("tasks", "expected"), [c[1:] for c in FROM_TASKS], ids=[c[0] for c in FROM_TASKS]
)
def test_work_order_from_tasks(tasks: list[TaskState], expected: WorkOrderState | None) -> None:
    assert work_order_from_tasks(tasks) is expected


FROM_WORK_ORDERS: list[tuple[str, Profile, list[WorkOrderState], bool, OrderState | None]] = [
    ("no-work-orders", Profile.STANDARD, [], False, None),
    ("none-started", Profile.STANDARD, [_W.DRAFT, _W.QUALIFIED, _W.SCHEDULED], True, None),
    ("one-in-progress", Profile.STANDARD, [_W.IN_PROGRESS, _W.DRAFT], False, _O.IN_PROGRESS),
    ("one-on-hold", Profile.STANDARD, [_W.ON_HOLD, _W.DRAFT], False, _O.IN_PROGRESS),
    ("one-closed", Profile.STANDARD, [_W.CLOSED_COMPLETE, _W.DRAFT], False, _O.IN_PROGRESS),
    ("all-canceled", Profile.STANDARD, [_W.CANCELED, _W.CANCELED], False, _O.CANCELED),
    ("mix-is-completed", Profile.STANDARD, [_W.CANCELED, _W.CLOSED_COMPLETE], False, _O.COMPLETED),
    ("psa-a-task-any-state", Profile.PSA, [_W.DRAFT], True, _O.IN_PROGRESS),
    ("psa-no-task-no-opinion", Profile.PSA, [_W.DRAFT], False, None),
    ("psa-all-canceled", Profile.PSA, [_W.CANCELED], True, _O.CANCELED),
    ("tmf-failed-and-complete", Profile.TMF, [_W.FAILED, _W.CLOSED_COMPLETE], False, _O.PARTIAL),
    ("tmf-failed-and-canceled", Profile.TMF, [_W.FAILED, _W.CANCELED], False, _O.FAILED),
    ("tmf-failed-and-held", Profile.TMF, [_W.FAILED, _W.ON_HOLD], False, _O.IN_PROGRESS),
    ("tmf-without-failures", Profile.TMF, [_W.CLOSED_COMPLETE], False, _O.COMPLETED),
]


@pytest.mark.parametrize(
    ("profile", "work_orders", "has_tasks", "expected"),
    [c[1:] for c in FROM_WORK_ORDERS],
    ids=[c[0] for c in FROM_WORK_ORDERS],
)
def test_parent_from_work_orders(
    profile: Profile,
    work_orders: list[WorkOrderState],
    has_tasks: bool,
    expected: OrderState | None,
) -> None:
    assert parent_from_work_orders(profile, work_orders, has_tasks=has_tasks) is expected
