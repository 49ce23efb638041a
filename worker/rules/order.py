"""Applying one inbound event to an order's snapshot: the status decisions of DOMAIN.md.

`apply` is pure: it takes the current record and events, works on its own copy, and answers with the
new record and the events to publish. A refused event changes nothing in the order and is answered
with `command.rejected`; a stale one with `update.stale`; a duplicate (same event id) with nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel

from schemas import inbound as ev
from schemas import outbound as out
from schemas.internal import ServiceAction, ServiceActionData
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS, Labels
from worker.rules.rollup import parent_from_work_orders, work_order_from_tasks
from worker.rules.snapshot import (
    Fallout,
    LineItem,
    Order,
    OrderRecord,
    ParkedEvent,
    Task,
    Versioned,
    WorkOrder,
    copied,
)
from worker.rules.states import (
    ORDER_OVERLAYS,
    TASK_MOVES,
    WORK_ORDER_CLASS,
    WORK_ORDER_MOVES,
    OrderState,
    Profile,
    StateClass,
    TaskState,
    WorkOrderState,
    order_is_final,
    task_is_final,
    work_order_is_final,
)

M = TypeVar("M", bound=BaseModel, covariant=True)
S = TypeVar("S", bound=StrEnum)

_OUTPUT_NAMESPACE: Final = uuid.UUID("6f1c1d1e-5a0b-4c8e-9a35-0d1b7e3c2a10")
# SHA-1 fed the namespace once; each id hashes a copy of it fed its name (uuid5's hash).
_OUTPUT_HASH: Final = hashlib.sha1(_OUTPUT_NAMESPACE.bytes, usedforsecurity=False)
# The variant digit for each hex digit: RFC 4122 sets its two high bits to 10.
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 0b11] for digit in "0123456789abcdef"}


class Stream(StrEnum):
    """Which topic an emitted event belongs on; the shell maps these to topic names."""

    STATUS = "status"
    OPS = "ops"
    SERVICE_ACTIONS = "service_actions"  # internal: the order stage to the service stage
    SERVICE_STATUS = "service_status"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Emitted:
    stream: Stream
    key: str
    event: out.StatusEvent | out.OpsEvent | out.ServiceStatusEvent | ServiceAction | ev.OrderEvent
    reason: str | None = None  # why, for a dead letter


@dataclass(slots=True)
class Outcome:
    record: OrderRecord
    emitted: list[Emitted] = field(default_factory=list)


class Refused(Exception):
    """An event that must not be applied; the message is the reason given to the sender."""


class Missing(Refused):
    """An event naming a parent not known yet. Topics interleave arbitrarily (a task.created may
    overtake its workorder.created), so such an event is parked and retried as the order grows."""

    def __init__(self, parent: str) -> None:
        super().__init__(f"unknown {parent}")
        self.parent = parent


def output_id(cause: str, kind: str, subject: str) -> str:
    """Deterministic: the same input always yields the same output id (replays are recognisable).

    The id is `str(uuid.uuid5(namespace, f"{cause}|{kind}|{subject}"))`, byte for byte, made
    without the two UUID objects uuid5 builds (one id per output, so on the hot path): the first
    16 bytes of the SHA-1 of namespace and name, with version 5 and the RFC 4122 variant set.
    """
    sha1 = _OUTPUT_HASH.copy()
    sha1.update(f"{cause}|{kind}|{subject}".encode())
    digest = sha1.hexdigest()
    variant = _VARIANT[digest[16]]
    # 32 hex digits as 8-4-4-4-12; the 13th is the version, the 17th carries the variant.
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def apply(
    record: OrderRecord | None,
    order_id: str,
    events: Iterable[tuple[ev.OrderEvent, datetime]],
    *,
    default_profile: Profile,
) -> Outcome:
    """Apply events in order to a copy of `record` (None: nothing known of the order yet).

    Each event comes with the moment it was received, used where the event carries no `time`.
    """
    current = record.clone() if record is not None else OrderRecord(order_id=order_id)
    outcome = Outcome(current)
    for event, received_at in events:
        if _apply_one(outcome, event, received_at, default_profile):
            _retry_parked(outcome, default_profile)
    if current.order is not None:
        current.order.forget_source()
    return outcome


def _apply_one(
    outcome: Outcome, event: ev.OrderEvent, received_at: datetime, default_profile: Profile
) -> bool:
    """Apply one event; True when it changed the order (so parked events may now apply)."""
    record = outcome.record
    if event.id in record.applied:
        return False
    record.applied.add(event.id)
    at = event.time or received_at
    if record.deleted:
        outcome.emitted.append(_rejected(record.order_id, event, at, "the order was deleted"))
        return False
    order = record.order
    if order is None and not isinstance(event, ev.OrderCreated):
        waiting_for = f"order {record.order_id}"
        record.parked.append(
            ParkedEvent(event=event, received_at=received_at, waiting_for=waiting_for)
        )
        return False
    if order is not None:
        stale = _stale(order, event)
        if stale is not None:
            outcome.emitted.append(stale)
            return False
    before = States.of(order, event)
    line_items_before = dict(order.line_items) if order is not None else {}
    try:
        actor = _handle(record, event, default_profile)
    except Missing as missing:
        record.parked.append(
            ParkedEvent(event=event, received_at=received_at, waiting_for=missing.parent)
        )
        return False
    except Refused as refusal:
        outcome.emitted.append(_rejected(record.order_id, event, at, str(refusal)))
        return False
    if record.deleted:
        outcome.emitted.append(_deleted(record.order_id, event, at))
        # A deleted draft's line items are gone: the services they created are canceled.
        assert record.order is not None
        outcome.emitted.extend(
            _service_actions(record.order, {}, before, line_items_before, event, at)
        )
        return True
    order = record.order
    assert order is not None  # every handler but delete leaves an order
    _versioned(order, event, to_change=True).advance(event.sequence, event.time)
    outcome.emitted.extend(_changes(order, before, event, at, actor))
    outcome.emitted.extend(_fallout_emitted(order, event, at))
    outcome.emitted.extend(
        _service_actions(order, order.line_items, before, line_items_before, event, at)
    )
    return True


def _retry_parked(outcome: Outcome, default_profile: Profile) -> None:
    """Apply parked events that the last change made applicable, until none of them moves."""
    record = outcome.record
    progress = True
    while progress and record.parked:
        waiting, record.parked = record.parked, []
        for parked in waiting:
            # Its id was recorded when it was parked; forget it so it is applied now, once.
            record.applied.discard(parked.event.id)
            _apply_one(outcome, parked.event, parked.received_at, default_profile)
        progress = len(record.parked) < len(waiting)


def expire_parked(record: OrderRecord, older_than: datetime) -> Outcome:
    """Events parked before `older_than` waited too long for their parent: they leave the record
    for the dead-letter topic, each with what it waited for."""
    expired = [parked for parked in record.parked if parked.received_at < older_than]
    kept = [parked for parked in record.parked if parked.received_at >= older_than]
    # Only the parked events change: the rest is shared (`apply` never changes its input).
    return Outcome(
        copied(record, parked=kept),
        [
            Emitted(
                Stream.DEAD_LETTER,
                record.order_id,
                parked.event,
                reason=f"{parked.waiting_for} never arrived (parked since "
                f"{parked.received_at.isoformat()})",
            )
            for parked in expired
        ],
    )


# --- guards ------------------------------------------------------------------------------------


def _versioned(order: Order, event: ev.OrderEvent, *, to_change: bool = False) -> Versioned:
    """The entity whose source version the event carries (task, work order, else the order); with
    `to_change`, the order's own copy of it."""
    data = event.data
    if isinstance(
        data,
        ev.TaskUpdatedData
        | ev.FalloutRaisedData
        | ev.FalloutResolvedData
        | ev.FalloutReassignedData
        | ev.TaskCreatedData,
    ):
        task = order.tasks.get(data.task_id)
        if task is not None:
            return order.task_to_change(data.task_id) if to_change else task
    if isinstance(data, ev.WorkOrderUpdatedData | ev.WorkOrderCreatedData):
        work_order = order.work_orders.get(data.work_order_id)
        if work_order is not None:
            return order.work_order_to_change(data.work_order_id) if to_change else work_order
    return order


