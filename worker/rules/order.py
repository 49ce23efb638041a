"""The engine of an order's rules: inputs in, in event-time order, the new record and the events to
publish out; and the order's timers, fired in event time.

`apply` is pure: it works on its own copy of the record it is given. Each input is deduplicated on
its identity (source and id); one about an order or parent not known yet is parked until it
arrives; a stale one is answered with `update.stale`, a refused one with `command.rejected`;
anything else goes to its handler (`lifecycle`, `line_items`, `work`, `fallout`), and what it
changed is published (`changes`). A parked event that waits longer than the policy's timeout goes
to the dead-letter stream: that is the order's timer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas import inbound as ev
from worker.rules.changes import (
    Actor,
    States,
    deleted,
    fallout_events,
    service_actions,
    state_changes,
)
from worker.rules.emit import Cause, Emitted, Outcome, Stream, rejected
from worker.rules.fallout import raise_fallout, reassign_fallout, resolve_fallout
from worker.rules.inputs import Input, Origin, Policy, event_key
from worker.rules.jeopardy import judge, next_moment, note_progress, rejudge, touched_by
from worker.rules.lifecycle import command, set_state
from worker.rules.line_items import add_line_item, create_order, line_item_command, remove_line_item
from worker.rules.refusal import Missing, Refused
from worker.rules.snapshot import OrderRecord, ParkedEvent
from worker.rules.versions import stale, versioned
from worker.rules.work import create_task, create_work_order, update_task, update_work_order


def apply(
    record: OrderRecord | None,
    order_id: str,
    inputs: Iterable[Input[ev.OrderEvent]],
    policy: Policy,
) -> Outcome:
    """Apply inputs in order to a copy of `record` (None: nothing known of the order yet). Before
    each input, at its time t (`Input.moment`), the record's timers due strictly before t fire at
    their due times, as `advance` fires them; after it, any timer it made due before t fires at t.
    """
    current = record.clone() if record is not None else OrderRecord(order_id=order_id)
    outcome = Outcome(current)
    for item in inputs:
        moment = item.moment
        _fire_timers(outcome, moment, policy)
        if _apply_one(outcome, item.event, item.received_at, item.origin, moment, policy):
            _retry_parked(outcome, moment, policy)
            _version_creations(outcome)
        _fire_timers(outcome, moment, policy, at=moment)
    if current.order is not None:
        current.order.forget_source()
    return outcome


def advance(record: OrderRecord, until: datetime, policy: Policy) -> Outcome:
    """Fire every timer of the record due strictly before `until`, in due-time order, each at its
    due time. With nothing due, the record itself comes back, unchanged."""
    due = next_due(record, policy)
    if due is None or due >= until:
        return Outcome(record)
    outcome = Outcome(record.clone())
    _fire_timers(outcome, until, policy)
    if outcome.record.order is not None:
        outcome.record.order.forget_source()
    return outcome


def next_due(record: OrderRecord, policy: Policy) -> datetime | None:
    """The earliest moment a timer of the record falls due; None when none is pending. A parked
    event expires `park_timeout` after its own event time (else its receipt); the order is judged
    again when its next jeopardy begins (see `jeopardy.judge`)."""
    # Checked several times per input, and seldom is anything parked.
    parked = (
        min(parked.moment for parked in record.parked) + policy.park_timeout
        if record.parked
        else None
    )
    jeopardy = next_moment(record.order) if record.order is not None else None
    if parked is None or jeopardy is None:
        return parked or jeopardy
    return min(parked, jeopardy)


def _fire_timers(
    outcome: Outcome, until: datetime, policy: Policy, at: datetime | None = None
) -> None:
    """Fire the timers due strictly before `until`, earliest first, each at its due time (or at
    `at`, for timers the last input made due in its past)."""
    while (due := next_due(outcome.record, policy)) is not None and due < until:
        _expire_parked(outcome, due, at or due, policy)
        order = outcome.record.order
        if order is not None and (jeopardy := next_moment(order)) is not None and jeopardy <= due:
            _judge(outcome, at or due, policy, None)


def _judge(outcome: Outcome, moment: datetime, policy: Policy, caused_by: str | None) -> None:
    """Judge the order's jeopardy at `moment` (see `jeopardy.judge`)."""
    record = outcome.record
    order = record.order
    assert order is not None  # judged after a change to it, or when its own timer fell due
    limits = None if record.deleted else policy.jeopardy[order.profile]
    outcome.emitted.extend(judge(order, limits, moment, caused_by))


def _expire_parked(outcome: Outcome, due: datetime, moment: datetime, policy: Policy) -> None:
    """Events parked until `due` waited too long for their order or parent: they leave the record
    for the dead-letter stream, each with what it waited for and its record as consumed."""
    record = outcome.record
    expired = [p for p in record.parked if p.moment + policy.park_timeout <= due]
    record.parked = [p for p in record.parked if p.moment + policy.park_timeout > due]
    outcome.emitted.extend(
        Emitted(
            Stream.DEAD_LETTER,
            record.order_id,
            parked.event,
            moment,
            reason=f"{parked.waiting_for} never arrived (parked since {parked.moment.isoformat()})",
            origin=parked.origin,
        )
        for parked in expired
    )


