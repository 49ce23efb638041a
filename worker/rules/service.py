"""Service fulfillment status (DOMAIN.md, seed 004): what line items, billing and the calendar do to
a customer's service, and when an account, product or location is active.

Pure like the order rules: the current record and inputs in, the new record and events out. The
calendar is the service's timer: its term ends (`advance_service`, `next_service_due`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, Field

from schemas import outbound as out
from schemas.envelope import LATEST
from schemas.inbound import Term
from schemas.internal import ServiceAction, ServiceEvent
from worker.rules.emit import Cause, Emitted, Stream, output_id, rejected
from worker.rules.inputs import Input, Policy, event_key
from worker.rules.refusal import Refused
from worker.rules.snapshot import copied
from worker.rules.states import (
    SERVICE_MOVES,
    TMF638_STATE,
    ServiceState,
    service_is_active,
    service_is_final,
)

_S = ServiceState


class StatusChange(BaseModel):
    previous: ServiceState | None
    state: ServiceState
    at: AwareDatetime
    caused_by: str
    order_id: str | None = None


class Service(BaseModel):
    service_id: str
    state: ServiceState
    account_id: str | None = None
    product_id: str | None = None
    location_id: str | None = None
    term: Term | None = None
    order_id: str | None = None
    line_item_id: str | None = None
    orders: list[str] = []
    history: list[StatusChange] = []


class ServiceRecord(BaseModel):
    """Everything kept for one service id: the service (None until created) and the identity
    (source and id) of every event already applied."""

    service_id: str
    service: Service | None = None
    applied: set[str] = Field(default_factory=set)

    def clone(self) -> ServiceRecord:
        """A copy the rules may change: its lists and sets are copied, history entries shared."""
        service = self.service
        return copied(
            self,
            service=copied(service, orders=list(service.orders), history=list(service.history))
            if service is not None
            else None,
            applied=set(self.applied),
        )


@dataclass(slots=True)
class ServiceOutcome:
    record: ServiceRecord
    emitted: list[Emitted] = field(default_factory=list)


# What a completed line item action does to the service (seed 004 and DOMAIN.md): the state it
# leads to, from the states it may complete in. A `change` keeps the status (its attributes
# change); a `resume` brings back only a suspended service.
_LIVE: Final = frozenset({_S.NEW, _S.IN_SERVICE, _S.SUSPENDED_FOR_NON_PAY})
COMPLETED_ACTION: Final[dict[str, tuple[ServiceState, frozenset[ServiceState]] | None]] = {
    "add": (_S.IN_SERVICE, frozenset({_S.NEW})),  # billing starts
    "disconnect": (_S.CANCELED_BY_USER, _LIVE),
    "suspend": (_S.SUSPENDED_FOR_NON_PAY, frozenset({_S.IN_SERVICE})),
    "resume": (_S.IN_SERVICE, frozenset({_S.SUSPENDED_FOR_NON_PAY})),
    "change": None,
}

# Billing's non-pay events: the state each leads to, from the states it may be sent in.
NON_PAY: Final[dict[str, tuple[ServiceState, frozenset[ServiceState]]]] = {
    "service.nonpay.suspended": (_S.SUSPENDED_FOR_NON_PAY, frozenset({_S.IN_SERVICE})),
    "service.nonpay.restored": (_S.IN_SERVICE, frozenset({_S.SUSPENDED_FOR_NON_PAY})),
    "service.nonpay.canceled": (
        _S.CANCELED_FOR_NON_PAY,
        frozenset({_S.IN_SERVICE, _S.SUSPENDED_FOR_NON_PAY}),
    ),
}


def apply_service(
    record: ServiceRecord | None,
    service_id: str,
    inputs: Iterable[Input[ServiceEvent]],
    policy: Policy,
) -> ServiceOutcome:
    """Apply inputs in order to a copy of the service's record (None: not seen yet). As for an
    order (`worker.rules.apply`): before each input at its time t, the term end due strictly before
    t takes effect at its due time; after it, one it made due in its past takes effect at t."""
    current = record.clone() if record is not None else ServiceRecord(service_id=service_id)
    outcome = ServiceOutcome(current)
    for item in inputs:
        moment = item.moment
        _fire_timers(outcome, moment, policy)
        event = item.event
        key = event_key(event)
        if key not in current.applied:
            current.applied.add(key)
            cause = Cause.of(event, moment, moment)
            try:
                outcome.emitted.extend(_apply_one(current, event, cause))
            except Refused as refusal:
                order_id = event.data.order_id if isinstance(event, ServiceAction) else None
                outcome.emitted.append(
                    rejected(
                        cause,
                        str(refusal),
                        subject=service_id,
                        order_id=order_id,
                        service_id=service_id,
                    )
                )
        _fire_timers(outcome, moment, policy, at=moment)
    return outcome


def advance_service(record: ServiceRecord, until: datetime, policy: Policy) -> ServiceOutcome:
    """Let the term end of the service take effect if it falls due strictly before `until` (at its
    due time), and those of the terms it renews into. With nothing due, the record itself comes
    back, unchanged."""
    due = next_service_due(record, policy)
    if due is None or due >= until:
        return ServiceOutcome(record)
    outcome = ServiceOutcome(record.clone())
    _fire_timers(outcome, until, policy)
    return outcome


def next_service_due(record: ServiceRecord, policy: Policy) -> datetime | None:
    """When the service's term ends, if that will do something: an `expires` term ends a service
    that went into service (a term end that passes while the service is still new takes effect
    once it is in service, seed 004: "has come to end of term and life"); an `auto_renew` term
    renews any service not final. None: nothing pending."""
    service = record.service
    if service is None or service.term is None or service_is_final(service.state):
        return None
    term = service.term
    if term.renewal == "expires" and _S.EXPIRED not in SERVICE_MOVES[service.state]:
        return None
    # Decision: a term is not renewed past the calendar's end (see schemas.envelope.LATEST).
    return term.end if term.end < LATEST else None


def term_end_cause(service_id: str, term_end: datetime) -> str:
    """What names a term end as the cause of its effects (their `caused_by`, and the key their ids
    derive from): deterministic, one per service and term end, whatever offset the term was
    given in."""
    name = f"term-end:{service_id}:{term_end.astimezone(UTC).isoformat()}"
    return output_id(name, "service.term.ended", service_id)


def _fire_timers(
    outcome: ServiceOutcome, until: datetime, policy: Policy, at: datetime | None = None
) -> None:
    record = outcome.record
    while (due := next_service_due(record, policy)) is not None and due < until:
        service = record.service
        # next_service_due found both
        assert service is not None
        assert service.term is not None
        cause_id = term_end_cause(record.service_id, due)
        moment = at or due
        cause = Cause(cause_id, cause_id, "service.term.ended", moment, moment)
        outcome.emitted.append(_term_ended(service, service.term, cause))


def _apply_one(record: ServiceRecord, event: ServiceEvent, cause: Cause) -> list[Emitted]:
    if isinstance(event, ServiceAction):
        return _line_item_action(record, event, cause)
    service = record.service
    if service is None:
        raise Refused(f"unknown service {record.service_id}")
    target, allowed_from = NON_PAY[event.type]
    if service.state not in allowed_from:
        raise Refused(f"{event.type} is not allowed when the service is {service.state}")
    return [_move(service, target, cause)]


def _line_item_action(record: ServiceRecord, event: ServiceAction, cause: Cause) -> list[Emitted]:
    data = event.data
    service = record.service
    by = (data.order_id, data.line_item_id)
    if data.outcome == "created":
        if service is not None:
            raise Refused(f"service {data.service_id} already exists ({service.state})")
        record.service = service = Service(
            service_id=data.service_id,
            state=_S.NEW,
            account_id=data.account_id,
            product_id=data.product_id,
            location_id=data.location_id,
            term=data.term,
        )
        _attribute_to(service, data.order_id, data.line_item_id)
        return [_changed(service, None, cause, by)]
    if service is None:
        raise Refused(f"unknown service {data.service_id}: no add line item created it")
    if data.outcome == "canceled":
        # Seed 004: canceled before it went into service; a canceled change, suspend, resume or
        # disconnect leaves the service as it is.
        if data.action != "add" or service.state is not _S.NEW:
            return []
        _attribute_to(service, data.order_id, data.line_item_id)
        return [_move(service, _S.ORDER_CANCELED, cause, by)]
    completed = COMPLETED_ACTION[data.action]
    if completed is None:
        return [_attributes_changed(service, event, cause)]
    target, allowed_from = completed
    if service.state not in allowed_from:
        raise Refused(
            f"a completed {data.action} line item cannot move service {service.service_id} "
            f"from {service.state} to {target}"
        )
    _attribute_to(service, data.order_id, data.line_item_id)
    return [_move(service, target, cause, by)]


def _attribute_to(service: Service, order_id: str, line_item_id: str) -> None:
    service.order_id, service.line_item_id = order_id, line_item_id
    if order_id not in service.orders:
        service.orders.append(order_id)


def _attributes_changed(service: Service, event: ServiceAction, cause: Cause) -> Emitted:
    data = event.data
    if service_is_final(service.state):
        raise Refused(f"service {service.service_id} is {service.state}: it cannot change")
    previous_product, previous_location = service.product_id, service.location_id
    service.product_id = data.product_id or service.product_id
    service.location_id = data.location_id or service.location_id
    service.term = data.term or service.term
    _attribute_to(service, data.order_id, data.line_item_id)
    changed = out.ServiceAttributesChanged(
        id=cause.id_for("service.attributes.changed", service.service_id),
        subject=service.service_id,
        time=cause.at,
        data=out.ServiceAttributesChangedData(
            service_id=service.service_id,
            state=service.state,
            product_id=service.product_id,
            location_id=service.location_id,
            previous_product_id=previous_product,
            previous_location_id=previous_location,
            term_end=service.term.end if service.term else None,
            order_id=data.order_id,
            line_item_id=data.line_item_id,
            effective_at=cause.at,
            caused_by=cause.caused_by,
        ),
    )
    return Emitted(Stream.SERVICE_STATUS, service.service_id, changed, cause.emitted_at)


def _term_ended(service: Service, term: Term, cause: Cause) -> Emitted:
    """Seed 004: an `expires` term ends the service (expired); an `auto_renew` one is extended by
    its period."""
    if term.renewal == "expires":
        return _move(service, _S.EXPIRED, cause)
    renewed = term.model_copy(update={"end": term.end + timedelta(days=term.period_days)})
    service.term = renewed
    event = out.ServiceTermRenewed(
        id=cause.id_for("service.term.renewed", service.service_id),
        subject=service.service_id,
        time=cause.at,
        data=out.ServiceTermRenewedData(
            service_id=service.service_id,
            previous_term_end=term.end,
            term_end=renewed.end,
            effective_at=cause.at,
            caused_by=cause.caused_by,
        ),
    )
    return Emitted(Stream.SERVICE_STATUS, service.service_id, event, cause.emitted_at)


LineItemRef = tuple[str, str]
"""The order and line item behind a change; None for billing's and the calendar's changes."""


def _move(
    service: Service, target: ServiceState, cause: Cause, by: LineItemRef | None = None
) -> Emitted:
    previous = service.state
    service.state = target
    return _changed(service, previous, cause, by)


def _changed(
    service: Service, previous: ServiceState | None, cause: Cause, by: LineItemRef | None
) -> Emitted:
    order_id, line_item_id = by if by is not None else (None, None)
    service.history.append(
        StatusChange(
            previous=previous,
            state=service.state,
            at=cause.at,
            caused_by=cause.caused_by,
            order_id=order_id,
        )
    )
    changed = out.ServiceFulfillmentChanged(
        id=cause.id_for("service.fulfillment.changed", service.service_id),
        subject=service.service_id,
        time=cause.at,
        data=out.ServiceFulfillmentChangedData(
            service_id=service.service_id,
            previous=previous,
            state=service.state,
            active=service_is_active(service.state),
            tmf_state=TMF638_STATE[service.state],
            account_id=service.account_id,
            product_id=service.product_id,
            location_id=service.location_id,
            order_id=order_id,
            line_item_id=line_item_id,
            effective_at=cause.at,
            term_end=service.term.end if service.term else None,
            caused_by=cause.caused_by,
        ),
    )
    return Emitted(Stream.SERVICE_STATUS, service.service_id, changed, cause.emitted_at)


# --- activity of accounts, products and locations --------------------------------------------

ActivityKind = Literal["account", "product", "location"]


class ActivityRecord(BaseModel):
    """Which services of one account (product, location) are active, and whether it is."""

    kind: ActivityKind
    id: str
    active_services: set[str] = Field(default_factory=set)
    active: bool = False
    applied: set[str] = Field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ServiceActivity:
    """A service became active or stopped being active; `cause` is that change event's id."""

    service_id: str
    active: bool
    cause: str
    at: datetime


