"""The state vocabulary is complete: every state classified, labelled, and in its move table."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS
from worker.rules.states import (
    FINAL_CLASSES,
    ORDER_CLASS,
    ORDER_MOVES,
    SERVICE_CLASS,
    SERVICE_MOVES,
    TASK_CLASS,
    TASK_MOVES,
    TMF638_STATE,
    WORK_ORDER_CLASS,
    WORK_ORDER_MOVES,
    OrderState,
    ServiceState,
    StateClass,
    TaskState,
    WorkOrderState,
    is_final,
    service_is_active,
    service_is_final,
)

TABLES: list[tuple[type[StrEnum], Mapping[Any, object], str]] = [
    (TaskState, TASK_CLASS, "class"),
    (TaskState, TASK_MOVES, "moves"),
    (TaskState, TASK_LABELS, "labels"),
    (WorkOrderState, WORK_ORDER_CLASS, "class"),
    (WorkOrderState, WORK_ORDER_MOVES, "moves"),
    (WorkOrderState, WORK_ORDER_LABELS, "labels"),
    (OrderState, ORDER_CLASS, "class"),
    (OrderState, ORDER_MOVES, "moves"),
    (OrderState, ORDER_LABELS, "labels"),
    (ServiceState, SERVICE_CLASS, "class"),
    (ServiceState, SERVICE_MOVES, "moves"),
    (ServiceState, TMF638_STATE, "tmf638"),
]


@pytest.mark.parametrize(
    ("states", "table", "what"), TABLES, ids=[f"{s.__name__}-{w}" for s, _, w in TABLES]
)
def test_every_state_is_in_the_table(
    states: type[StrEnum], table: Mapping[Any, object], what: str
) -> None:
    assert set(table) == set(states), f"{states.__name__} states missing from the {what} table"


@pytest.mark.parametrize(
    ("classes", "moves"),
    [
        (TASK_CLASS, TASK_MOVES),
        (WORK_ORDER_CLASS, WORK_ORDER_MOVES),
        (ORDER_CLASS, ORDER_MOVES),
        (SERVICE_CLASS, SERVICE_MOVES),
    ],
    ids=["task", "work_order", "order", "service"],
)
def test_final_states_have_no_moves_and_every_other_state_has_one(
    classes: Mapping[Any, object], moves: Mapping[Any, frozenset[Any]]
) -> None:
    for state, state_class in classes.items():
        if state_class in FINAL_CLASSES:
            assert moves[state] == frozenset(), f"final {state} must never move"
        else:
            assert moves[state], f"{state} is not final, so something must lead out of it"


@pytest.mark.parametrize("state_class", list(StateClass))
def test_done_canceled_and_failed_are_the_final_classes(state_class: StateClass) -> None:
    final = {StateClass.DONE, StateClass.CANCELED, StateClass.FAILED}
    assert is_final(state_class) is (state_class in final)


@pytest.mark.parametrize("state", list(ServiceState))
def test_a_service_is_active_when_new_or_in_service_and_final_when_it_ended(
    state: ServiceState,
) -> None:
    """Seed 004: Active = new or in service; order canceled, expired and both cancellations end."""
    assert service_is_active(state) is (state in {ServiceState.NEW, ServiceState.IN_SERVICE})
    assert service_is_final(state) is (
        state not in {ServiceState.NEW, ServiceState.IN_SERVICE, ServiceState.SUSPENDED_FOR_NON_PAY}
    )
