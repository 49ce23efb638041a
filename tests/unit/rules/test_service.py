"""Service fulfillment status (DOMAIN.md, seed 004): what line items, billing's non-pay events and
term ends do to a service, and when an account, product or location is active.

Every test drives the pure rules in `worker.rules.service` with events built by the small
builders below; a service in a given state is reached by sending the events that lead there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, TypeVar

import pytest

from schemas import outbound as out
from schemas.inbound import Action, NonPayEvent, ServiceData, Term
from schemas.internal import ServiceAction, ServiceEvent
from tests.unit.rules.builders import (
    ACCOUNT,
    EXPIRING,
    LOCATION,
    ORDER,
    PRODUCT,
    SERVICE,
    T0,
    TERM_END,
    action,
    created,
    service_event_id,
)
from worker.rules import Emitted, Input, Policy, Stream
from worker.rules.service import (
    ActivityKind,
    ActivityRecord,
    ServiceActivity,
    ServiceOutcome,
    ServiceRecord,
    activity_inputs,
    advance_service,
    apply_activity,
    apply_service,
    term_end_cause,
)
from worker.rules.states import SERVICE_MOVES, ServiceState

S = ServiceState
AUTO_RENEW = Term(end=TERM_END, renewal="auto_renew", period_days=30)

FINAL = [S.ORDER_CANCELED, S.EXPIRED, S.CANCELED_BY_USER, S.CANCELED_FOR_NON_PAY]
NonPay = Literal["suspended", "restored", "canceled"]
E = TypeVar("E")
POLICY = Policy()

# --- builders -------------------------------------------------------------------------------------


def nonpay(kind: NonPay, *, event_id: str | None = None) -> NonPayEvent:
    return NonPayEvent(
        specversion="1.0",
        id=service_event_id(event_id),
        source="/billing",
        type=f"service.nonpay.{kind}",
        subject=SERVICE,
        time=T0,
        data=ServiceData(service_id=SERVICE),
    )


@dataclass(frozen=True)
class Clock:
    """A step that is not an event: the service's clock advances to `until` (`advance_service`)."""

    until: datetime

    @property
    def type(self) -> str:
        return "clock"


def term_ended(term_end: datetime = TERM_END) -> Clock:
    """The clock passes `term_end`."""
    return Clock(term_end + timedelta(seconds=1))


Step = ServiceEvent | Clock


def cause_of(step: Step) -> str:
    """What the outputs of a step name as their cause: an event's id; a term end's own id."""
    return term_end_cause(SERVICE, TERM_END) if isinstance(step, Clock) else step.id


def run(record: ServiceRecord | None, *steps: Step) -> ServiceOutcome:
    """Apply each run of events in one `apply_service` call, and advance the clock at each Clock."""
    current = record
    emitted: list[Emitted] = []
    for _, group in itertools.groupby(steps, key=lambda step: isinstance(step, Clock)):
        batch = list(group)
        for clock in batch:
            if isinstance(clock, Clock):
                outcome = advance_service(
                    current or ServiceRecord(service_id=SERVICE), clock.until, POLICY
                )
                current, emitted = outcome.record, emitted + outcome.emitted
        events = [Input(event, T0) for event in batch if not isinstance(event, Clock)]
        if events:
            outcome = apply_service(current, SERVICE, events, POLICY)
            current, emitted = outcome.record, emitted + outcome.emitted
    assert current is not None
    return ServiceOutcome(current, emitted)


# The events that lead a fresh service to each state (seed 004's transitions).
PATHS: dict[ServiceState, Callable[[], list[Step]]] = {
    S.NEW: lambda: [created()],
    S.IN_SERVICE: lambda: [created(), action("add")],
    S.SUSPENDED_FOR_NON_PAY: lambda: [*PATHS[S.IN_SERVICE](), nonpay("suspended")],
    S.ORDER_CANCELED: lambda: [created(), action("add", "canceled")],
    S.EXPIRED: lambda: [*PATHS[S.IN_SERVICE](), term_ended()],
    S.CANCELED_BY_USER: lambda: [*PATHS[S.IN_SERVICE](), action("disconnect")],
    S.CANCELED_FOR_NON_PAY: lambda: [*PATHS[S.IN_SERVICE](), nonpay("canceled")],
}


