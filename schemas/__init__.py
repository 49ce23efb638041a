"""The wire contract v1 as pydantic models: the CloudEvents envelope and every event type."""

from schemas.envelope import Envelope
from schemas.inbound import InboundEvent, NonPayEvent, OrderEvent, inbound_event
from schemas.outbound import OpsEvent, OutboundEvent, ServiceStatusEvent, StatusEvent

__all__ = [
    "Envelope",
    "InboundEvent",
    "NonPayEvent",
    "OpsEvent",
    "OrderEvent",
    "OutboundEvent",
    "ServiceStatusEvent",
    "StatusEvent",
    "inbound_event",
]