_ORDER_LEVEL: Final = (ev.OrderCommand, ev.OrderStateSet, ev.LineItemAdded, ev.LineItemRemoved)
"""Events whose `sequence` is the order's own version."""


def _stale(order: Order, event: ev.OrderEvent) -> Emitted | None:
    if isinstance(event, ev.TaskCreated | ev.WorkOrderCreated | ev.OrderCreated):
        return None  # nothing applied yet that a creation could be older than
    entity = _versioned(order, event)
    if entity is order and not isinstance(event, _ORDER_LEVEL):
        return None  # about a task or work order not known yet: parked, not judged by the order
    if not entity.is_stale(event.sequence, event.time):
        return None
    kind: Literal["order", "work_order", "task"]
    if isinstance(entity, Task):
        kind, entity_id = "task", entity.task_id
    elif isinstance(entity, WorkOrder):
        kind, entity_id = "work_order", entity.work_order_id
    else:
        kind, entity_id = "order", order.order_id
    data = out.UpdateStaleData(
        order_id=order.order_id,
        entity=kind,
        id=entity_id,
        sequence=event.sequence,
        applied_sequence=entity.sequence,
        caused_by=event.id,
    )
    stale = out.UpdateStale(
        id=output_id(event.id, "update.stale", entity_id),
        subject=entity_id,
        time=event.time,
        data=data,
    )
    return Emitted(Stream.OPS, order.order_id, stale)


# --- handlers: each checks everything before it changes anything, so a refusal changes nothing ---
# Entities may still be shared with the record `apply` was given (copy-on-write): every change is
# made to the order's own copy, from `order.task_to_change` (`work_order_`, `line_item_to_change`).

Actor = tuple[str | None, str | None]
"""Who asked for a change and why, carried onto the change events of commands."""
_NO_ACTOR: Final[Actor] = (None, None)


def _require_order(record: OrderRecord) -> Order:
    assert record.order is not None
    return record.order


def _create_order(record: OrderRecord, event: ev.OrderCreated, default: Profile) -> Actor:
    if record.order is not None:
        raise Refused(f"order {record.order_id} already exists")
    data = event.data
    order = Order(
        order_id=data.order_id,
        profile=data.profile or default,
        state=data.state,
        account_id=data.account_id,
    )
    for line_item in data.line_items:
        _check_new_line_item(order, line_item)
        _add_line_item(order, line_item)
    record.order = order
    _refresh(order)
    return _NO_ACTOR


