"""Timers in event time (`apply`, `advance`, `next_due` and their service counterparts): the
engine fires them exactly as the reference simulator does, so what fires when is part of the
contract. An order's timer is a parked event's expiry; a service's is its term end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import outbound as out
from schemas.inbound import TaskUpdatedData, Term
from tests.unit.rules.builders import (
    JEOPARDY_OFF,
    ORDER_ID,
    SERVICE,
    T0,
    Events,
    action,
    approved,
    created,
    inputs,
    item,
    task,
    wo,
)
from worker.rules import (
    Emitted,
    Input,
    OrderRecord,
    Origin,
    Policy,
    ServiceRecord,
    Stream,
    advance,
    advance_service,
    apply,
    apply_service,
    next_due,
    next_service_due,
    term_end_cause,
)
from worker.rules.states import ServiceState

TIMEOUT = timedelta(minutes=10)
POLICY = Policy(park_timeout=TIMEOUT, jeopardy=JEOPARDY_OFF)  # its own timers only
MINUTE = timedelta(minutes=1)


def parked(*times: datetime) -> OrderRecord:
    """An order not created yet holding one task update parked at each time (T1, T2, ...)."""
    e = Events()
    events = [e.task_updated(f"T{i}", "in_progress", time=t) for i, t in enumerate(times, 1)]
    return apply(None, ORDER_ID, inputs(*events), POLICY).record


def dead_letters(emitted: list[Emitted]) -> list[tuple[str, datetime]]:
    """The task of each dead letter (a parked task update), and its moment."""
    return [
        (x.event.data.task_id, x.emitted_at)
        for x in emitted
        if x.stream is Stream.DEAD_LETTER and isinstance(x.event.data, TaskUpdatedData)
    ]


# --- an order's timers: parked events expire -----------------------------------------------------


def test_nothing_is_due_for_a_record_without_parked_events() -> None:
    e = Events()
    record = apply(None, ORDER_ID, inputs(*approved(item("L1"))(e)), POLICY).record
    assert next_due(record, POLICY) is None
    assert advance(record, T0 + timedelta(days=365), POLICY).record is record


def test_a_parked_event_is_due_its_timeout_after_its_own_time_not_its_receipt() -> None:
    e = Events()
    early = e.task_updated("T1", "in_progress", time=T0)
    record = apply(None, ORDER_ID, [Input(early, T0 + timedelta(hours=5))], POLICY).record
    assert next_due(record, POLICY) == T0 + TIMEOUT


def test_an_event_without_a_time_is_due_its_timeout_after_its_receipt() -> None:
    e = Events()
    untimed = e.task_updated("T1", "in_progress", untimed=True)
    record = apply(None, ORDER_ID, [Input(untimed, T0 + MINUTE)], POLICY).record
    assert next_due(record, POLICY) == T0 + MINUTE + TIMEOUT


def test_next_due_is_the_earliest_pending_timer_after_each_change() -> None:
    record = parked(T0 + 5 * MINUTE, T0)
    assert next_due(record, POLICY) == T0 + TIMEOUT
    record = advance(record, T0 + TIMEOUT + timedelta(seconds=1), POLICY).record
    assert next_due(record, POLICY) == T0 + 5 * MINUTE + TIMEOUT
    record = advance(record, T0 + timedelta(hours=1), POLICY).record
    assert next_due(record, POLICY) is None


@pytest.mark.parametrize(
    ("until", "expired"),
    [(T0 + TIMEOUT - MINUTE, []), (T0 + TIMEOUT, []), (T0 + TIMEOUT + MINUTE, ["T1"])],
    ids=["before", "at-strictly-not-before", "after"],
)
def test_advance_fires_a_timer_due_strictly_before_until(
    until: datetime, expired: list[str]
) -> None:
    record = parked(T0)
    outcome = advance(record, until, POLICY)
    assert [task for task, _ in dead_letters(outcome.emitted)] == expired
    assert len(outcome.record.parked) == 1 - len(expired)


def test_an_expired_event_goes_to_the_dead_letters_at_its_due_time_as_consumed() -> None:
    e = Events()
    early = e.task_updated("T1", "in_progress", time=T0)
    origin = Origin(
        topic="fulfillment.tasks.v1",
        partition=3,
        offset=41,
        timestamp=1_795_000_000_000,
        key=b"O-1",
        value=b'{"raw": "bytes"}',
        headers=[("trace", None), ("trace", b"\xff")],
    )
    record = apply(None, ORDER_ID, [Input(early, T0, origin)], POLICY).record
    (dead,) = advance(record, T0 + timedelta(days=1), POLICY).emitted
    assert (dead.stream, dead.key, dead.event, dead.origin) == (
        Stream.DEAD_LETTER,
        ORDER_ID,
        early,
        origin,
    )
    assert dead.emitted_at == T0 + TIMEOUT
    assert dead.reason == f"order {ORDER_ID} never arrived (parked since {T0.isoformat()})"
    # Kept in the snapshot losslessly: the JSON the worker stores reads back as the same record.
    assert OrderRecord.model_validate_json(record.model_dump_json()) == record


def test_several_timers_fire_in_due_order_and_ones_due_together_at_once() -> None:
    record = parked(T0 + 2 * MINUTE, T0, T0 + 2 * MINUTE)
    outcome = advance(record, T0 + timedelta(hours=1), POLICY)
    assert dead_letters(outcome.emitted) == [
        ("T2", T0 + TIMEOUT),
        ("T1", T0 + 2 * MINUTE + TIMEOUT),
        ("T3", T0 + 2 * MINUTE + TIMEOUT),
    ]


def test_advance_is_idempotent_once_nothing_is_due() -> None:
    record = parked(T0)
    until = T0 + timedelta(hours=1)
    once = advance(record, until, POLICY)
    twice = advance(once.record, until, POLICY)
    assert twice.emitted == []
    assert twice.record is once.record
    assert record.parked != [], "advance changes no record it is given"


def test_an_input_first_fires_the_timers_due_before_its_time() -> None:
    e = Events(count=100)
    record = parked(T0)
    late = e.created(item("L1", wo("W1")), time=T0 + timedelta(hours=1))
    outcome = apply(record, ORDER_ID, inputs(late), POLICY)
    assert outcome.emitted[0].stream is Stream.DEAD_LETTER
    assert outcome.emitted[0].emitted_at == T0 + TIMEOUT
    assert all(x.emitted_at == T0 + timedelta(hours=1) for x in outcome.emitted[1:])
    assert outcome.record.order is not None
    assert "T1" not in outcome.record.order.tasks


def test_an_input_at_its_due_time_comes_before_the_timer_so_a_parked_child_waits_no_more() -> None:
    e = Events(count=100)
    record = parked(T0)
    parent = e.created(item("L1", wo("W1", task("T1"))), time=T0 + TIMEOUT)
    outcome = apply(record, ORDER_ID, inputs(parent), POLICY)
    assert dead_letters(outcome.emitted) == []
    assert outcome.record.parked == []


def test_a_parked_event_applied_when_its_parent_arrives_is_emitted_at_the_parents_time() -> None:
    e = Events()
    child = e.task_created("W1", "T1", "in_progress")  # T0 + 1 s
    record = apply(None, ORDER_ID, inputs(*approved(item("L1"))(e), child), POLICY).record
    parent = e.wo_created("L1", "W1")
    outcome = apply(record, ORDER_ID, inputs(parent), POLICY)
    task_change = next(x for x in outcome.emitted if x.event.subject == "T1")
    assert task_change.emitted_at == parent.time
    assert isinstance(task_change.event, out.TaskStateChanged)
    assert task_change.event.data.at == child.time  # the payload keeps the event's own time


# --- a service's timer: its term end -------------------------------------------------------------

END = datetime(2027, 11, 21, tzinfo=UTC)


def service(term: Term | None, *, live_at: datetime | None = T0) -> ServiceRecord:
    """A service created at T0 with `term`, in service from `live_at` (None: still new)."""
    steps = [created(term=term, event_id="a1")]
    if live_at is not None:
        steps.append(action("add", event_id="a2", time=live_at))
    return apply_service(None, SERVICE, [Input(s, T0) for s in steps], POLICY).record


def states(emitted: list[Emitted]) -> list[tuple[str, datetime]]:
    return [(x.event.type, x.emitted_at) for x in emitted]


@pytest.mark.parametrize(
    ("term", "live_at", "due"),
    [
        (None, T0, None),
        (Term(end=END, renewal="expires"), None, None),  # still new: nothing to expire yet
        (Term(end=END, renewal="expires"), T0, END),
        (Term(end=END, renewal="auto_renew"), None, END),
        (Term(end=END, renewal="auto_renew"), T0, END),
    ],
    ids=["no-term", "expires-still-new", "expires-in-service", "renews-new", "renews-in-service"],
)
def test_next_service_due_is_the_term_end_when_it_will_do_something(
    term: Term | None, live_at: datetime | None, due: datetime | None
) -> None:
    assert next_service_due(service(term, live_at=live_at), POLICY) == due


def test_an_expiring_term_expires_the_service_at_its_end() -> None:
    record = service(Term(end=END, renewal="expires"))
    outcome = advance_service(record, END + MINUTE, POLICY)
    (expired,) = outcome.emitted
    assert isinstance(expired.event, out.ServiceFulfillmentChanged)
    assert (expired.event.data.state, expired.event.data.effective_at) == (
        ServiceState.EXPIRED,
        END,
    )
    assert expired.emitted_at == END
    assert expired.event.data.caused_by == term_end_cause(SERVICE, END)
    assert next_service_due(outcome.record, POLICY) is None
    assert advance_service(outcome.record, END + timedelta(days=900), POLICY).emitted == []


def test_an_auto_renewing_term_renews_at_each_end_in_due_order() -> None:
    record = service(Term(end=END, renewal="auto_renew", period_days=30))
    outcome = advance_service(record, END + timedelta(days=65), POLICY)
    assert states(outcome.emitted) == [
        ("service.term.renewed", END),
        ("service.term.renewed", END + timedelta(days=30)),
        ("service.term.renewed", END + timedelta(days=60)),
    ]
    assert next_service_due(outcome.record, POLICY) == END + timedelta(days=90)
    assert len({x.event.id for x in outcome.emitted}) == 3


def test_a_term_that_ended_while_the_service_was_new_ends_it_once_it_goes_into_service() -> None:
    """The term end is pending only once it can act; the input that makes it due in its own past
    lets it act at once, at the input's time."""
    term = Term(end=END, renewal="expires")
    record = service(term, live_at=None)
    assert advance_service(record, END + timedelta(days=2), POLICY).emitted == []
    live = END + timedelta(days=1)
    outcome = apply_service(
        record, SERVICE, [Input(action("add", event_id="a2", time=live), live)], POLICY
    )
    assert [
        (x.event.data.state, x.emitted_at)  # type: ignore[union-attr]
        for x in outcome.emitted
    ] == [(ServiceState.IN_SERVICE, live), (ServiceState.EXPIRED, live)]