def reach(state: ServiceState, term: Term = EXPIRING) -> ServiceRecord:
    events = PATHS[state]()
    events[0] = created(term=term)
    record = run(None, *events).record
    assert record.service is not None
    assert record.service.state is state
    return record


# --- readers --------------------------------------------------------------------------------------


def of_type(emitted: Sequence[Emitted], kind: type[E]) -> list[E]:
    return [sent.event for sent in emitted if isinstance(sent.event, kind)]


def changes(outcome: ServiceOutcome) -> list[out.ServiceFulfillmentChangedData]:
    return [event.data for event in of_type(outcome.emitted, out.ServiceFulfillmentChanged)]


def state_of(record: ServiceRecord) -> ServiceState:
    assert record.service is not None
    return record.service.state


# --- seed 004: the fulfillment status table -------------------------------------------------------


class Row(NamedTuple):
    start: ServiceState | None  # None: the service is not known yet
    send: Step
    state: ServiceState | None  # None: nothing happens
    active: bool = False
    tmf: str = ""


SEED_ROWS = [
    pytest.param(Row(None, created(), S.NEW, True, "reserved"), id="004:new"),
    pytest.param(
        Row(S.NEW, action("add", "canceled"), S.ORDER_CANCELED, False, "terminated"),
        id="004:order-canceled",
    ),
    pytest.param(Row(S.NEW, action("add"), S.IN_SERVICE, True, "active"), id="004:in-service"),
    pytest.param(
        Row(S.IN_SERVICE, term_ended(TERM_END), S.EXPIRED, False, "terminated"), id="004:expired"
    ),
    pytest.param(
        Row(S.SUSPENDED_FOR_NON_PAY, term_ended(TERM_END), S.EXPIRED, False, "terminated"),
        id="004:expired-while-suspended",
    ),
    pytest.param(
        Row(S.IN_SERVICE, term_ended(TERM_END - timedelta(days=365)), None),
        id="004:expired-stale-term-end-ignored",
    ),
    pytest.param(
        Row(S.IN_SERVICE, action("disconnect"), S.CANCELED_BY_USER, False, "terminated"),
        id="004:canceled-by-user",
    ),
    pytest.param(
        Row(S.IN_SERVICE, nonpay("canceled"), S.CANCELED_FOR_NON_PAY, False, "terminated"),
        id="004:canceled-for-non-pay-from-in-service",
    ),
    pytest.param(
        Row(
            S.SUSPENDED_FOR_NON_PAY,
            nonpay("canceled"),
            S.CANCELED_FOR_NON_PAY,
            False,
            "terminated",
        ),
        id="004:canceled-for-non-pay-from-suspended",
    ),
    pytest.param(
        Row(S.IN_SERVICE, nonpay("suspended"), S.SUSPENDED_FOR_NON_PAY, False, "inactive"),
        id="004:suspended-for-non-pay",
    ),
    pytest.param(
        Row(S.IN_SERVICE, action("suspend"), S.SUSPENDED_FOR_NON_PAY, False, "inactive"),
        id="004:suspended-for-non-pay-by-suspend-line-item",
    ),
]