def _apply_one(
    outcome: Outcome,
    event: ev.OrderEvent,
    received_at: datetime,
    origin: Origin | None,
    moment: datetime,
    policy: Policy,
) -> bool:
    """Apply one event at `moment`; True when it changed the order (so parked events may now
    apply)."""
    record = outcome.record
    cause = Cause.of(event, event.time or received_at, moment)
    if cause.key in record.applied:
        return False
    record.applied.add(cause.key)
    if record.deleted:
        outcome.emitted.append(_rejected(record, cause, "the order was deleted"))
        return False
    order = record.order
    if order is None and not isinstance(event, ev.OrderCreated):
        _park(record, event, received_at, f"order {record.order_id}", origin)
        return False
    if order is not None:
        update_stale = stale(order, event, cause)
        if update_stale is not None:
            outcome.emitted.append(update_stale)
            return False
    before = States.of(order, event)
    line_items_before = dict(order.line_items) if order is not None else {}
    try:
        actor = _handle(record, event, policy)
    except Missing as missing:
        _park(record, event, received_at, missing.parent, origin)
        return False
    except Refused as refusal:
        outcome.emitted.append(_rejected(record, cause, str(refusal)))
        return False
    order = record.order
    assert order is not None  # every handler leaves an order (a deleted one is kept as it was)
    if record.deleted:
        outcome.emitted.append(deleted(record.order_id, cause, actor))
        outcome.emitted.extend(judge(order, None, moment, cause.caused_by))  # its jeopardy ends
        # A deleted draft's line items are gone: the services they created are canceled.
        outcome.emitted.extend(service_actions(order, {}, before, line_items_before, cause))
        return True
    if isinstance(event, _CREATIONS) and record.parked:
        outcome.creations.append(event)
    else:
        versioned(order, event, to_change=True).advance(event.source, event.sequence, event.time)
    changes = [*state_changes(order, before, cause, actor), *fallout_events(order, before, cause)]
    touched = note_progress(order, changes, moment) | touched_by(event)
    outcome.emitted.extend(changes)
    limits = policy.jeopardy[order.profile]
    if isinstance(event, ev.LineItemRemoved):  # what went with it is judged no more
        outcome.emitted.extend(judge(order, limits, moment, cause.caused_by))
    else:
        outcome.emitted.extend(rejudge(order, limits, moment, cause.caused_by, touched))
    outcome.emitted.extend(
        service_actions(order, order.line_items, before, line_items_before, cause)
    )
    return True


_CREATIONS = (ev.OrderCreated, ev.WorkOrderCreated, ev.TaskCreated)


def _version_creations(outcome: Outcome) -> None:
    """Record the versions of the creations just applied, after the events that waited for them:
    one its source sent before the creation, and parked because it arrived first, is applied as
    the source sent it, not judged stale against the creation that released it."""
    if not outcome.creations:
        return
    order = outcome.record.order
    assert order is not None  # a creation made it
    for event in outcome.creations:
        versioned(order, event, to_change=True).advance(event.source, event.sequence, event.time)
    outcome.creations.clear()


def _park(
    record: OrderRecord,
    event: ev.OrderEvent,
    received_at: datetime,
    waiting_for: str,
    origin: Origin | None,
) -> None:
    parked = ParkedEvent(
        event=event, received_at=received_at, waiting_for=waiting_for, origin=origin
    )
    record.parked.append(parked)


def _rejected(record: OrderRecord, cause: Cause, reason: str) -> Emitted:
    return rejected(cause, reason, subject=record.order_id, order_id=record.order_id)


def _retry_parked(outcome: Outcome, moment: datetime, policy: Policy) -> None:
    """Apply parked events that the last change made applicable, at `moment`, until none of them
    moves."""
    record = outcome.record
    progress = True
    while progress and record.parked:
        waiting, record.parked = record.parked, []
        for parked in waiting:
            # Its identity was recorded when it was parked; forget it so it is applied now, once.
            record.applied.discard(event_key(parked.event))
            _apply_one(outcome, parked.event, parked.received_at, parked.origin, moment, policy)
        progress = len(record.parked) < len(waiting)


def _handle(record: OrderRecord, event: ev.OrderEvent, policy: Policy) -> Actor:
    """Dispatch on the event's type; every handler refuses before it changes anything."""
    match event:
        case ev.OrderCreated():
            return create_order(record, event, policy)
        case ev.LineItemAdded():
            return add_line_item(record, event)
        case ev.LineItemRemoved():
            return remove_line_item(record, event)
        case ev.OrderCommand():
            return command(record, event)
        case ev.LineItemCommand():
            return line_item_command(record, event)
        case ev.OrderStateSet():
            return set_state(record, event)
        case ev.WorkOrderCreated():
            return create_work_order(record, event)
        case ev.WorkOrderUpdated():
            return update_work_order(record, event)
        case ev.TaskCreated():
            return create_task(record, event)
        case ev.TaskUpdated():
            return update_task(record, event)
        case ev.FalloutRaised():
            return raise_fallout(record, event)
        case ev.FalloutResolved():
            return resolve_fallout(record, event)
        # The cases are exhaustive over the OrderEvent union (mypy rejects the missing return
        # otherwise), so falling out of the last one cannot happen.
        case ev.FalloutReassigned():  # pragma: no branch
            return reassign_fallout(record, event)
