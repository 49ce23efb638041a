"""The topics of the wire contract and their default names (CONTRACT.md).

Every name is configurable (`worker.settings` reads them as ORDER_STATUS_TOPICS__<FIELD>); the
defaults here are what the committed AsyncAPI document and the deployment files use.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
"""A local broker: the worker's default and the server of the committed AsyncAPI document."""

INBOUND_FAMILIES = {
    "order": "orders",
    "workorder": "work_orders",
    "task": "tasks",
    "service": "billing",
}
"""The inbound topic (its `Topics` field) of each event type family, the type's first part."""

TopicName = Annotated[str, Field(min_length=1)]


class Topics(BaseModel):
    orders: TopicName = Field(
        default="fulfillment.orders.v1",
        description="In: order capture and lifecycle commands, keyed by order id.",
    )
    work_orders: TopicName = Field(
        default="fulfillment.work-orders.v1",
        description="In: work-order updates, keyed by order id.",
    )
    tasks: TopicName = Field(
        default="fulfillment.tasks.v1",
        description="In: task updates and fallout, keyed by order id.",
    )
    billing: TopicName = Field(
        default="billing.services.v1",
        description="In: billing's non-pay events, keyed by service id.",
    )
    order_status: TopicName = Field(
        default="fulfillment.order-status.v1",
        description="Out: task, work-order, line-item and order state changes.",
    )
    service_status: TopicName = Field(
        default="fulfillment.service-status.v1",
        description="Out: service fulfillment status and activity, for billing.",
    )
    ops: TopicName = Field(
        default="fulfillment.ops.v1",
        description="Out: fallout, refused commands, stale updates and jeopardy.",
    )
    dead_letter: TopicName = Field(
        default="fulfillment.dead-letter.v1",
        description="Out: every record that could not be read or validated, as consumed.",
    )
    service_actions: TopicName = Field(
        default="fulfillment.service-actions.v1",
        description="Internal: the order stage to the service stage, keyed by service id; needs "
        "the billing topic's partition count.",
    )
    activity_inputs: TopicName = Field(
        default="fulfillment.activity-inputs.v1",
        description="Internal: the service stage to the activity stage, keyed by "
        "`<kind>:<owner id>`; any partition count.",
    )

    @property
    def inbound(self) -> tuple[str, str, str]:
        """The three fulfillment topics: keyed by order id, co-partitioned (one count)."""
        return (self.orders, self.work_orders, self.tasks)

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(self.model_dump().values())

    def for_event(self, event_type: str) -> str:
        """The inbound topic an upstream system publishes this event type on (CONTRACT.md)."""
        return str(getattr(self, inbound_field(event_type)))


def inbound_field(event_type: str) -> str:
    """The `Topics` field of the inbound topic that carries this event type."""
    family = event_type.split(".", 1)[0]
    if family not in INBOUND_FAMILIES:
        raise ValueError(f"no inbound topic carries events of type {event_type!r}")
    return INBOUND_FAMILIES[family]