def test_an_input_after_a_term_end_finds_the_term_ended_first() -> None:
    record = service(Term(end=END, renewal="expires"))
    later = END + timedelta(days=1)
    disconnect = action("disconnect", event_id="a3", time=later)
    outcome = apply_service(record, SERVICE, [Input(disconnect, later)], POLICY)
    assert [x.event.type for x in outcome.emitted] == [
        "service.fulfillment.changed",
        "command.rejected",
    ]
    assert outcome.emitted[0].emitted_at == END


def test_a_term_is_not_renewed_past_the_calendars_end() -> None:
    """Times read from the wire end before 9000 (schemas.envelope.LATEST) and periods are at most
    a century, so renewing stops where Python's calendar would overflow, whatever `until` is."""
    term = Term(end=datetime(8999, 12, 1, tzinfo=UTC), renewal="auto_renew", period_days=36525)
    outcome = advance_service(service(term), datetime.max.replace(tzinfo=UTC), POLICY)
    assert [x.event.type for x in outcome.emitted] == ["service.term.renewed"]
    assert next_service_due(outcome.record, POLICY) is None


def test_an_event_waiting_for_a_parent_in_an_existing_order_expires_too() -> None:
    e = Events()
    created = apply(None, ORDER_ID, inputs(*approved(item("L1"))(e)), POLICY).record
    orphan = e.task_updated("T9", "in_progress", time=T0 + MINUTE)
    record = apply(created, ORDER_ID, inputs(orphan), POLICY).record
    outcome = advance(record, T0 + MINUTE + TIMEOUT + MINUTE, POLICY)
    (dead,) = outcome.emitted
    assert dead.reason is not None
    assert dead.reason.startswith("task T9 never arrived")
    assert outcome.record.order == record.order


@pytest.mark.parametrize("timeout", [timedelta(seconds=-1), timedelta(days=36526)])
def test_a_policy_refuses_a_park_timeout_below_zero_or_over_a_century(timeout: timedelta) -> None:
    with pytest.raises(ValueError, match="park_timeout must lie between 0 and 36525 days"):
        Policy(park_timeout=timeout)