def _check_new_line_item(order: Order, line_item: ev.NewLineItem) -> None:
    if line_item.line_item_id in order.line_items:
        raise Refused(f"line item {line_item.line_item_id} already exists")
    # Ids repeated inside the line item itself count too (nothing of it is in the order yet).
    work_order_ids: set[str] = set()
    task_ids: set[str] = set()
    for work_order in line_item.work_orders:
        if work_order.work_order_id in work_order_ids:
            raise Refused(f"work order {work_order.work_order_id} already exists")
        _check_new_work_order(order, work_order.work_order_id, work_order.state)
        work_order_ids.add(work_order.work_order_id)
        for task in work_order.tasks:
            if task.task_id in order.tasks or task.task_id in task_ids:
                raise Refused(f"task {task.task_id} already exists")
            task_ids.add(task.task_id)


def _check_new_work_order(order: Order, work_order_id: str, state: WorkOrderState) -> None:
    if work_order_id in order.work_orders:
        raise Refused(f"work order {work_order_id} already exists")
    if state is WorkOrderState.FAILED and order.profile is not Profile.TMF:
        raise Refused("work order state failed exists only in the tmf profile")


def _add_line_item(order: Order, line_item: ev.NewLineItem) -> None:
    order.line_items[line_item.line_item_id] = LineItem(
        line_item_id=line_item.line_item_id,
        action=line_item.action,
        state=_lifecycle_of_new_line_item(order),
        service_id=line_item.service_id,
        product_id=line_item.product_id,
        location_id=line_item.location_id,
        term=line_item.term,
        work_order_ids=[work_order.work_order_id for work_order in line_item.work_orders],
    )
    for work_order in line_item.work_orders:
        order.work_orders[work_order.work_order_id] = WorkOrder(
            work_order_id=work_order.work_order_id,
            line_item_id=line_item.line_item_id,
            kind=work_order.kind,
            state=work_order.state,
            task_ids=[task.task_id for task in work_order.tasks],
        )
        for task in work_order.tasks:
            order.tasks[task.task_id] = Task(
                task_id=task.task_id, work_order_id=work_order.work_order_id, state=task.state
            )


def _lifecycle_of_new_line_item(order: Order) -> OrderState:
    lifecycle = (OrderState.DRAFT, OrderState.NEW, OrderState.ACKNOWLEDGED)
    return order.state if order.state in lifecycle else OrderState.ACKNOWLEDGED


def _refuse_when_final(order: Order) -> None:
    # Seed 003 rule 3: once final, no line item may be added or deleted.
    if order_is_final(order.state):
        raise Refused(f"order is {order.state}: no line item may be added or removed once final")


def _add_line_item_event(record: OrderRecord, event: ev.LineItemAdded) -> Actor:
    order = _require_order(record)
    _refuse_when_final(order)
    _check_new_line_item(order, event.data.line_item)
    _add_line_item(order, event.data.line_item)
    _refresh(order)
    return _NO_ACTOR


def _remove_line_item(record: OrderRecord, event: ev.LineItemRemoved) -> Actor:
    order = _require_order(record)
    _refuse_when_final(order)
    line_item = order.line_items.get(event.data.line_item_id)
    if line_item is None:
        raise Refused(f"unknown line item {event.data.line_item_id}")
    for work_order_id in line_item.work_order_ids:
        for task_id in order.work_orders.pop(work_order_id).task_ids:
            del order.tasks[task_id]
    del order.line_items[line_item.line_item_id]
    _refresh(order)
    return _NO_ACTOR


def _create_work_order(record: OrderRecord, event: ev.WorkOrderCreated) -> Actor:
    order = _require_order(record)
    data = event.data
    line_item = order.line_items.get(data.line_item_id)
    if line_item is None:
        raise Missing(f"line item {data.line_item_id}")
    if order_is_final(line_item.state):
        raise Refused(f"line item {data.line_item_id} is {line_item.state}")
    _check_new_work_order(order, data.work_order_id, data.state)
    order.work_orders[data.work_order_id] = WorkOrder(
        work_order_id=data.work_order_id,
        line_item_id=data.line_item_id,
        kind=data.kind,
        state=data.state,
    )
    order.line_item_to_change(data.line_item_id).work_order_ids.append(data.work_order_id)
    _refresh(order, data.work_order_id)
    return _NO_ACTOR


def _update_work_order(record: OrderRecord, event: ev.WorkOrderUpdated) -> Actor:
    order = _require_order(record)
    data = event.data
    work_order = order.work_orders.get(data.work_order_id)
    if work_order is None:
        raise Missing(f"work order {data.work_order_id}")
    if data.state is work_order.state:
        return _NO_ACTOR
    if data.state is WorkOrderState.FAILED and order.profile is not Profile.TMF:
        raise Refused("work order state failed exists only in the tmf profile")
    if data.state not in WORK_ORDER_MOVES[work_order.state]:
        raise Refused(
            f"work order {work_order.work_order_id} cannot move from {work_order.state} to "
            f"{data.state}"
        )
    order.work_order_to_change(data.work_order_id).state = data.state
    if data.state is WorkOrderState.CANCELED:
        _cancel_tasks(order, work_order)
    _refresh(order, data.work_order_id)
    return _NO_ACTOR


