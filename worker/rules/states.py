"""Every canonical state's class, its legal moves and the TMF638 mapping, as data.

The states themselves are the contract's vocabulary (`schemas.states`); this module is the one place
to audit how the worker treats them (DOMAIN.md, "Canonical states").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, TypeVar

from schemas.states import OrderState, Profile, ServiceState, TaskState, WorkOrderState

__all__ = ["OrderState", "Profile", "ServiceState", "TaskState", "WorkOrderState"]


class StateClass(StrEnum):
    NOT_STARTED = "not_started"
    ACTIVE = "active"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELED = "canceled"
    FAILED = "failed"


FINAL_CLASSES: Final = frozenset({StateClass.DONE, StateClass.CANCELED, StateClass.FAILED})


S = TypeVar("S", bound=StrEnum)

_NS, _AC, _BL = StateClass.NOT_STARTED, StateClass.ACTIVE, StateClass.BLOCKED
_DN, _CX, _FL = StateClass.DONE, StateClass.CANCELED, StateClass.FAILED

TASK_CLASS: Final[dict[TaskState, StateClass]] = {
    TaskState.DRAFT: _NS,
    TaskState.OPEN: _NS,
    TaskState.SCHEDULED: _NS,
    TaskState.IN_PROGRESS: _AC,
    TaskState.RESOLVED: _AC,
    TaskState.ON_HOLD: _BL,
    TaskState.AWAITING_INFORMATION: _BL,
    TaskState.CLOSED_COMPLETE: _DN,
    TaskState.CANCELED: _CX,
}

WORK_ORDER_CLASS: Final[dict[WorkOrderState, StateClass]] = {
    WorkOrderState.DRAFT: _NS,
    WorkOrderState.QUALIFIED: _NS,
    WorkOrderState.SCHEDULED: _NS,
    WorkOrderState.IN_PROGRESS: _AC,
    # Only a started work order is put into cancellation_in_progress, and it is still being worked.
    WorkOrderState.CANCELLATION_IN_PROGRESS: _AC,
    WorkOrderState.ON_HOLD: _BL,
    WorkOrderState.CLOSED_COMPLETE: _DN,
    WorkOrderState.CANCELED: _CX,
    WorkOrderState.FAILED: _FL,
}

ORDER_CLASS: Final[dict[OrderState, StateClass]] = {
    OrderState.DRAFT: _NS,
    OrderState.SUBMITTED: _NS,
    OrderState.ENRICHMENT_IN_PROGRESS: _NS,
    OrderState.ENRICHMENT_ON_HOLD: _BL,
    OrderState.NEW: _NS,
    OrderState.ACKNOWLEDGED: _NS,
    OrderState.SCHEDULED: _NS,
    OrderState.IN_PROGRESS: _AC,
    OrderState.REVISION_IN_PROGRESS: _AC,
    OrderState.ASSESSING_CANCELLATION: _AC,
    OrderState.CANCELLATION_IN_PROGRESS: _AC,
    OrderState.ON_HOLD: _BL,
    OrderState.AWAITING_INFORMATION: _BL,
    OrderState.COMPLETED: _DN,
    OrderState.PARTIAL: _DN,
    OrderState.CANCELED: _CX,
    OrderState.REJECTED: _CX,
    OrderState.FAILED: _FL,
}

SERVICE_CLASS: Final[dict[ServiceState, StateClass]] = {
    ServiceState.NEW: _NS,
    ServiceState.IN_SERVICE: _AC,
    ServiceState.SUSPENDED_FOR_NON_PAY: _BL,
    ServiceState.ORDER_CANCELED: _CX,
    ServiceState.EXPIRED: _DN,
    ServiceState.CANCELED_BY_USER: _CX,
    ServiceState.CANCELED_FOR_NON_PAY: _CX,
}

_O = OrderState
CAPTURE_STATES: Final = frozenset(
    {_O.DRAFT, _O.SUBMITTED, _O.ENRICHMENT_IN_PROGRESS, _O.ENRICHMENT_ON_HOLD}
)
"""An order still being captured or enriched: its children are recorded, but the rollup waits
until it is new (seed 001: capture complete), and its line items show its state."""

LIFECYCLE_STATES: Final = CAPTURE_STATES | {_O.NEW, _O.ACKNOWLEDGED}
"""The states the order's lifecycle commands lead through before fulfillment starts; a line item
without fulfillment progress shows the order's latest one."""

