"""Stale updates (DOMAIN.md "Identity and order of updates"): `sequence` is the version of the
entity an event is about as its source counts it, so it is compared only with earlier updates of
the same entity from the same source; without one, `time` orders the updates of an entity."""

from __future__ import annotations

from typing import Final, Literal

from schemas import inbound as ev
from schemas import outbound as out
from worker.rules.emit import Cause, Emitted, Stream
from worker.rules.snapshot import Order, Task, Versioned, WorkOrder

_ORDER_LEVEL: Final = (
    ev.OrderCommand,
    ev.LineItemCommand,
    ev.OrderStateSet,
    ev.LineItemAdded,
    ev.LineItemRemoved,
)
"""Events whose `sequence` is the order's own version (order capture counts one per order)."""

# Tuples, not unions: `A | B` builds a new union at each call, and the checks run on every event.
_ABOUT_A_TASK: Final = (
    ev.TaskUpdatedData,
    ev.FalloutRaisedData,
    ev.FalloutResolvedData,
    ev.FalloutReassignedData,
    ev.TaskCreatedData,
)
_ABOUT_A_WORK_ORDER: Final = (ev.WorkOrderUpdatedData, ev.WorkOrderCreatedData)
_CREATIONS: Final = (ev.TaskCreated, ev.WorkOrderCreated, ev.OrderCreated)


def versioned(order: Order, event: ev.OrderEvent, *, to_change: bool = False) -> Versioned:
    """The entity whose source version the event carries (task, work order, else the order); with
    `to_change`, the order's own copy of it."""
    data = event.data
    if isinstance(data, _ABOUT_A_TASK):
        task = order.tasks.get(data.task_id)
        if task is not None:
            return order.task_to_change(data.task_id) if to_change else task
    if isinstance(data, _ABOUT_A_WORK_ORDER):
        work_order = order.work_orders.get(data.work_order_id)
        if work_order is not None:
            return order.work_order_to_change(data.work_order_id) if to_change else work_order
    return order


def stale(order: Order, event: ev.OrderEvent, cause: Cause) -> Emitted | None:
    """`update.stale` for an update older than what was applied to its entity, else None."""
    if isinstance(event, _CREATIONS):
        return None  # nothing applied yet that a creation could be older than
    entity = versioned(order, event)
    if entity is order and not isinstance(event, _ORDER_LEVEL):
        return None  # about a task or work order not known yet: parked, not judged by the order
    if not entity.is_stale(event.source, event.sequence, event.time):
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
        source=event.source,
        sequence=event.sequence,
        applied_sequence=entity.sequences.get(event.source),
        caused_by=event.id,
    )
    update = out.UpdateStale(
        id=cause.id_for("update.stale", entity_id), subject=entity_id, time=event.time, data=data
    )
    return Emitted(Stream.OPS, order.order_id, update, cause.emitted_at)