def _cancel_tasks(order: Order, work_order: WorkOrder) -> None:
    for task_id in work_order.task_ids:
        if not task_is_final(order.tasks[task_id].state):
            order.task_to_change(task_id).state = TaskState.CANCELED


def _create_task(record: OrderRecord, event: ev.TaskCreated) -> Actor:
    order = _require_order(record)
    data = event.data
    work_order = order.work_orders.get(data.work_order_id)
    if work_order is None:
        raise Missing(f"work order {data.work_order_id}")
    if work_order_is_final(work_order.state):
        raise Refused(f"work order {data.work_order_id} is {work_order.state}")
    if data.task_id in order.tasks:
        raise Refused(f"task {data.task_id} already exists")
    order.tasks[data.task_id] = Task(
        task_id=data.task_id, work_order_id=data.work_order_id, state=data.state
    )
    order.work_order_to_change(data.work_order_id).task_ids.append(data.task_id)
    _refresh(order, data.work_order_id)
    return _NO_ACTOR


def _known_task(order: Order, task_id: str) -> Task:
    task = order.tasks.get(task_id)
    if task is None:
        raise Missing(f"task {task_id}")
    return task


def _move_task(task: Task, state: TaskState) -> None:
    if state is not task.state and state not in TASK_MOVES[task.state]:
        raise Refused(f"task {task.task_id} cannot move from {task.state} to {state}")


def _update_task(record: OrderRecord, event: ev.TaskUpdated) -> Actor:
    order = _require_order(record)
    task = _known_task(order, event.data.task_id)
    _move_task(task, event.data.state)
    order.task_to_change(task.task_id).state = event.data.state
    _refresh(order, task.work_order_id)
    return _NO_ACTOR


def _raise_fallout(record: OrderRecord, event: ev.FalloutRaised) -> Actor:
    order = _require_order(record)
    data = event.data
    task = _known_task(order, data.task_id)
    if data.fallout_id in task.fallouts:
        raise Refused(f"fallout {data.fallout_id} already exists")
    _move_task(task, TaskState.ON_HOLD)
    task = order.task_to_change(data.task_id)
    task.fallouts[data.fallout_id] = Fallout(
        fallout_id=data.fallout_id,
        category=data.category,
        reason=data.reason,
        assigned_group=data.assigned_group,
    )
    task.state = TaskState.ON_HOLD
    _refresh(order, task.work_order_id)
    return _NO_ACTOR


def _open_fallout(order: Order, task_id: str, fallout_id: str) -> tuple[Task, Fallout]:
    """The task (the order's own copy) and its open fallout, to change."""
    fallout = _known_task(order, task_id).fallouts.get(fallout_id)
    if fallout is None:
        raise Refused(f"unknown fallout {fallout_id} on task {task_id}")
    if not fallout.open:
        raise Refused(f"fallout {fallout_id} is already resolved")
    task = order.task_to_change(task_id)
    return task, task.fallouts[fallout_id]


def _resolve_fallout(record: OrderRecord, event: ev.FalloutResolved) -> Actor:
    order = _require_order(record)
    task, fallout = _open_fallout(order, event.data.task_id, event.data.fallout_id)
    fallout.open = False
    # The task stays on hold while another fallout on it is still open.
    if task.state is TaskState.ON_HOLD and not any(f.open for f in task.fallouts.values()):
        task.state = TaskState.RESOLVED
    _refresh(order, task.work_order_id)
    return _NO_ACTOR


def _reassign_fallout(record: OrderRecord, event: ev.FalloutReassigned) -> Actor:
    order = _require_order(record)
    _, fallout = _open_fallout(order, event.data.task_id, event.data.fallout_id)
    fallout.assigned_group = event.data.assigned_group
    return _NO_ACTOR


# --- order lifecycle commands --------------------------------------------------------------------

_O = OrderState
_WORKABLE: Final = frozenset({_O.NEW, _O.ACKNOWLEDGED, _O.IN_PROGRESS})
"""Where hold, information request and revision may start: submitted, not final, not overlaid."""


def _enter_overlay(order: Order, overlay: OrderState) -> None:
    order.held_states.append(order.state)
    order.state = overlay


def _leave_overlay(order: Order) -> None:
    order.state = order.held_states.pop()
    _refresh(order)  # the rollup the overlay held takes over again


def _cancel_all(order: Order) -> None:
    # Replacing a value (by `work_order_to_change`) does not disturb the iteration.
    for work_order_id, work_order in order.work_orders.items():
        if not work_order_is_final(work_order.state):
            order.work_order_to_change(work_order_id).state = WorkOrderState.CANCELED
            _cancel_tasks(order, work_order)


def _approve_cancellation(order: Order) -> None:
    # Work orders not yet started are canceled at once; started ones are asked to wind down.
    for work_order_id, work_order in order.work_orders.items():
        state_class = WORK_ORDER_CLASS[work_order.state]
        if state_class is StateClass.NOT_STARTED:
            order.work_order_to_change(work_order_id).state = WorkOrderState.CANCELED
            _cancel_tasks(order, work_order)
        elif state_class in (StateClass.ACTIVE, StateClass.BLOCKED):
            winding_down = order.work_order_to_change(work_order_id)
            winding_down.state = WorkOrderState.CANCELLATION_IN_PROGRESS
    order.held_states.clear()
    order.state = _O.CANCELLATION_IN_PROGRESS
    _refresh(order)