ActivityEvent = (
    out.AccountActivityChanged | out.ProductActivityChanged | out.LocationActivityChanged
)
_ACTIVITY_EVENTS: Final[dict[ActivityKind, tuple[type[ActivityEvent], str]]] = {
    "account": (out.AccountActivityChanged, "account_id"),
    "product": (out.ProductActivityChanged, "product_id"),
    "location": (out.LocationActivityChanged, "location_id"),
}


def activity_inputs(
    changed: out.ServiceFulfillmentChangedData | out.ServiceAttributesChangedData,
) -> list[tuple[ActivityKind, str, ServiceActivity]]:
    """The accounts, products and locations a service change may flip, with what it did: a
    status change that starts or stops the service counts for all its owners; an active service
    that moves to another product or location leaves the old one and joins the new."""
    if isinstance(changed, out.ServiceAttributesChangedData):
        if not service_is_active(changed.state):
            return []
        moves: list[tuple[ActivityKind, str | None, str | None]] = [
            ("product", changed.previous_product_id, changed.product_id),
            ("location", changed.previous_location_id, changed.location_id),
        ]
        inputs: list[tuple[ActivityKind, str, ServiceActivity]] = []
        for kind, old, new in moves:
            if old == new:
                continue
            for owner, active in ((old, False), (new, True)):
                if owner is not None:
                    inputs.append(
                        (
                            kind,
                            owner,
                            ServiceActivity(
                                changed.service_id, active, changed.caused_by, changed.effective_at
                            ),
                        )
                    )
        return inputs
    was_active = changed.previous is not None and service_is_active(changed.previous)
    if was_active == changed.active:
        return []
    activity = ServiceActivity(
        changed.service_id, changed.active, changed.caused_by, changed.effective_at
    )
    owners: list[tuple[ActivityKind, str | None]] = [
        ("account", changed.account_id),
        ("product", changed.product_id),
        ("location", changed.location_id),
    ]
    return [(kind, owner, activity) for kind, owner in owners if owner is not None]