@pytest.mark.parametrize("row", SEED_ROWS)
def test_fulfillment_status_table(row: Row) -> None:
    record = reach(row.start) if row.start is not None else None
    outcome = run(record, row.send)

    if row.state is None:
        assert outcome.emitted == []
        assert record is not None
        assert outcome.record.service == record.service
        return
    [changed] = changes(outcome)
    assert len(outcome.emitted) == 1
    assert (changed.previous, changed.state) == (row.start, row.state)
    assert (changed.active, changed.tmf_state) == (row.active, row.tmf)
    assert changed.service_id == SERVICE
    assert (changed.account_id, changed.product_id, changed.location_id) == (
        ACCOUNT,
        PRODUCT,
        LOCATION,
    )
    assert changed.caused_by == cause_of(row.send)
    assert changed.term_end == TERM_END
    assert state_of(outcome.record) is row.state
    [sent] = outcome.emitted
    assert (sent.stream, sent.key, sent.event.subject) == (Stream.SERVICE_STATUS, SERVICE, SERVICE)


# Seed 004 "Active": true iff New or In Service; DOMAIN.md's TMF638 mapping, written out here
# rather than read from the module under test.
ACTIVE_AND_TMF = {
    S.NEW: (True, "reserved"),
    S.IN_SERVICE: (True, "active"),
    S.SUSPENDED_FOR_NON_PAY: (False, "inactive"),
    S.ORDER_CANCELED: (False, "terminated"),
    S.EXPIRED: (False, "terminated"),
    S.CANCELED_BY_USER: (False, "terminated"),
    S.CANCELED_FOR_NON_PAY: (False, "terminated"),
}


@pytest.mark.parametrize("state", list(S), ids=[f"004:active-and-tmf638:{s}" for s in S])
def test_every_emitted_change_carries_active_and_tmf638_state(state: ServiceState) -> None:
    outcome = run(None, *PATHS[state]())

    emitted = changes(outcome)
    assert emitted[-1].state is state
    for changed in emitted:
        assert (changed.active, changed.tmf_state) == ACTIVE_AND_TMF[changed.state]


# --- other rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [nonpay("restored"), action("resume")],
    ids=["nonpay-restored", "resume-line-item-completed"],
)
def test_a_suspended_service_goes_back_in_service(send: ServiceEvent) -> None:
    outcome = run(reach(S.SUSPENDED_FOR_NON_PAY), send)

    [changed] = changes(outcome)
    assert (changed.previous, changed.state, changed.active) == (
        S.SUSPENDED_FOR_NON_PAY,
        S.IN_SERVICE,
        True,
    )
    assert state_of(outcome.record) is S.IN_SERVICE


REFUSALS = [
    pytest.param(S.IN_SERVICE, nonpay("restored"), "not allowed", id="restore-never-suspended"),
    pytest.param(S.NEW, nonpay("suspended"), "not allowed", id="nonpay-suspend-new-service"),
    pytest.param(None, nonpay("suspended"), "unknown service", id="suspend-unknown-service"),
    pytest.param(None, action("add"), "no add line item", id="complete-unknown-service"),
    pytest.param(None, action("add", "canceled"), "no add line item", id="cancel-unknown-service"),
    pytest.param(S.NEW, created(), "already exists", id="created-for-existing-service"),
    pytest.param(S.IN_SERVICE, created(), "already exists", id="created-for-live-service"),
    pytest.param(S.NEW, action("suspend"), "cannot move", id="suspend-line-item-on-new"),
    pytest.param(S.IN_SERVICE, action("add"), "cannot move", id="add-completed-twice"),
    *(
        pytest.param(final, nonpay(kind), "not allowed", id=f"nonpay-{kind}-on-{final}")
        for final in FINAL
        for kind in ("suspended", "restored", "canceled")
    ),
]


@pytest.mark.parametrize(("start", "send", "reason"), REFUSALS)
def test_refused_events_are_rejected_on_the_ops_stream(
    start: ServiceState | None, send: ServiceEvent, reason: str
) -> None:
    record = reach(start) if start is not None else None
    outcome = run(record, send)

    [sent] = outcome.emitted
    assert isinstance(sent.event, out.CommandRejected)
    rejected = sent.event.data
    assert rejected.service_id == SERVICE
    assert reason in rejected.reason
    assert (rejected.command, rejected.caused_by, rejected.at) == (send.type, send.id, send.time)
    order = send.data.order_id if isinstance(send, ServiceAction) else None
    assert rejected.order_id == order
    assert (sent.stream, sent.key) == (Stream.OPS, order or SERVICE)
    # A refusal changes nothing but the record of applied events.
    assert outcome.record.service == (record.service if record is not None else None)
    assert f"{send.source} {send.id}" in outcome.record.applied