@dataclass(frozen=True, slots=True)
class Command:
    """One order lifecycle command: the states it may be given in, and what it does."""

    allowed_from: frozenset[OrderState]
    act: Callable[[Order], None]


def _to(state: OrderState) -> Callable[[Order], None]:
    def move(order: Order) -> None:
        order.state = state
        _refresh(order)

    return move


def _overlay(state: OrderState) -> Callable[[Order], None]:
    return lambda order: _enter_overlay(order, state)


def _reject(order: Order) -> None:
    _cancel_all(order)
    order.state = _O.REJECTED
    _refresh(order)


def _cancel(order: Order) -> None:
    _cancel_all(order)
    order.held_states.clear()
    order.state = _O.CANCELED
    _refresh(order)


_NON_FINAL: Final = frozenset(state for state in OrderState if not order_is_final(state))

COMMANDS: Final[dict[str, Command]] = {
    "order.submitted": Command(frozenset({_O.DRAFT}), _to(_O.NEW)),
    "order.approved": Command(frozenset({_O.NEW}), _to(_O.ACKNOWLEDGED)),
    "order.rejected": Command(frozenset({_O.NEW}), _reject),
    "order.hold.requested": Command(_WORKABLE, _overlay(_O.ON_HOLD)),
    "order.resumed": Command(frozenset({_O.ON_HOLD}), _leave_overlay),
    "order.information.requested": Command(_WORKABLE, _overlay(_O.AWAITING_INFORMATION)),
    "order.information.received": Command(frozenset({_O.AWAITING_INFORMATION}), _leave_overlay),
    "order.revision.started": Command(_WORKABLE, _overlay(_O.REVISION_IN_PROGRESS)),
    "order.revision.completed": Command(frozenset({_O.REVISION_IN_PROGRESS}), _leave_overlay),
    # A cancellation may be requested over another overlay (an order on hold); denial restores it.
    "order.cancellation.requested": Command(
        _NON_FINAL - {_O.DRAFT, _O.ASSESSING_CANCELLATION, _O.CANCELLATION_IN_PROGRESS},
        _overlay(_O.ASSESSING_CANCELLATION),
    ),
    "order.cancellation.approved": Command(
        frozenset({_O.ASSESSING_CANCELLATION}), _approve_cancellation
    ),
    "order.cancellation.denied": Command(frozenset({_O.ASSESSING_CANCELLATION}), _leave_overlay),
    "order.canceled": Command(_NON_FINAL, _cancel),
}
"""Every lifecycle command but delete and manual state change, as data: one place to audit them."""


def _command(record: OrderRecord, event: ev.OrderCommand) -> Actor:
    order = _require_order(record)
    actor = (event.data.actor, event.data.reason)
    if event.type == "order.deleted":
        if order.state is not _O.DRAFT:
            raise Refused(f"only a draft order may be deleted; the order is {order.state}")
        record.deleted = True
        return actor
    if event.type == "order.canceled" and order.profile is Profile.PSA and order.state is _O.DRAFT:
        # Seed 000: a draft service order cannot be canceled; it may be deleted instead.
        raise Refused("a draft order cannot be canceled in the psa profile; delete it instead")
    command = COMMANDS[event.type]
    if order.state not in command.allowed_from:
        raise Refused(f"{event.type} is not allowed when the order is {order.state}")
    command.act(order)
    return actor


def _set_state(record: OrderRecord, event: ev.OrderStateSet) -> Actor:
    """PSA: "you can change the status manually at any time", to any non-final state."""
    order = _require_order(record)
    target = event.data.state
    if order_is_final(order.state):
        raise Refused(f"the order is {order.state}, a final state: it never reopens")
    if order_is_final(target):
        raise Refused(f"{target} is final: reach it by its command or by the work orders")
    if target is _O.SCHEDULED:
        raise Refused("scheduled is a line item state")
    if target in ORDER_OVERLAYS:
        if order.state not in ORDER_OVERLAYS:
            order.held_states.append(order.state)
    else:
        order.held_states.clear()
    order.state = target
    # Line items without progress follow the order's lifecycle; the order keeps the state given.
    _refresh_line_items(order)
    return event.data.actor, event.data.reason


def _handle(record: OrderRecord, event: ev.OrderEvent, default_profile: Profile) -> Actor:
    """Dispatch on the event's type; every handler refuses before it changes anything."""
    match event:
        case ev.OrderCreated():
            return _create_order(record, event, default_profile)
        case ev.LineItemAdded():
            return _add_line_item_event(record, event)
        case ev.LineItemRemoved():
            return _remove_line_item(record, event)
        case ev.OrderCommand():
            return _command(record, event)
        case ev.OrderStateSet():
            return _set_state(record, event)
        case ev.WorkOrderCreated():
            return _create_work_order(record, event)
        case ev.WorkOrderUpdated():
            return _update_work_order(record, event)
        case ev.TaskCreated():
            return _create_task(record, event)
        case ev.TaskUpdated():
            return _update_task(record, event)
        case ev.FalloutRaised():
            return _raise_fallout(record, event)
        case ev.FalloutResolved():
            return _resolve_fallout(record, event)
        # The cases are exhaustive over the OrderEvent union (mypy rejects the missing return
        # otherwise), so falling out of the last one cannot happen.
        case ev.FalloutReassigned():  # pragma: no branch
            return _reassign_fallout(record, event)