# Overlay states hold the rollup: children keep updating, and leaving the overlay restores it.
ORDER_OVERLAYS: Final = frozenset(
    {_O.ON_HOLD, _O.AWAITING_INFORMATION, _O.REVISION_IN_PROGRESS, _O.ASSESSING_CANCELLATION}
)

LINE_ITEM_OVERLAYS: Final = frozenset(
    {_O.ON_HOLD, _O.ASSESSING_CANCELLATION, _O.CANCELLATION_IN_PROGRESS}
)
"""A line item's own overlays, from its line-item commands (seed 001, in-flight order change)."""


def is_final(state_class: StateClass) -> bool:
    return state_class in FINAL_CLASSES


def task_is_final(state: TaskState) -> bool:
    return TASK_CLASS[state] in FINAL_CLASSES


def work_order_is_final(state: WorkOrderState) -> bool:
    return WORK_ORDER_CLASS[state] in FINAL_CLASSES


def order_is_final(state: OrderState) -> bool:
    return ORDER_CLASS[state] in FINAL_CLASSES


def service_is_final(state: ServiceState) -> bool:
    return SERVICE_CLASS[state] in FINAL_CLASSES


def service_is_active(state: ServiceState) -> bool:
    """Seed 004: a service is active (revenue-generating or about to be) when new or in service."""
    return state in (ServiceState.NEW, ServiceState.IN_SERVICE)


def _moves(table: dict[S, tuple[S, ...]]) -> dict[S, frozenset[S]]:
    return {state: frozenset(targets) for state, targets in table.items()}


_T = TaskState
# An upstream task update is legal when its move is listed. Final states never reopen;
# `resolved` is reached only from a blocked state (seed 001: "previously on hold ... now resolved").
TASK_MOVES: Final = _moves(
    {
        _T.DRAFT: (_T.OPEN, _T.SCHEDULED, _T.IN_PROGRESS, _T.CANCELED),
        _T.OPEN: (
            _T.SCHEDULED,
            _T.IN_PROGRESS,
            _T.ON_HOLD,
            _T.AWAITING_INFORMATION,
            _T.CLOSED_COMPLETE,
            _T.CANCELED,
        ),
        _T.SCHEDULED: (
            _T.OPEN,
            _T.IN_PROGRESS,
            _T.ON_HOLD,
            _T.AWAITING_INFORMATION,
            _T.CLOSED_COMPLETE,
            _T.CANCELED,
        ),
        _T.IN_PROGRESS: (_T.ON_HOLD, _T.AWAITING_INFORMATION, _T.CLOSED_COMPLETE, _T.CANCELED),
        _T.ON_HOLD: (
            _T.IN_PROGRESS,
            _T.AWAITING_INFORMATION,
            _T.RESOLVED,
            _T.CLOSED_COMPLETE,
            _T.CANCELED,
        ),
        _T.AWAITING_INFORMATION: (
            _T.IN_PROGRESS,
            _T.ON_HOLD,
            _T.RESOLVED,
            _T.CLOSED_COMPLETE,
            _T.CANCELED,
        ),
        _T.RESOLVED: (
            _T.IN_PROGRESS,
            _T.ON_HOLD,
            _T.AWAITING_INFORMATION,
            _T.CLOSED_COMPLETE,
            _T.CANCELED,
        ),
        _T.CLOSED_COMPLETE: (),
        _T.CANCELED: (),
    }
)