def test_change_completed_changes_attributes_and_keeps_the_status() -> None:
    new_term = Term(end=TERM_END + timedelta(days=90), renewal="auto_renew")
    change = action(
        "change",
        order="O-2",
        line_item="L-9",
        product="P-2",
        location="LOC-2",
        term=new_term,
    )
    outcome = run(reach(S.IN_SERVICE), change)

    [sent] = outcome.emitted
    assert isinstance(sent.event, out.ServiceAttributesChanged)
    assert (sent.stream, sent.key) == (Stream.SERVICE_STATUS, SERVICE)
    assert sent.event.data == out.ServiceAttributesChangedData(
        service_id=SERVICE,
        state=S.IN_SERVICE,
        product_id="P-2",
        location_id="LOC-2",
        previous_product_id=PRODUCT,
        previous_location_id=LOCATION,
        term_end=new_term.end,
        order_id="O-2",
        line_item_id="L-9",
        effective_at=T0,
        caused_by=change.id,
    )
    service = outcome.record.service
    assert service is not None
    assert service.state is S.IN_SERVICE
    assert (service.product_id, service.location_id, service.term) == ("P-2", "LOC-2", new_term)
    assert (service.order_id, service.line_item_id) == ("O-2", "L-9")
    assert service.orders == [ORDER, "O-2"]
    assert [step.state for step in service.history] == [S.NEW, S.IN_SERVICE]  # no status change


def test_a_change_that_names_nothing_keeps_the_attributes() -> None:
    outcome = run(reach(S.NEW, term=EXPIRING), action("change"))

    [changed] = of_type(outcome.emitted, out.ServiceAttributesChanged)
    assert (changed.data.state, changed.data.product_id, changed.data.location_id) == (
        S.NEW,
        PRODUCT,
        LOCATION,
    )
    assert changed.data.term_end == TERM_END
    assert outcome.record.service is not None
    assert outcome.record.service.orders == [ORDER]  # the same order is listed once


def test_a_change_without_any_term_reports_no_term_end() -> None:
    outcome = run(run(None, created(term=None)).record, action("change", product="P-2"))

    [changed] = of_type(outcome.emitted, out.ServiceAttributesChanged)
    assert (changed.data.product_id, changed.data.term_end) == ("P-2", None)


def test_auto_renew_term_end_extends_the_term_and_keeps_the_status() -> None:
    outcome = run(reach(S.IN_SERVICE, term=AUTO_RENEW), term_ended(TERM_END))

    renewed_end = TERM_END + timedelta(days=30)
    [sent] = outcome.emitted
    assert isinstance(sent.event, out.ServiceTermRenewed)
    assert (sent.stream, sent.key) == (Stream.SERVICE_STATUS, SERVICE)
    assert sent.event.data == out.ServiceTermRenewedData(
        service_id=SERVICE,
        previous_term_end=TERM_END,
        term_end=renewed_end,
        effective_at=TERM_END,
        caused_by=term_end_cause(SERVICE, TERM_END),
    )
    service = outcome.record.service
    assert service is not None
    assert service.state is S.IN_SERVICE
    assert service.term == AUTO_RENEW.model_copy(update={"end": renewed_end})

    # The old term end has passed; the new one renews again.
    assert run(outcome.record, term_ended(TERM_END)).emitted == []
    again = run(outcome.record, term_ended(renewed_end))
    [renewed] = of_type(again.emitted, out.ServiceTermRenewed)
    assert renewed.data.term_end == renewed_end + timedelta(days=30)