# --- recomputing parents -------------------------------------------------------------------------


def _refresh(order: Order, work_order_id: str | None = None) -> None:
    """Re-derive the parents from the current children: every work order, line item and the
    order; or, after an event about one work order (or one of its tasks), that work order, its
    line item and the order, and every line item only if the order's state moved."""
    if work_order_id is None:
        work_orders = list(order.work_orders.values())
    else:
        work_orders = [order.work_orders[work_order_id]]
    for work_order in work_orders:
        _refresh_work_order(order, work_order)
    # The order first: it rolls up from the work orders alone, and a line item without progress
    # follows the order's new state (a final one included). States are assigned only when they
    # move: assigning a pydantic model's attribute is slow.
    state = _order_state(order)
    moved = state is not order.state
    if moved:
        order.state = state
    if work_order_id is None or moved:
        _refresh_line_items(order)
    else:
        _refresh_line_item(order, order.line_items[work_orders[0].line_item_id])


def _refresh_line_items(order: Order) -> None:
    for line_item in order.line_items.values():
        _refresh_line_item(order, line_item)


def _refresh_line_item(order: Order, line_item: LineItem) -> None:
    state = _line_item_state(order, line_item)
    if state is not line_item.state:
        order.line_item_to_change(line_item.line_item_id).state = state


def _refresh_work_order(order: Order, work_order: WorkOrder) -> None:
    if work_order_is_final(work_order.state) or not work_order.task_ids:
        return
    derived = work_order_from_tasks([order.tasks[task_id].state for task_id in work_order.task_ids])
    if derived is None or derived is work_order.state:
        return
    if work_order.state is WorkOrderState.CANCELLATION_IN_PROGRESS and not work_order_is_final(
        derived
    ):
        return  # it stays there until every task has ended
    # Decision: a derived state the work order cannot legally move to (back to scheduled after it
    # was reported in progress) leaves it where it is.
    if derived in WORK_ORDER_MOVES[work_order.state]:
        order.work_order_to_change(work_order.work_order_id).state = derived


def _work_order_states(order: Order, work_order_ids: Iterable[str]) -> list[WorkOrderState]:
    return [order.work_orders[work_order_id].state for work_order_id in work_order_ids]


def _has_tasks(order: Order, work_order_ids: Iterable[str]) -> bool:
    return any(order.work_orders[work_order_id].task_ids for work_order_id in work_order_ids)


def _order_state(order: Order) -> OrderState:
    # Final states are absorbing; overlays hold the rollup; a draft is still being captured, so its
    # children are recorded but it leaves draft only when submitted (then the rollup applies).
    if order_is_final(order.state) or order.state in ORDER_OVERLAYS or order.state is _O.DRAFT:
        return order.state
    opinion = parent_from_work_orders(
        order.profile,
        [work_order.state for work_order in order.work_orders.values()],
        has_tasks=bool(order.tasks),
    )
    if order.state is _O.CANCELLATION_IN_PROGRESS:
        # It ends when every work order is final: then the rollup decides canceled or completed.
        if opinion is not None and order_is_final(opinion):
            return opinion
        return _O.CANCELED if not order.work_orders else order.state
    return order.state if opinion is None else opinion


def _line_item_state(order: Order, line_item: LineItem) -> OrderState:
    """Line items roll up from their own work orders like the order; without fulfillment progress
    they follow the order's lifecycle (draft, new, acknowledged, rejected, final)."""
    if order_is_final(line_item.state):
        return line_item.state
    if order.state is _O.DRAFT:
        return _O.DRAFT
    opinion = parent_from_work_orders(
        order.profile,
        _work_order_states(order, line_item.work_order_ids),
        has_tasks=_has_tasks(order, line_item.work_order_ids),
    )
    if opinion is not None:
        return opinion
    if (
        order.state is _O.ACKNOWLEDGED
        and line_item.work_order_ids
        and all(
            order.work_orders[work_order_id].state is WorkOrderState.SCHEDULED
            for work_order_id in line_item.work_order_ids
        )
    ):
        return _O.SCHEDULED  # seed 001: validated and queued for fulfillment
    if order.state in (_O.DRAFT, _O.NEW, _O.ACKNOWLEDGED) or order_is_final(order.state):
        return order.state
    return line_item.state


# --- what to publish -----------------------------------------------------------------------------

EntityKind = Literal["task", "work_order", "line_item", "order"]


