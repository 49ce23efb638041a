"""Inbound events (CONTRACT.md "Inbound topics"): what upstream systems and billing publish."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import Field, StrictBool, StrictInt, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from schemas.envelope import Envelope, Id, Strict, Timestamp
from schemas.states import OrderState, Profile, TaskState, WorkOrderState

E = TypeVar("E")
MAX_PERIOD_DAYS = 36525
"""A century: the longest term period (see `schemas.envelope.LATEST`)."""


Action = Literal["add", "change", "suspend", "resume", "disconnect"]
WorkOrderKind = Literal["product", "service", "resource"]


class Term(Strict):
    end: Timestamp
    renewal: Literal["expires", "auto_renew"] = "expires"
    # Not in the v1 contract: how far an auto_renew term is extended; one year when absent.
    period_days: StrictInt = Field(default=365, gt=0, le=MAX_PERIOD_DAYS)


DueAt = Annotated[
    Timestamp | None,
    Field(
        description="When the entity should be final (TMF requestedCompletionDate): past it, "
        "not final, it is in jeopardy (overdue)."
    ),
]


class NewTask(Strict):
    task_id: Id
    state: TaskState = TaskState.OPEN
    due_at: DueAt = None


class NewWorkOrder(Strict):
    work_order_id: Id
    kind: WorkOrderKind = "service"
    state: WorkOrderState = WorkOrderState.DRAFT
    due_at: DueAt = None
    tasks: list[NewTask] = []


class NewLineItem(Strict):
    line_item_id: Id
    action: Action = "add"
    service_id: Id | None = None
    product_id: Id | None = None
    location_id: Id | None = None
    term: Term | None = None
    due_at: DueAt = None
    work_orders: list[NewWorkOrder] = []


class OrderCreatedData(Strict):
    order_id: Id
    profile: Profile | None = Field(default=None, description="Deployment default when absent.")
    state: Literal[OrderState.DRAFT, OrderState.NEW] = OrderState.DRAFT
    enrichment: StrictBool = Field(
        default=False, description="Submitting starts enrichment instead of making it new."
    )
    account_id: Id | None = None
    due_at: DueAt = None
    line_items: list[NewLineItem] = []


class LineItemAddedData(Strict):
    order_id: Id
    line_item: NewLineItem


class LineItemRemovedData(Strict):
    order_id: Id
    line_item_id: Id


class CommandData(Strict):
    order_id: Id
    actor: str | None = None
    reason: str | None = None


class StateSetData(CommandData):
    state: OrderState


class LineItemCommandData(CommandData):
    line_item_id: Id


class WorkOrderCreatedData(Strict):
    order_id: Id
    line_item_id: Id
    work_order_id: Id
    kind: WorkOrderKind = "service"
    state: WorkOrderState = WorkOrderState.DRAFT
    due_at: DueAt = None


# Not in the v1 contract: an update may move the due time (absent: it stays).
MovedDueAt = Annotated[
    Timestamp | None,
    Field(description="A new due time (absent: unchanged); a later one clears an overdue."),
]


class WorkOrderUpdatedData(Strict):
    order_id: Id
    work_order_id: Id
    state: WorkOrderState
    due_at: MovedDueAt = None


class TaskCreatedData(Strict):
    order_id: Id
    work_order_id: Id
    task_id: Id
    state: TaskState = TaskState.OPEN
    due_at: DueAt = None


class TaskUpdatedData(Strict):
    order_id: Id
    task_id: Id
    state: TaskState
    due_at: MovedDueAt = None


class FalloutRaisedData(Strict):
    order_id: Id
    task_id: Id
    fallout_id: Id
    category: str
    reason: str
    assigned_group: Id | None = None


class FalloutResolvedData(Strict):
    order_id: Id
    task_id: Id
    fallout_id: Id
    resolution: str | None = None


class FalloutReassignedData(Strict):
    order_id: Id
    task_id: Id
    fallout_id: Id
    assigned_group: Id


class ServiceData(Strict):
    service_id: Id
    reason: str | None = None


CommandType = Literal[
    "order.submitted",
    "order.approved",
    "order.rejected",
    "order.hold.requested",
    "order.resumed",
    "order.information.requested",
    "order.information.received",
    "order.revision.started",
    "order.revision.completed",
    "order.cancellation.requested",
    "order.cancellation.approved",
    "order.cancellation.denied",
    "order.canceled",
    "order.deleted",
    "order.enrichment.started",
    "order.enrichment.held",
    "order.enrichment.resumed",
    "order.enrichment.completed",
]

LineItemCommandType = Literal[
    "order.line_item.rejected",
    "order.line_item.hold.requested",
    "order.line_item.resumed",
    "order.line_item.cancellation.requested",
    "order.line_item.cancellation.approved",
    "order.line_item.cancellation.denied",
]


class OrderCreated(Envelope):
    type: Literal["order.created"]
    data: OrderCreatedData


class LineItemAdded(Envelope):
    type: Literal["order.line_item.added"]
    data: LineItemAddedData


class LineItemRemoved(Envelope):
    type: Literal["order.line_item.removed"]
    data: LineItemRemovedData


class OrderCommand(Envelope):
    type: CommandType
    data: CommandData


class LineItemCommand(Envelope):
    type: LineItemCommandType
    data: LineItemCommandData


class OrderStateSet(Envelope):
    type: Literal["order.state.set"]
    data: StateSetData


class WorkOrderCreated(Envelope):
    type: Literal["workorder.created"]
    data: WorkOrderCreatedData


class WorkOrderUpdated(Envelope):
    type: Literal["workorder.updated"]
    data: WorkOrderUpdatedData


class TaskCreated(Envelope):
    type: Literal["task.created"]
    data: TaskCreatedData


class TaskUpdated(Envelope):
    type: Literal["task.updated"]
    data: TaskUpdatedData


class FalloutRaised(Envelope):
    type: Literal["task.fallout.raised"]
    data: FalloutRaisedData


class FalloutResolved(Envelope):
    type: Literal["task.fallout.resolved"]
    data: FalloutResolvedData


class FalloutReassigned(Envelope):
    type: Literal["task.fallout.reassigned"]
    data: FalloutReassignedData


class NonPayEvent(Envelope):
    type: Literal["service.nonpay.suspended", "service.nonpay.restored", "service.nonpay.canceled"]
    data: ServiceData


OrderEvent = (
    OrderCreated
    | LineItemAdded
    | LineItemRemoved
    | OrderCommand
    | LineItemCommand
    | OrderStateSet
    | WorkOrderCreated
    | WorkOrderUpdated
    | TaskCreated
    | TaskUpdated
    | FalloutRaised
    | FalloutResolved
    | FalloutReassigned
)
"""Everything keyed by order id: the three fulfillment topics."""

OrderEventField = Annotated[OrderEvent, Field(discriminator="type")]
InboundEvent = Annotated[OrderEvent | NonPayEvent, Field(discriminator="type")]

inbound_event = TypeAdapter[OrderEvent | NonPayEvent](InboundEvent)
"""Validates one record's bytes into its event in a single pass (the `type` picks the model)."""


class InvalidEvent(ValueError):
    """A record that is not a valid order event; the message names each bad field."""


def validate(adapter: TypeAdapter[E], raw: bytes | str) -> E:
    """Validate one record's bytes, or say in one line what is wrong, naming each bad field."""
    if not raw:
        raise InvalidEvent("empty record: no CloudEvent")
    try:
        return adapter.validate_json(raw)
    except ValidationError as error:
        raise InvalidEvent("; ".join(_reason(issue) for issue in error.errors())) from None


def parse_order_event(raw: bytes | str) -> OrderEvent:
    event = validate(inbound_event, raw)
    if isinstance(event, NonPayEvent):
        raise InvalidEvent(f"{event.type} is a service event: it belongs on the billing topic")
    return event


def _reason(issue: ErrorDetails) -> str:
    if issue["type"] == "union_tag_invalid":
        return f"type: unknown event type {issue['ctx']['tag']!r}"
    return f"{'.'.join(str(part) for part in issue['loc']) or 'record'}: {issue['msg']}"