def test_term_end_of_a_service_without_a_term_does_nothing() -> None:
    record = run(None, created(term=None), action("add")).record

    outcome = run(record, term_ended())

    assert outcome.emitted == []
    assert state_of(outcome.record) is S.IN_SERVICE


@pytest.mark.parametrize("kind", ["change", "suspend", "resume", "disconnect"])
def test_a_canceled_non_add_line_item_leaves_the_service_as_it_is(kind: Action) -> None:
    record = reach(S.IN_SERVICE)

    outcome = run(record, action(kind, "canceled", order="O-2"))

    assert outcome.emitted == []
    assert outcome.record.service == record.service


def test_an_add_canceled_after_it_went_into_service_changes_nothing() -> None:
    record = reach(S.IN_SERVICE)

    outcome = run(record, action("add", "canceled"))

    assert outcome.emitted == []
    assert outcome.record.service == record.service


# Everything that can arrive for a service; in a final state each is refused or ignored.
EVERY_EVENT: dict[str, Callable[[], Step]] = {
    "created": created,
    "add-completed": lambda: action("add"),
    "add-canceled": lambda: action("add", "canceled"),
    "change-completed": lambda: action("change", product="P-2"),
    "suspend-completed": lambda: action("suspend"),
    "resume-completed": lambda: action("resume"),
    "disconnect-completed": lambda: action("disconnect"),
    "nonpay-suspended": lambda: nonpay("suspended"),
    "nonpay-restored": lambda: nonpay("restored"),
    "nonpay-canceled": lambda: nonpay("canceled"),
    "term-ended": term_ended,
}


@pytest.mark.parametrize("final", FINAL)
@pytest.mark.parametrize("name", list(EVERY_EVENT))
def test_final_states_are_absorbing(final: ServiceState, name: str) -> None:
    record = reach(final)

    outcome = run(record, EVERY_EVENT[name]())

    assert outcome.record.service == record.service
    assert all(isinstance(sent.event, out.CommandRejected) for sent in outcome.emitted)


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("name", list(EVERY_EVENT))
def test_every_status_change_is_a_move_the_state_table_allows(
    start: ServiceState, name: str
) -> None:
    outcome = run(reach(start), EVERY_EVENT[name]())

    for changed in changes(outcome):
        assert changed.previous is start
        assert changed.state in SERVICE_MOVES[start], f"{start} -> {changed.state}"


def test_a_term_end_while_the_service_is_still_new_does_nothing() -> None:
    """SERVICE_MOVES has no new -> expired: a service that never went into service does not
    come to the end of its term (seed 004, "Expired"); once in service, the term end applies."""
    record = reach(S.NEW)

    outcome = run(record, term_ended())

    assert outcome.emitted == []
    assert outcome.record.service == record.service
    [changed] = changes(run(outcome.record, action("add"), term_ended()))[1:]
    assert (changed.previous, changed.state) == (S.IN_SERVICE, S.EXPIRED)


@pytest.mark.parametrize("name", list(EVERY_EVENT))
def test_the_same_event_twice_is_applied_once(name: str) -> None:
    record = reach(S.IN_SERVICE, term=AUTO_RENEW)
    event = EVERY_EVENT[name]()

    first = run(record, event)
    in_one_batch = run(record, event, event)
    in_a_later_batch = run(first.record, event)

    assert in_one_batch.emitted == first.emitted
    assert in_one_batch.record == first.record
    assert in_a_later_batch.emitted == []
    assert in_a_later_batch.record == first.record


def test_apply_service_does_not_change_the_record_it_is_given() -> None:
    record = reach(S.NEW)
    before = record.model_copy(deep=True)

    run(record, action("add"), action("change", product="P-2"))

    assert record == before


def test_without_an_event_time_the_receive_time_is_used() -> None:
    received = T0 + timedelta(minutes=5)

    outcome = apply_service(None, SERVICE, [Input(created(time=None), received)], POLICY)

    [changed] = changes(outcome)
    assert changed.effective_at == received