@dataclass(frozen=True, slots=True)
class States:
    """The states before an event of every entity it may change, per kind, to diff against after.

    An event about one work order or one of its tasks changes at most that work order's tasks, the
    work order and, by rollup, its line item, the order and (when the order's state moves) every
    line item (see `_refresh`): only those are kept, so such an event costs the size of its work
    order, not of the order. Any other event may change anything: every entity is kept.
    """

    work_order_id: str | None  # the one work order in question; None: every entity
    tasks: dict[str, TaskState]
    work_orders: dict[str, WorkOrderState]
    line_items: dict[str, OrderState]
    order: OrderState | None

    @classmethod
    def of(cls, order: Order | None, event: ev.OrderEvent) -> States:
        if order is None:
            return cls(None, {}, {}, {}, None)
        line_items = {li_id: line_item.state for li_id, line_item in order.line_items.items()}
        work_order_id = _work_order_in_question(order, event)
        if work_order_id is None:
            return cls(
                None,
                {task_id: task.state for task_id, task in order.tasks.items()},
                {wo_id: work_order.state for wo_id, work_order in order.work_orders.items()},
                line_items,
                order.state,
            )
        work_order = order.work_orders.get(work_order_id)
        if work_order is None:  # the event creates it (or names one not known yet: it is parked)
            return cls(work_order_id, {}, {}, line_items, order.state)
        return cls(
            work_order_id,
            {task_id: order.tasks[task_id].state for task_id in work_order.task_ids},
            {work_order_id: work_order.state},
            line_items,
            order.state,
        )


def _work_order_in_question(order: Order, event: ev.OrderEvent) -> str | None:
    """The work order an event about one work order or one of its tasks is about (maybe one it
    creates); None for any other event, and for one about a task not known yet (it is parked)."""
    data = event.data
    if isinstance(data, ev.WorkOrderCreatedData | ev.WorkOrderUpdatedData | ev.TaskCreatedData):
        return data.work_order_id
    if isinstance(
        data,
        ev.TaskUpdatedData
        | ev.FalloutRaisedData
        | ev.FalloutResolvedData
        | ev.FalloutReassignedData,
    ):
        task = order.tasks.get(data.task_id)
        return task.work_order_id if task is not None else None
    return None


class _Trusted(Generic[M]):
    """Builds one model type from values the rules already hold with their fields' types, without
    validating them again. Status changes are most of the output: this costs 40% less than a
    validation, where pydantic's `model_construct` costs twice as much. Fields are laid out in the
    model's order, the defaults filled in, as validation does, so the JSON is the same."""

    def __init__(self, model_type: type[M]) -> None:
        fields = model_type.model_fields
        # Defaults are shared between the models built, so they must be immutable.
        assert all(field.default_factory is None for field in fields.values())
        self._model_type = model_type
        self._defaults = {
            name: None if field.is_required() else field.default for name, field in fields.items()
        }
        self._keeps_extra = model_type.model_config.get("extra") == "allow"

    def __call__(self, fields: dict[str, Any]) -> M:
        model = object.__new__(self._model_type)
        values = self._defaults.copy()
        values.update(fields)
        object.__setattr__(model, "__dict__", values)
        object.__setattr__(model, "__pydantic_fields_set__", set(fields))
        object.__setattr__(model, "__pydantic_extra__", {} if self._keeps_extra else None)
        object.__setattr__(model, "__pydantic_private__", None)
        return model


@dataclass(frozen=True, slots=True)
class _ChangeEvent:
    """How a state change of one kind of entity is published."""

    event: _Trusted[out.StatusEvent]
    data: _Trusted[BaseModel]
    id_field: str | None  # the data field naming the entity; the order has only `order_id`
    labels: dict[str, out.StateLabels]


def _change_event(
    event: type[out.StatusEvent],
    data: type[BaseModel],
    id_field: str | None,
    labels: dict[S, Labels],
) -> _ChangeEvent:
    # One StateLabels per state, shared by every event: events are never changed once built.
    state_labels: dict[str, out.StateLabels] = {
        state: out.StateLabels(**names._asdict()) for state, names in labels.items()
    }
    return _ChangeEvent(_Trusted(event), _Trusted(data), id_field, state_labels)


_CHANGE_EVENTS: Final[dict[EntityKind, _ChangeEvent]] = {
    "task": _change_event(out.TaskStateChanged, out.TaskStateChangedData, "task_id", TASK_LABELS),
    "work_order": _change_event(
        out.WorkOrderStateChanged, out.WorkOrderStateChangedData, "work_order_id", WORK_ORDER_LABELS
    ),
    "line_item": _change_event(
        out.LineItemStateChanged, out.LineItemStateChangedData, "line_item_id", ORDER_LABELS
    ),
    "order": _change_event(out.OrderStateChanged, out.OrderStateChangedData, None, ORDER_LABELS),
}


def _changes(
    order: Order, before: States, cause: ev.OrderEvent, at: datetime, actor: Actor
) -> list[Emitted]:
    """One event per entity whose state changed, child before parent, each kind in the order's
    own order (a work order's task ids are in the order its tasks have in `order.tasks`: both are
    only ever appended to and removed from together)."""
    tasks: Mapping[str, Task]
    work_orders: Mapping[str, WorkOrder]
    if before.work_order_id is None:
        tasks, work_orders = order.tasks, order.work_orders
    else:
        work_order = order.work_orders[before.work_order_id]
        tasks = {task_id: order.tasks[task_id] for task_id in work_order.task_ids}
        work_orders = {work_order.work_order_id: work_order}
    emitted: list[Emitted] = []
    kinds: tuple[tuple[EntityKind, Mapping[str, Any], Mapping[str, StrEnum]], ...] = (
        ("task", tasks, before.tasks),
        ("work_order", work_orders, before.work_orders),
        ("line_item", order.line_items, before.line_items),
    )
    for kind, entities, previous_states in kinds:
        for entity_id, entity in entities.items():
            previous = previous_states.get(entity_id)
            if previous != entity.state:
                emitted.append(
                    _change(order, kind, entity_id, previous, entity.state, cause, at, actor)
                )
    if before.order != order.state:
        emitted.append(
            _change(order, "order", order.order_id, before.order, order.state, cause, at, actor)
        )
    return emitted


