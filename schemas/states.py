"""The contract's state vocabulary: canonical states, snake_case on the wire (DOMAIN.md)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    AWAITING_INFORMATION = "awaiting_information"
    RESOLVED = "resolved"
    CLOSED_COMPLETE = "closed_complete"
    CANCELED = "canceled"


class WorkOrderState(StrEnum):
    DRAFT = "draft"
    QUALIFIED = "qualified"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    CANCELLATION_IN_PROGRESS = "cancellation_in_progress"
    CLOSED_COMPLETE = "closed_complete"
    CANCELED = "canceled"
    FAILED = "failed"  # tmf profile only


class OrderState(StrEnum):
    """States of an order and of a line item (a line item also has `scheduled`)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    ENRICHMENT_IN_PROGRESS = "enrichment_in_progress"
    ENRICHMENT_ON_HOLD = "enrichment_on_hold"
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    SCHEDULED = "scheduled"  # line items only
    REJECTED = "rejected"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    AWAITING_INFORMATION = "awaiting_information"
    REVISION_IN_PROGRESS = "revision_in_progress"
    ASSESSING_CANCELLATION = "assessing_cancellation"
    CANCELLATION_IN_PROGRESS = "cancellation_in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"
    PARTIAL = "partial"  # tmf profile only
    FAILED = "failed"  # tmf profile only


class ServiceState(StrEnum):
    NEW = "new"
    IN_SERVICE = "in_service"
    ORDER_CANCELED = "order_canceled"
    EXPIRED = "expired"
    CANCELED_BY_USER = "canceled_by_user"
    CANCELED_FOR_NON_PAY = "canceled_for_non_pay"
    SUSPENDED_FOR_NON_PAY = "suspended_for_non_pay"


class Profile(StrEnum):
    STANDARD = "standard"  # Nextian seed 003 and ServiceNow seed 001
    PSA = "psa"  # professional-services seed 000
    TMF = "tmf"  # TMF622/641 and MEF: adds failed and partial