def test_history_and_orders_record_every_change_and_the_orders_behind_it() -> None:
    add, complete = created(), action("add", time=T0 + timedelta(days=1))
    suspend = nonpay("suspended")
    disconnect = action("disconnect", order="O-2", line_item="L-7", time=T0 + timedelta(days=9))

    outcome = run(None, add, complete, suspend, disconnect)

    service = outcome.record.service
    assert service is not None
    assert service.orders == [ORDER, "O-2"]
    assert (service.order_id, service.line_item_id) == ("O-2", "L-7")
    assert [
        (step.previous, step.state, step.caused_by, step.order_id, step.at)
        for step in service.history
    ] == [
        (None, S.NEW, add.id, ORDER, T0),
        (S.NEW, S.IN_SERVICE, complete.id, ORDER, T0 + timedelta(days=1)),
        (S.IN_SERVICE, S.SUSPENDED_FOR_NON_PAY, suspend.id, None, T0),  # billing, no order
        (S.SUSPENDED_FOR_NON_PAY, S.CANCELED_BY_USER, disconnect.id, "O-2", disconnect.time),
    ]
    assert [(c.order_id, c.line_item_id) for c in changes(outcome)] == [
        (ORDER, "L-1"),
        (ORDER, "L-1"),
        (None, None),
        ("O-2", "L-7"),
    ]


def test_an_order_canceled_before_service_is_attributed_to_the_canceling_order() -> None:
    outcome = run(reach(S.NEW), action("add", "canceled", order="O-3", line_item="L-3"))

    [changed] = changes(outcome)
    assert (changed.order_id, changed.line_item_id) == ("O-3", "L-3")
    assert outcome.record.service is not None
    assert outcome.record.service.orders == [ORDER, "O-3"]


# --- activity of accounts, products and locations -------------------------------------------------


def changed_data(
    previous: ServiceState | None, state: ServiceState, **owners: str | None
) -> out.ServiceFulfillmentChangedData:
    data = {"account_id": ACCOUNT, "product_id": PRODUCT, "location_id": LOCATION, **owners}
    return out.ServiceFulfillmentChangedData(
        service_id=SERVICE,
        previous=previous,
        state=state,
        active=ACTIVE_AND_TMF[state][0],
        tmf_state=ACTIVE_AND_TMF[state][1],
        order_id=ORDER,
        line_item_id="L-1",
        effective_at=T0,
        caused_by="evt-cause",
        **data,
    )


FLIPS = [
    pytest.param(None, S.NEW, True, id="created-becomes-active"),
    pytest.param(S.SUSPENDED_FOR_NON_PAY, S.IN_SERVICE, True, id="restored-becomes-active"),
    pytest.param(S.IN_SERVICE, S.SUSPENDED_FOR_NON_PAY, False, id="suspended-stops"),
    pytest.param(S.NEW, S.ORDER_CANCELED, False, id="order-canceled-stops"),
    pytest.param(S.IN_SERVICE, S.CANCELED_BY_USER, False, id="canceled-stops"),
    pytest.param(S.SUSPENDED_FOR_NON_PAY, S.CANCELED_FOR_NON_PAY, None, id="inactive-to-final"),
    pytest.param(S.NEW, S.IN_SERVICE, None, id="new-to-in-service-stays-active"),
]


@pytest.mark.parametrize(("previous", "state", "active"), FLIPS)
def test_activity_inputs_only_when_the_active_flag_flips(
    previous: ServiceState | None, state: ServiceState, active: bool | None
) -> None:
    inputs = activity_inputs(changed_data(previous, state))

    if active is None:
        assert inputs == []
        return
    activity = ServiceActivity(SERVICE, active, "evt-cause", T0)
    assert inputs == [
        ("account", ACCOUNT, activity),
        ("product", PRODUCT, activity),
        ("location", LOCATION, activity),
    ]


def test_activity_inputs_skip_owners_the_service_does_not_have() -> None:
    inputs = activity_inputs(changed_data(None, S.NEW, product_id=None, location_id=None))

    assert [(kind, owner) for kind, owner, _ in inputs] == [("account", ACCOUNT)]