def apply_activity(
    record: ActivityRecord | None,
    kind: ActivityKind,
    owner_id: str,
    changes: Iterable[ServiceActivity],
) -> tuple[ActivityRecord, list[Emitted]]:
    """Seed 004: an account, product or location is active while it has at least one active
    service. Emits an event when that flips."""
    current = (
        copied(record, active_services=set(record.active_services), applied=set(record.applied))
        if record is not None
        else ActivityRecord(kind=kind, id=owner_id)
    )
    emitted: list[Emitted] = []
    for change in changes:
        if change.cause in current.applied:
            continue
        current.applied.add(change.cause)
        if change.active:
            current.active_services.add(change.service_id)
        else:
            current.active_services.discard(change.service_id)
        active = bool(current.active_services)
        if active == current.active:
            continue
        current.active = active
        event_type, id_field = _ACTIVITY_EVENTS[kind]
        event = event_type.model_validate(
            {
                "id": output_id(change.cause, f"{kind}.activity.changed", owner_id),
                "subject": owner_id,
                "time": change.at,
                "data": {
                    id_field: owner_id,
                    "active": active,
                    "effective_at": change.at,
                    "caused_by": change.cause,
                },
            }
        )
        emitted.append(Emitted(Stream.SERVICE_STATUS, owner_id, event, change.at))
    return current, emitted
