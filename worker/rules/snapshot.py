"""The current snapshot of one order: plain data, serialised as JSON into Redis by the shell."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, Field, PrivateAttr

from schemas.inbound import Action, OrderEventField, Term, WorkOrderKind
from worker.rules.states import OrderState, Profile, TaskState, WorkOrderState

M = TypeVar("M", bound=BaseModel)
# An entity of an order that `Order.clone` shares until it is changed: it copies its own containers.
E = TypeVar("E", "Task", "WorkOrder", "LineItem")


def copied(model: M, **changes: object) -> M:
    """A shallow copy with some fields replaced, without validation: what `model_copy(update=)`
    does, at a tenth of its cost (cloning a record is on the worker's hot path)."""
    clone = object.__new__(type(model))
    state = model.__dict__.copy()
    state.update(changes)
    private = model.__pydantic_private__
    object.__setattr__(clone, "__dict__", state)
    object.__setattr__(clone, "__pydantic_fields_set__", model.__pydantic_fields_set__.copy())
    object.__setattr__(clone, "__pydantic_extra__", None)
    object.__setattr__(clone, "__pydantic_private__", None if private is None else private.copy())
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

    def own_copy(self) -> Task:
        return copied(
            self, fallouts={key: copied(fallout) for key, fallout in self.fallouts.items()}
        )


class WorkOrder(Versioned):
    work_order_id: str
    line_item_id: str
    kind: WorkOrderKind
    state: WorkOrderState
    task_ids: list[str] = []

    def own_copy(self) -> WorkOrder:
        return copied(self, task_ids=list(self.task_ids))


class LineItem(BaseModel):
    line_item_id: str
    action: Action
    state: OrderState
    service_id: str | None = None
    product_id: str | None = None
    location_id: str | None = None
    term: Term | None = None
    work_order_ids: list[str] = []

    def own_copy(self) -> LineItem:
        return copied(self, work_order_ids=list(self.work_order_ids))


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

    # While `apply` changes a clone: the order it was cloned from. An entity the clone still shares
    # with it is copied before its first change (copy-on-write); None: every entity is its own.
    _source: Order | None = PrivateAttr(default=None)

    def clone(self) -> Order:
        """A copy whose containers are its own and whose entities are this order's until changed
        through the `*_to_change` accessors: an event changes 1-2 entities of 30-60."""
        clone = copied(
            self,
            held_states=list(self.held_states),
            line_items=dict(self.line_items),
            work_orders=dict(self.work_orders),
            tasks=dict(self.tasks),
        )
        clone._source = self
        return clone

    def forget_source(self) -> None:
        """End copy-on-write (the changes are done), so that the order does not keep its source
        alive: from now on both must be left unchanged, as they share entities."""
        self._source = None

    def _shared_source(self) -> Order | None:
        """`_source`, read without pydantic's `__getattr__`, which costs 30 times as much."""
        private = self.__pydantic_private__
        assert private is not None  # a model with private attributes always has them
        source: Order | None = private["_source"]
        return source

    def task_to_change(self, task_id: str) -> Task:
        """The task, this order's own copy (its fallouts are copied with it: few tasks have any)."""
        return self._own(self.tasks, "tasks", task_id)

    def work_order_to_change(self, work_order_id: str) -> WorkOrder:
        return self._own(self.work_orders, "work_orders", work_order_id)

    def line_item_to_change(self, line_item_id: str) -> LineItem:
        return self._own(self.line_items, "line_items", line_item_id)

    def _own(self, entities: dict[str, E], field: str, entity_id: str) -> E:
        """The entity, copied first if this order still shares it with its source."""
        entity = entities[entity_id]
        source = self._shared_source()
        if source is not None and getattr(source, field).get(entity_id) is entity:
            entity = entities[entity_id] = entity.own_copy()
        return entity


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
        """A copy the rules may change through the order's `*_to_change` accessors: its containers
        are copied, its entities copied on their first change (see `Order.clone`), its (frozen)
        events shared."""
        return copied(
            self,
            order=self.order.clone() if self.order is not None else None,
            applied=set(self.applied),
            parked=list(self.parked),
        )