ACTIVITY_EVENTS: dict[ActivityKind, tuple[type[out.ServiceStatusEvent], str]] = {
    "account": (out.AccountActivityChanged, "account_id"),
    "product": (out.ProductActivityChanged, "product_id"),
    "location": (out.LocationActivityChanged, "location_id"),
}


def became(service_id: str, active: bool, cause: str) -> ServiceActivity:
    return ServiceActivity(service_id, active, cause, T0)


@pytest.mark.parametrize("kind", list(ACTIVITY_EVENTS))
def test_an_owner_is_active_while_it_has_at_least_one_active_service(kind: ActivityKind) -> None:
    event_type, id_field = ACTIVITY_EVENTS[kind]
    owner = f"{kind}-1"

    record, first_on = apply_activity(None, kind, owner, [became("S-1", True, "c1")])
    record, second_on = apply_activity(record, kind, owner, [became("S-2", True, "c2")])
    record, first_off = apply_activity(record, kind, owner, [became("S-1", False, "c3")])
    record, last_off = apply_activity(record, kind, owner, [became("S-2", False, "c4")])

    assert (second_on, first_off) == ([], [])
    for emitted, active, cause in [(first_on, True, "c1"), (last_off, False, "c4")]:
        [sent] = emitted
        assert isinstance(sent.event, event_type)
        assert (sent.stream, sent.key, sent.event.subject) == (Stream.SERVICE_STATUS, owner, owner)
        assert sent.event.type == f"{kind}.activity.changed"
        assert sent.event.data.model_dump() == {
            id_field: owner,
            "active": active,
            "effective_at": T0,
            "caused_by": cause,
        }
    assert record == ActivityRecord(
        kind=kind, id=owner, active=False, applied={"c1", "c2", "c3", "c4"}
    )


@pytest.mark.parametrize("kind", list(ACTIVITY_EVENTS))
def test_activity_changes_are_applied_once_per_cause(kind: ActivityKind) -> None:
    on = became("S-1", True, "c1")
    record, emitted = apply_activity(None, kind, "X", [on, on])
    again, emitted_again = apply_activity(record, kind, "X", [on, became("S-1", False, "c1")])

    assert len(emitted) == 1
    assert emitted_again == []
    assert again == record
    assert record.active_services == {"S-1"}


def test_a_service_that_was_never_active_stopping_changes_nothing() -> None:
    record, emitted = apply_activity(None, "account", ACCOUNT, [became("S-9", False, "c1")])

    assert emitted == []
    assert (record.active, record.active_services) == (False, set())


def test_apply_activity_does_not_change_the_record_it_is_given() -> None:
    record, _ = apply_activity(None, "account", ACCOUNT, [became("S-1", True, "c1")])
    before = record.model_copy(deep=True)

    apply_activity(record, "account", ACCOUNT, [became("S-1", False, "c2")])

    assert record == before


def test_accounts_follow_their_services_end_to_end() -> None:
    """Two services of one account, through apply_service, activity_inputs and apply_activity."""
    records: dict[tuple[str, str], ActivityRecord] = {}
    services: dict[str, ServiceRecord | None] = {"S-1": None, "S-2": None}

    def send(service_id: str, event: ServiceEvent) -> list[tuple[str, bool]]:
        outcome = apply_service(services[service_id], service_id, [Input(event, T0)], POLICY)
        services[service_id] = outcome.record
        flips: list[tuple[str, bool]] = []
        for changed in of_type(outcome.emitted, out.ServiceFulfillmentChanged):
            for kind, owner, activity in activity_inputs(changed.data):
                record, emitted = apply_activity(
                    records.get((kind, owner)), kind, owner, [activity]
                )
                records[kind, owner] = record
                flips += [(sent.event.type, record.active) for sent in emitted]
        return flips

    def for_service(service_id: str, event: ServiceAction) -> ServiceAction:
        data = event.data.model_copy(update={"service_id": service_id})
        return event.model_copy(update={"data": data, "subject": service_id})

    on = [
        ("account.activity.changed", True),
        ("product.activity.changed", True),
        ("location.activity.changed", True),
    ]
    off = [(kind, False) for kind, _ in on]
    assert send("S-1", for_service("S-1", created())) == on
    assert send("S-2", for_service("S-2", created())) == []
    assert send("S-1", for_service("S-1", action("add"))) == []
    assert send("S-1", for_service("S-1", action("disconnect"))) == []
    assert send("S-2", for_service("S-2", action("add", "canceled"))) == off


