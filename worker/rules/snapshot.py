"""The current snapshot of one order: plain data, serialised as JSON into Redis by the shell."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, Field

from schemas.inbound import Action, OrderEventField, Term, WorkOrderKind
from worker.rules.states import OrderState, Profile, TaskState, WorkOrderState

M = TypeVar("M", bound=BaseModel)


def copied(model: M, **changes: object) -> M:
    """A shallow copy with some fields replaced, without validation: what `model_copy(update=)`
    does, at a tenth of its cost (cloning a record is on the worker's hot path)."""
    clone = object.__new__(type(model))
    state = model.__dict__.copy()
    state.update(changes)
    object.__setattr__(clone, "__dict__", state)
    object.__setattr__(clone, "__pydantic_fields_set__", model.__pydantic_fields_set__.copy())
    object.__setattr__(clone, "__pydantic_extra__", None)
    object.__setattr__(clone, "__pydantic_private__", None)
    return clone


class Versioned(BaseModel):
    """The newest source version applied to an entity: the guard against stale updates."""

    sequence: int | None = None
    updated_at: AwareDatetime | None = None

    def is_stale(self, sequence: int | None, time: datetime | None) -> bool:
        if sequence is not None and self.sequence is not None:
            return sequence < self.sequence
        if sequence is None and self.sequence is None and time and self.updated_at:
            return time < self.updated_at
        return False

    def advance(self, sequence: int | None, time: datetime | None) -> None:
        if sequence is not None:
            self.sequence = sequence if self.sequence is None else max(self.sequence, sequence)
        if time is not None:
            self.updated_at = time if self.updated_at is None else max(self.updated_at, time)


class Fallout(BaseModel):
    fallout_id: str
    category: str
    reason: str
    assigned_group: str | None
    open: bool = True


class Task(Versioned):
    task_id: str
    work_order_id: str
    state: TaskState
    fallouts: dict[str, Fallout] = {}


class WorkOrder(Versioned):
    work_order_id: str
    line_item_id: str
    kind: WorkOrderKind
    state: WorkOrderState
    task_ids: list[str] = []


class LineItem(BaseModel):
    line_item_id: str
    action: Action
    state: OrderState
    service_id: str | None = None
    product_id: str | None = None
    location_id: str | None = None
    term: Term | None = None
    work_order_ids: list[str] = []


class Order(Versioned):
    order_id: str
    profile: Profile
    state: OrderState
    account_id: str | None = None
    # The states that overlays (on hold, awaiting information, ...) stand over, innermost last.
    held_states: list[OrderState] = []
    line_items: dict[str, LineItem] = {}
    work_orders: dict[str, WorkOrder] = {}
    tasks: dict[str, Task] = {}

    def clone(self) -> Order:
        return copied(
            self,
            held_states=list(self.held_states),
            line_items={
                key: copied(item, work_order_ids=list(item.work_order_ids))
                for key, item in self.line_items.items()
            },
            work_orders={
                key: copied(work_order, task_ids=list(work_order.task_ids))
                for key, work_order in self.work_orders.items()
            },
            # Most tasks never had a fallout: they get an empty dict without a comprehension.
            tasks={
                key: copied(
                    task,
                    fallouts={fid: copied(f) for fid, f in task.fallouts.items()}
                    if task.fallouts
                    else {},
                )
                for key, task in self.tasks.items()
            },
        )


class ParkedEvent(BaseModel):
    """An event naming an order or parent that does not exist yet, kept until it arrives."""

    event: OrderEventField
    received_at: AwareDatetime
    waiting_for: str = Field(description="What it waits for, e.g. `work order WO-1`.")


class OrderRecord(BaseModel):
    """Everything kept for one order id: the order (None until created), the ids of every event
    already applied (the deduplication set), and the events parked before the order existed."""

    order_id: str
    order: Order | None = None
    deleted: bool = False
    applied: set[str] = Field(default_factory=set)
    parked: list[ParkedEvent] = []

    def clone(self) -> OrderRecord:
        """A copy the rules may change freely: every mutable part is copied, the (frozen) events
        are shared. An order of 50 entities clones in a fraction of a deep copy's time."""
        return copied(
            self,
            order=self.order.clone() if self.order is not None else None,
            applied=set(self.applied),
            parked=list(self.parked),
        )
