"""The label vocabularies a viewer picks from, and each state's badge: its canonical name, its
label in every vocabulary and its class (which colours it)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, TypeVar

from pydantic import BaseModel, ConfigDict

from schemas.outbound import StateLabels
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS, Labels
from worker.rules.states import (
    ORDER_CLASS,
    SERVICE_CLASS,
    TASK_CLASS,
    TMF638_STATE,
    WORK_ORDER_CLASS,
    ServiceState,
    service_is_active,
)

S = TypeVar("S", bound=StrEnum)
V = TypeVar("V")


class Vocabulary(StrEnum):
    """Whose names the pages give states: the systems of the seeds, and TM Forum."""

    SERVICENOW = "servicenow"
    NEXTIAN = "nextian"
    PSA = "psa"
    TMF = "tmf"

    @property
    def display_name(self) -> str:
        return _TITLES[self]


_TITLES: Final = {
    Vocabulary.SERVICENOW: "ServiceNow",
    Vocabulary.NEXTIAN: "Nextian",
    Vocabulary.PSA: "PSA",
    Vocabulary.TMF: "TMF",
}


class EntityKind(StrEnum):
    ORDER = "order"
    LINE_ITEM = "line item"
    WORK_ORDER = "work order"
    TASK = "task"


class Frozen(BaseModel):
    """The base of every view: immutable plain data, serialisable as the JSON API's answer."""

    model_config = ConfigDict(frozen=True)


class StateBadge(Frozen):
    state: str
    labels: StateLabels
    # A StateClass value, or "unknown" for a state this version does not know (an old event).
    tone: str

    def label(self, vocabulary: Vocabulary) -> str:
        return str(getattr(self.labels, vocabulary.value))


def _by_value(table: Mapping[S, V]) -> dict[str, V]:
    """Keyed by the state's value, so that a state read from an event's JSON finds its entry."""
    return {state.value: entry for state, entry in table.items()}


_ORDER = (_by_value(ORDER_LABELS), _by_value(ORDER_CLASS))
_TABLES: Final = {
    # A line item has the order's states (and `scheduled`).
    EntityKind.ORDER: _ORDER,
    EntityKind.LINE_ITEM: _ORDER,
    EntityKind.WORK_ORDER: (_by_value(WORK_ORDER_LABELS), _by_value(WORK_ORDER_CLASS)),
    EntityKind.TASK: (_by_value(TASK_LABELS), _by_value(TASK_CLASS)),
}


def badge(kind: EntityKind, state: str) -> StateBadge:
    """The badge of a state (a StrEnum member or its value). A state without labels, such as one
    an older or newer worker wrote into an event, shows its canonical name in every vocabulary
    rather than failing the page."""
    labels, classes = _TABLES[kind]
    names = labels.get(state) or Labels(state, state, state, state)
    state_class = classes.get(state)
    return StateBadge(
        state=str(state),
        labels=StateLabels(**names._asdict()),
        tone=state_class.value if state_class is not None else "unknown",
    )


# Seed 004's names of the fulfillment statuses (Nextian's, the only system that names them).
_SERVICE_NAMES: Final = {
    ServiceState.NEW: "New",
    ServiceState.IN_SERVICE: "In Service",
    ServiceState.ORDER_CANCELED: "Order Canceled",
    ServiceState.EXPIRED: "Expired",
    ServiceState.CANCELED_BY_USER: "Canceled By User",
    ServiceState.CANCELED_FOR_NON_PAY: "Canceled for Non-Pay",
    ServiceState.SUSPENDED_FOR_NON_PAY: "Suspended for Non-Pay",
}


class ServiceBadge(Frozen):
    state: str
    name: str
    tmf_state: str
    active: bool
    tone: str


def service_badge(state: ServiceState) -> ServiceBadge:
    return ServiceBadge(
        state=state.value,
        name=_SERVICE_NAMES[state],
        tmf_state=TMF638_STATE[state],
        active=service_is_active(state),
        tone=SERVICE_CLASS[state].value,
    )