# --- deterministic output -------------------------------------------------------------------------


SCENARIOS: dict[str, Callable[[], list[Step]]] = {
    **{f"to-{state}": path for state, path in PATHS.items()},
    "change": lambda: [*PATHS[S.IN_SERVICE](), action("change", product="P-2")],
    "renewal": lambda: [created(term=AUTO_RENEW), action("add"), term_ended()],
    "refusals": lambda: [nonpay("suspended"), created(), created(), action("suspend")],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_same_input_gives_the_same_output(name: str) -> None:
    events = SCENARIOS[name]()

    first, second = run(None, *events), run(None, *events)

    assert [sent.event.model_dump() for sent in first.emitted] == [
        sent.event.model_dump() for sent in second.emitted
    ]
    assert [(s.stream, s.key) for s in first.emitted] == [(s.stream, s.key) for s in second.emitted]
    assert first.record == second.record
    ids = [sent.event.id for sent in first.emitted]
    assert len(set(ids)) == len(ids)


def test_activity_output_is_deterministic() -> None:
    changes_in = [became("S-1", True, "c1"), became("S-1", False, "c2")]

    first = apply_activity(None, "product", PRODUCT, changes_in)
    second = apply_activity(None, "product", PRODUCT, changes_in)

    assert [s.event.model_dump() for s in first[1]] == [s.event.model_dump() for s in second[1]]
    assert first[0] == second[0]


def _moved(
    state: ServiceState, old: str | None, new: str | None
) -> out.ServiceAttributesChangedData:
    return out.ServiceAttributesChangedData(
        service_id=SERVICE,
        state=state,
        product_id=PRODUCT,
        location_id=new,
        previous_product_id=PRODUCT,
        previous_location_id=old,
        term_end=None,
        order_id="O-2",
        line_item_id="L-9",
        effective_at=T0,
        caused_by="change-1",
    )


@pytest.mark.parametrize(
    ("state", "old", "new", "expected"),
    [
        (
            S.IN_SERVICE,
            "LOC-1",
            "LOC-2",
            [("location", "LOC-1", False), ("location", "LOC-2", True)],
        ),
        (S.NEW, None, "LOC-2", [("location", "LOC-2", True)]),
        (S.IN_SERVICE, "LOC-1", "LOC-1", []),
        (S.SUSPENDED_FOR_NON_PAY, "LOC-1", "LOC-2", []),
    ],
    ids=["active-moves", "active-gets-a-first-location", "unchanged", "inactive-moves"],
)
def test_an_active_service_moved_by_a_change_leaves_its_old_owner_and_joins_the_new(
    state: ServiceState, old: str | None, new: str | None, expected: list[tuple[str, str, bool]]
) -> None:
    inputs = activity_inputs(_moved(state, old, new))
    assert [(kind, owner, change.active) for kind, owner, change in inputs] == expected
    assert all(change.cause == "change-1" for _, _, change in inputs)


def test_a_resume_line_item_brings_back_only_a_suspended_service() -> None:
    outcome = run(reach(S.NEW), action("resume"))
    [sent] = outcome.emitted
    assert isinstance(sent.event, out.CommandRejected)
    assert "cannot move service" in sent.event.data.reason
    assert outcome.record.service is not None
    assert outcome.record.service.state is S.NEW