def _change(
    order: Order,
    kind: EntityKind,
    entity_id: str,
    previous: StrEnum | None,
    state: StrEnum,
    cause: ev.OrderEvent,
    at: datetime,
    actor: Actor,
) -> Emitted:
    change = _CHANGE_EVENTS[kind]
    data = {
        "order_id": order.order_id,
        "previous": previous,
        "state": state,
        "labels": change.labels[state],
        "caused_by": cause.id,
        "at": at,
        "actor": actor[0],
        "reason": actor[1],
    }
    if change.id_field is not None:
        data[change.id_field] = entity_id
    event = change.event(
        {
            "id": output_id(cause.id, kind, entity_id),
            "subject": entity_id,
            "time": at,
            "data": change.data(data),
        }
    )
    return Emitted(Stream.STATUS, order.order_id, event)


def _fallout_emitted(order: Order, cause: ev.OrderEvent, at: datetime) -> list[Emitted]:
    data = cause.data
    if not isinstance(
        data, ev.FalloutRaisedData | ev.FalloutResolvedData | ev.FalloutReassignedData
    ):
        return []
    fallout = order.tasks[data.task_id].fallouts[data.fallout_id]
    kind = {
        ev.FalloutRaisedData: "fallout.raised",
        ev.FalloutResolvedData: "fallout.resolved",
        ev.FalloutReassignedData: "fallout.reassigned",
    }[type(data)]
    event = out.FalloutEvent(
        id=output_id(cause.id, kind, data.fallout_id),
        type=kind,
        subject=data.fallout_id,
        time=at,
        data=out.FalloutData(
            order_id=order.order_id,
            task_id=data.task_id,
            fallout_id=data.fallout_id,
            category=fallout.category,
            reason=fallout.reason,
            assigned_group=fallout.assigned_group,
            resolution=data.resolution if isinstance(data, ev.FalloutResolvedData) else None,
            caused_by=cause.id,
            at=at,
        ),
    )
    return [Emitted(Stream.OPS, order.order_id, event)]


_SERVICE_OUTCOMES: Final[dict[OrderState, Literal["completed", "canceled"]]] = {
    _O.COMPLETED: "completed",
    _O.PARTIAL: "completed",  # something was delivered
    _O.CANCELED: "canceled",
    _O.REJECTED: "canceled",
    _O.FAILED: "canceled",
}


def _service_actions(
    order: Order,
    line_items: dict[str, LineItem],
    before: States,
    line_items_before: dict[str, LineItem],
    cause: ev.OrderEvent,
    at: datetime,
) -> list[Emitted]:
    """What each line item did to its service: an `add` creates it; reaching a final state
    completes or cancels the line item's action, and removing the line item (or deleting the
    order) cancels it (the service stage decides what that means for the service's status)."""
    emitted = []
    removed = [item for key, item in line_items_before.items() if key not in line_items]
    for line_item in [*line_items.values(), *removed]:
        if line_item.service_id is None:
            continue
        previous = before.line_items.get(line_item.line_item_id)
        outcome: Literal["created", "completed", "canceled"] | None
        if line_item in removed:
            outcome = "canceled"
        elif previous is None and line_item.action == "add":
            outcome = "created"
        elif previous != line_item.state:
            outcome = _SERVICE_OUTCOMES.get(line_item.state)
        else:
            outcome = None
        if outcome is None:
            continue
        data = ServiceActionData(
            service_id=line_item.service_id,
            action=line_item.action,
            outcome=outcome,
            order_id=order.order_id,
            line_item_id=line_item.line_item_id,
            account_id=order.account_id,
            product_id=line_item.product_id,
            location_id=line_item.location_id,
            term=line_item.term,
            caused_by=cause.id,
            at=at,
        )
        action = ServiceAction(
            id=output_id(cause.id, f"service.action.{outcome}", line_item.line_item_id),
            subject=line_item.service_id,
            time=at,
            data=data,
        )
        emitted.append(Emitted(Stream.SERVICE_ACTIONS, line_item.service_id, action))
    return emitted


def _rejected(order_id: str, cause: ev.OrderEvent, at: datetime, reason: str) -> Emitted:
    event = out.CommandRejected(
        id=output_id(cause.id, "command.rejected", order_id),
        subject=order_id,
        time=at,
        data=out.CommandRejectedData(
            order_id=order_id, command=cause.type, reason=reason, caused_by=cause.id, at=at
        ),
    )
    return Emitted(Stream.OPS, order_id, event)


def _deleted(order_id: str, cause: ev.OrderEvent, at: datetime) -> Emitted:
    assert isinstance(cause.data, ev.CommandData)
    event = out.OrderDeleted(
        id=output_id(cause.id, "order.deleted", order_id),
        subject=order_id,
        time=at,
        data=out.OrderDeletedData(
            order_id=order_id,
            actor=cause.data.actor,
            reason=cause.data.reason,
            caused_by=cause.id,
            at=at,
        ),
    )
    return Emitted(Stream.STATUS, order_id, event)
