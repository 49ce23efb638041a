"""Outbound events (CONTRACT.md "Outbound topics"): what billing and operations subscribe to.

Every outbound id is deterministic (derived from the causing event's id), so a redelivered output is
recognisable downstream; every event names its cause in `data.caused_by`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from schemas.envelope import Produced, Strict
from schemas.states import OrderState, ServiceState, TaskState, WorkOrderState


class StateLabels(BaseModel):
    servicenow: str
    nextian: str
    psa: str
    tmf: str


class _Change(Strict):
    order_id: str
    labels: StateLabels
    caused_by: str
    at: AwareDatetime
    actor: str | None = None
    reason: str | None = None


class TaskStateChangedData(_Change):
    task_id: str
    previous: TaskState | None
    state: TaskState


class WorkOrderStateChangedData(_Change):
    work_order_id: str
    previous: WorkOrderState | None
    state: WorkOrderState


class LineItemStateChangedData(_Change):
    line_item_id: str
    previous: OrderState | None
    state: OrderState


class OrderStateChangedData(_Change):
    previous: OrderState | None
    state: OrderState


class OrderDeletedData(Strict):
    order_id: str
    actor: str | None = None
    reason: str | None = None
    caused_by: str
    at: AwareDatetime


class FalloutData(Strict):
    order_id: str
    task_id: str
    fallout_id: str
    category: str
    reason: str
    assigned_group: str | None
    resolution: str | None = None
    caused_by: str
    at: AwareDatetime


class CommandRejectedData(Strict):
    order_id: str | None
    service_id: str | None = None  # set for refused service events (billing's non-pay)
    command: str
    reason: str
    caused_by: str
    at: AwareDatetime | None = None


class UpdateStaleData(Strict):
    order_id: str
    entity: Literal["order", "work_order", "task"]
    id: str
    source: str = Field(description="The stale update's source: versions count per source.")
    sequence: int | None
    applied_sequence: int | None = Field(
        description="The newest sequence applied to the entity from the same source."
    )
    caused_by: str


JeopardyLevel = Literal["order", "line_item", "work_order", "task"]
JeopardyReason = Literal["overdue", "stalled", "fallout_open"]


class OpenFallout(Strict):
    task_id: str
    fallout_id: str
    category: str
    assigned_group: str | None
    raised_at: AwareDatetime | None = Field(description="When the fallout was raised.")


class JeopardyData(Strict):
    order_id: str
    entity: JeopardyLevel
    id: str = Field(description="The entity's id (the order's own id for an order).")
    reason: JeopardyReason = Field(
        description="overdue: not final past its due time; stalled: no state change of it or "
        "anything under it for the profile's limit; fallout_open: a fallout under it open for "
        "longer than the profile's limit."
    )
    state: str | None = Field(
        description="The entity's state at `at` (none: it was removed with its line item)."
    )
    due_at: AwareDatetime | None = Field(description="The entity's due time, if it has one.")
    since: AwareDatetime = Field(
        description="When the entity went into jeopardy for this reason: its due time, the end "
        "of the time allowed without progress, or of the time a fallout may stay open."
    )
    late_by_s: float = Field(
        description="Seconds from `since` to `at`: how far past the limit the entity is (raised) "
        "or was when the jeopardy ended (cleared)."
    )
    open_fallouts: list[OpenFallout] = Field(
        description="The fallouts open on the entity's tasks (its own, for a task) at `at`."
    )
    caused_by: str = Field(
        description="The input that ended it, else the id naming the episode (the timer)."
    )
    at: AwareDatetime = Field(description="The event time at which it was judged.")


class ServiceFulfillmentChangedData(Strict):
    service_id: str
    previous: ServiceState | None
    state: ServiceState
    active: bool
    tmf_state: str
    account_id: str | None
    product_id: str | None
    location_id: str | None
    order_id: str | None
    line_item_id: str | None
    effective_at: AwareDatetime
    term_end: AwareDatetime | None = None
    caused_by: str


class ServiceTermRenewedData(Strict):
    service_id: str
    previous_term_end: AwareDatetime
    term_end: AwareDatetime
    effective_at: AwareDatetime
    caused_by: str


class ServiceAttributesChangedData(Strict):
    """A `change` line item completed: the service keeps its status, its attributes changed."""

    service_id: str
    state: ServiceState
    product_id: str | None
    location_id: str | None
    previous_product_id: str | None = None
    previous_location_id: str | None = None
    term_end: AwareDatetime | None
    order_id: str
    line_item_id: str
    effective_at: AwareDatetime
    caused_by: str


class _Activity(Strict):
    active: bool
    effective_at: AwareDatetime
    caused_by: str


class AccountActivityChangedData(_Activity):
    account_id: str


class ProductActivityChangedData(_Activity):
    product_id: str


class LocationActivityChangedData(_Activity):
    location_id: str


class TaskStateChanged(Produced):
    type: Literal["task.state.changed"] = "task.state.changed"
    data: TaskStateChangedData


class WorkOrderStateChanged(Produced):
    type: Literal["workorder.state.changed"] = "workorder.state.changed"
    data: WorkOrderStateChangedData


class LineItemStateChanged(Produced):
    type: Literal["lineitem.state.changed"] = "lineitem.state.changed"
    data: LineItemStateChangedData


class OrderStateChanged(Produced):
    type: Literal["order.state.changed"] = "order.state.changed"
    data: OrderStateChangedData


class OrderDeleted(Produced):
    type: Literal["order.deleted"] = "order.deleted"
    data: OrderDeletedData


class FalloutEvent(Produced):
    type: Literal["fallout.raised", "fallout.resolved", "fallout.reassigned"]
    data: FalloutData


class CommandRejected(Produced):
    type: Literal["command.rejected"] = "command.rejected"
    data: CommandRejectedData


class UpdateStale(Produced):
    type: Literal["update.stale"] = "update.stale"
    data: UpdateStaleData


class JeopardyEvent(Produced):
    """Raised once when an entity goes into jeopardy for a reason, cleared once when that ends."""

    type: Literal["jeopardy.raised", "jeopardy.cleared"]
    data: JeopardyData


class ServiceFulfillmentChanged(Produced):
    type: Literal["service.fulfillment.changed"] = "service.fulfillment.changed"
    data: ServiceFulfillmentChangedData


class ServiceTermRenewed(Produced):
    type: Literal["service.term.renewed"] = "service.term.renewed"
    data: ServiceTermRenewedData


class ServiceAttributesChanged(Produced):
    type: Literal["service.attributes.changed"] = "service.attributes.changed"
    data: ServiceAttributesChangedData


class AccountActivityChanged(Produced):
    type: Literal["account.activity.changed"] = "account.activity.changed"
    data: AccountActivityChangedData


class ProductActivityChanged(Produced):
    type: Literal["product.activity.changed"] = "product.activity.changed"
    data: ProductActivityChangedData


class LocationActivityChanged(Produced):
    type: Literal["location.activity.changed"] = "location.activity.changed"
    data: LocationActivityChangedData


StatusEvent = (
    TaskStateChanged
    | WorkOrderStateChanged
    | LineItemStateChanged
    | OrderStateChanged
    | OrderDeleted
)
OpsEvent = FalloutEvent | CommandRejected | UpdateStale | JeopardyEvent
ServiceStatusEvent = (
    ServiceFulfillmentChanged
    | ServiceTermRenewed
    | ServiceAttributesChanged
    | AccountActivityChanged
    | ProductActivityChanged
    | LocationActivityChanged
)
OutboundEvent = StatusEvent | OpsEvent | ServiceStatusEvent
