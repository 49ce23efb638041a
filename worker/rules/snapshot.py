"""The current snapshot of one order: plain data, serialised as JSON into Redis by the shell."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, Field, PrivateAttr

from schemas.inbound import Action, OrderEventField, Term, WorkOrderKind
from schemas.outbound import JeopardyLevel, JeopardyReason
from worker.rules.inputs import Origin
from worker.rules.states import LIFECYCLE_STATES, OrderState, Profile, TaskState, WorkOrderState

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=BaseModel, covariant=True)
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


class Trusted(Generic[T]):
    """Builds one model type from values the rules already hold with their fields' types, without
    validating them again, as `model_construct` does at a fraction of its cost. Status changes are
    most of the output: this costs 40% less than a validation, where `model_construct` costs twice
    as much. Fields are laid out in the
    model's order, the defaults filled in, as validation does, so the JSON is the same."""

    def __init__(self, model_type: type[T]) -> None:
        fields = model_type.model_fields
        # Defaults are shared between the models built, so they must be immutable.
        assert all(field.default_factory is None for field in fields.values())
        self._model_type = model_type
        self._defaults = {
            name: None if field.is_required() else field.default for name, field in fields.items()
        }
        self._keeps_extra = model_type.model_config.get("extra") == "allow"

    def __call__(self, fields: dict[str, Any]) -> T:
        model = object.__new__(self._model_type)
        values = self._defaults.copy()
        values.update(fields)
        object.__setattr__(model, "__dict__", values)
        object.__setattr__(model, "__pydantic_fields_set__", set(fields))
        object.__setattr__(model, "__pydantic_extra__", {} if self._keeps_extra else None)
        object.__setattr__(model, "__pydantic_private__", None)
        return model


class Versioned(BaseModel):
    """The newest version applied to an entity, the guard against stale updates: per source, the
    highest `sequence` applied (each source counts its own versions, DOMAIN.md "Identity and order
    of updates"); and the latest event `time`, which orders updates that carry no sequence."""

    sequences: dict[str, int] = {}
    updated_at: AwareDatetime | None = None

    def is_stale(self, source: str, sequence: int | None, time: datetime | None) -> bool:
        applied = self.sequences.get(source)
        if sequence is not None:
            return applied is not None and sequence < applied
        # A source that versions the entity by sequence is judged by sequence only.
        return (
            applied is None
            and time is not None
            and self.updated_at is not None
            and (time < self.updated_at)
        )

    def advance(self, source: str, sequence: int | None, time: datetime | None) -> None:
        if sequence is not None:
            applied = self.sequences.get(source)
            if applied is None or sequence > applied:
                # A new dict: the old one may be shared with the record this one was copied from.
                self.sequences = {**self.sequences, source: sequence}
        if time is not None and (self.updated_at is None or time > self.updated_at):
            self.updated_at = time


class Timed(BaseModel):
    """What jeopardy is judged by (`worker.rules.jeopardy`): the entity's due time, and when it or
    anything under it last changed state (None in records written before jeopardy was judged)."""

    due_at: AwareDatetime | None = None
    progressed_at: AwareDatetime | None = None


class Fallout(BaseModel):
    fallout_id: str
    category: str
    reason: str
    assigned_group: str | None
    open: bool = True
    resolution: str | None = None
    raised_at: AwareDatetime | None = None  # the moment it was applied


class Jeopardy(BaseModel):
    """An open jeopardy episode of an entity: raised, not cleared yet."""

    entity: JeopardyLevel
    id: str
    reason: JeopardyReason
    since: AwareDatetime = Field(description="When it went into jeopardy for this reason.")


class Task(Versioned, Timed):
    task_id: str
    work_order_id: str
    state: TaskState
    fallouts: dict[str, Fallout] = {}

    def own_copy(self) -> Task:
        return copied(
            self, fallouts={key: copied(fallout) for key, fallout in self.fallouts.items()}
        )


class WorkOrder(Versioned, Timed):
    work_order_id: str
    line_item_id: str
    kind: WorkOrderKind
    state: WorkOrderState
    task_ids: list[str] = []

    def own_copy(self) -> WorkOrder:
        return copied(self, task_ids=list(self.task_ids))


class LineItem(Timed):
    line_item_id: str
    action: Action
    state: OrderState
    service_id: str | None = None
    product_id: str | None = None
    location_id: str | None = None
    term: Term | None = None
    work_order_ids: list[str] = []
    # Its own overlays (line-item hold and cancellation), innermost last; its `state` is what it
    # shows, derived from these, its work orders and the order (see `derive.line_item_state`).
    overlays: list[OrderState] = []

    def own_copy(self) -> LineItem:
        return copied(self, work_order_ids=list(self.work_order_ids), overlays=list(self.overlays))


class Order(Versioned, Timed):
    order_id: str
    profile: Profile
    state: OrderState
    account_id: str | None = None
    enrichment: bool = False  # submitting starts enrichment (seed 001) instead of making it new
    # The latest of its lifecycle states (draft ... acknowledged) it was in, which line items
    # without fulfillment progress show.
    lifecycle: OrderState = OrderState.DRAFT
    # The states that overlays (on hold, awaiting information, ...) stand over, innermost last.
    held_states: list[OrderState] = []
    line_items: dict[str, LineItem] = {}
    work_orders: dict[str, WorkOrder] = {}
    tasks: dict[str, Task] = {}
    # Open jeopardy episodes by `jeopardy.Condition.key`; for each entity with a jeopardy ahead
    # (by `<level>:<id>`), when the earliest of them begins, and the earliest of those.
    jeopardy: dict[str, Jeopardy] = {}
    jeopardy_ahead: dict[str, AwareDatetime] = {}
    jeopardy_due: AwareDatetime | None = None

    # While `apply` changes a clone: the order it was cloned from. An entity the clone still shares
    # with it is copied before its first change (copy-on-write); None: every entity is its own.
    _source: Order | None = PrivateAttr(default=None)

    def move(self, state: OrderState) -> None:
        """Set the order's state, keeping `lifecycle` current."""
        self.state = state
        if state in LIFECYCLE_STATES:
            self.lifecycle = state

    def clone(self) -> Order:
        """A copy whose containers are its own and whose entities are this order's until changed
        through the `*_to_change` accessors: an event changes 1-2 entities of 30-60."""
        clone = copied(
            self,
            held_states=list(self.held_states),
            line_items=dict(self.line_items),
            work_orders=dict(self.work_orders),
            tasks=dict(self.tasks),
            jeopardy=dict(self.jeopardy),
            jeopardy_ahead=dict(self.jeopardy_ahead),
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
    origin: Origin | None = None

    @property
    def moment(self) -> datetime:
        """Its event time (else when it was received): its wait is counted from here."""
        return self.event.time or self.received_at


class OrderRecord(BaseModel):
    """Everything kept for one order id: the order (None until created), the identity (`source`
    and `id`, see `inputs.event_key`) of every event already applied (the deduplication set), and
    the events parked before their order or parent existed."""

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