_W = WorkOrderState
_WO_ENDINGS = (_W.CLOSED_COMPLETE, _W.CANCELED, _W.FAILED)
# Work-order updates reported by the owner system. A started work order cannot become unstarted;
# `cancellation_in_progress` ends only in a final state.
WORK_ORDER_MOVES: Final = _moves(
    {
        _W.DRAFT: (
            _W.QUALIFIED,
            _W.SCHEDULED,
            _W.IN_PROGRESS,
            _W.ON_HOLD,
            _W.CANCELLATION_IN_PROGRESS,
            *_WO_ENDINGS,
        ),
        _W.QUALIFIED: (
            _W.SCHEDULED,
            _W.IN_PROGRESS,
            _W.ON_HOLD,
            _W.CANCELLATION_IN_PROGRESS,
            *_WO_ENDINGS,
        ),
        _W.SCHEDULED: (
            _W.QUALIFIED,
            _W.IN_PROGRESS,
            _W.ON_HOLD,
            _W.CANCELLATION_IN_PROGRESS,
            *_WO_ENDINGS,
        ),
        _W.IN_PROGRESS: (_W.ON_HOLD, _W.CANCELLATION_IN_PROGRESS, *_WO_ENDINGS),
        _W.ON_HOLD: (_W.IN_PROGRESS, _W.CANCELLATION_IN_PROGRESS, *_WO_ENDINGS),
        _W.CANCELLATION_IN_PROGRESS: _WO_ENDINGS,
        _W.CLOSED_COMPLETE: (),
        _W.CANCELED: (),
        _W.FAILED: (),
    }
)

# Orders and line items move by commands (see `lifecycle.COMMANDS`, `line_items.COMMANDS`), by
# manual change (any non-final state) and by rollup; this table lists every move any of them may
# make, so a reader can see the whole machine: as a manual change may lead anywhere, from any state
# not final to any other. Final states have no moves, and one move never happens: a line item
# whose work started is never merely scheduled again.
_NON_FINAL_ORDER = tuple(state for state in _O if ORDER_CLASS[state] not in FINAL_CLASSES)
_ORDER_ENDINGS = (_O.COMPLETED, _O.CANCELED, _O.REJECTED, _O.PARTIAL, _O.FAILED)
ORDER_MOVES: Final = {
    **{
        state: frozenset(
            {
                *(
                    target
                    for target in _NON_FINAL_ORDER
                    if target is not state
                    and not (state is _O.IN_PROGRESS and target is _O.SCHEDULED)
                ),
                *_ORDER_ENDINGS,
            }
        )
        for state in _NON_FINAL_ORDER
    },
    **{state: frozenset[OrderState]() for state in _O if ORDER_CLASS[state] in FINAL_CLASSES},
}

_S = ServiceState
SERVICE_MOVES: Final = _moves(
    {
        _S.NEW: (_S.IN_SERVICE, _S.ORDER_CANCELED, _S.CANCELED_BY_USER),
        _S.IN_SERVICE: (
            _S.SUSPENDED_FOR_NON_PAY,
            _S.EXPIRED,
            _S.CANCELED_BY_USER,
            _S.CANCELED_FOR_NON_PAY,
        ),
        _S.SUSPENDED_FOR_NON_PAY: (
            _S.IN_SERVICE,
            _S.EXPIRED,
            _S.CANCELED_BY_USER,
            _S.CANCELED_FOR_NON_PAY,
        ),
        _S.ORDER_CANCELED: (),
        _S.EXPIRED: (),
        _S.CANCELED_BY_USER: (),
        _S.CANCELED_FOR_NON_PAY: (),
    }
)

# TMF638 service state for each fulfillment status (DOMAIN.md): every final status is terminated.
TMF638_STATE: Final[dict[ServiceState, str]] = {
    _S.NEW: "reserved",
    _S.IN_SERVICE: "active",
    _S.SUSPENDED_FOR_NON_PAY: "inactive",
    _S.ORDER_CANCELED: "terminated",
    _S.EXPIRED: "terminated",
    _S.CANCELED_BY_USER: "terminated",
    _S.CANCELED_FOR_NON_PAY: "terminated",
}
