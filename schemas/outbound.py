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
OpsEvent = FalloutEvent | CommandRejected | UpdateStale
ServiceStatusEvent = (
    ServiceFulfillmentChanged
    | ServiceTermRenewed
    | ServiceAttributesChanged
    | AccountActivityChanged
    | ProductActivityChanged
    | LocationActivityChanged
)
OutboundEvent = StatusEvent | OpsEvent | ServiceStatusEvent
