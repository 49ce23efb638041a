"""How each source system names every canonical state (DOMAIN.md tables and seeds 000, 001, 003).

Each label set is ServiceNow, Nextian, PSA, TMF. "-" marks a state the system does not have.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from worker.rules.states import OrderState, TaskState, WorkOrderState


class Labels(NamedTuple):
    servicenow: str
    nextian: str
    psa: str
    tmf: str


_O = OrderState
# Order and line item (seed 001, seed 003 Pending/In Progress/Completed/Canceled, seed 000, TMF622).
ORDER_LABELS: Final[dict[OrderState, Labels]] = {
    _O.DRAFT: Labels("Draft", "Pending", "Draft", "draft"),
    _O.SUBMITTED: Labels("Submitted", "Pending", "New", "acknowledged"),
    _O.ENRICHMENT_IN_PROGRESS: Labels("Enrichment in progress", "Pending", "New", "acknowledged"),
    _O.ENRICHMENT_ON_HOLD: Labels("Enrichment on hold", "Pending", "New", "held"),
    _O.NEW: Labels("New", "Pending", "New", "acknowledged"),
    _O.ACKNOWLEDGED: Labels("Acknowledged", "Pending", "Open", "acknowledged"),
    _O.SCHEDULED: Labels("Scheduled", "Pending", "Open", "acknowledged"),
    _O.REJECTED: Labels("Rejected", "-", "-", "rejected"),
    _O.IN_PROGRESS: Labels("In progress", "In Progress", "In Process", "inProgress"),
    _O.ON_HOLD: Labels("On hold", "In Progress", "In Process", "held"),
    _O.AWAITING_INFORMATION: Labels("Awaiting information", "In Progress", "In Process", "pending"),
    _O.REVISION_IN_PROGRESS: Labels(
        "Revision in progress", "In Progress", "In Process", "inProgress"
    ),
    _O.ASSESSING_CANCELLATION: Labels(
        "Assessing cancellation", "In Progress", "In Process", "assessingCancellation"
    ),
    _O.CANCELLATION_IN_PROGRESS: Labels(
        "Cancellation in progress", "In Progress", "In Process", "pendingCancellation"
    ),
    _O.COMPLETED: Labels("Completed", "Completed", "Closed", "completed"),
    _O.CANCELED: Labels("Canceled", "Canceled", "Canceled", "cancelled"),
    _O.PARTIAL: Labels("-", "-", "-", "partial"),
    _O.FAILED: Labels("-", "-", "-", "failed"),
}

_W = WorkOrderState
# Product/service/resource order (seed 001), Nextian work order (Pending = draft, qualified,
# scheduled), PSA resource request (Open = any non-final, Closed, Canceled), TMF641 service order.
WORK_ORDER_LABELS: Final[dict[WorkOrderState, Labels]] = {
    _W.DRAFT: Labels("Draft", "Pending", "Open", "acknowledged"),
    _W.QUALIFIED: Labels("Qualified", "Pending", "Open", "acknowledged"),
    _W.SCHEDULED: Labels("Scheduled", "Pending", "Open", "acknowledged"),
    _W.IN_PROGRESS: Labels("In progress", "In Progress", "Open", "inProgress"),
    _W.ON_HOLD: Labels("On hold", "In Progress", "Open", "held"),
    _W.CANCELLATION_IN_PROGRESS: Labels(
        "Cancellation in progress", "In Progress", "Open", "pendingCancellation"
    ),
    _W.CLOSED_COMPLETE: Labels("Closed complete", "Completed", "Closed", "completed"),
    _W.CANCELED: Labels("Canceled", "Canceled", "Canceled", "cancelled"),
    _W.FAILED: Labels("-", "-", "-", "failed"),
}

_T = TaskState
# Order task (seed 001), Nextian task, PSA assignment, TMF task-like states.
TASK_LABELS: Final[dict[TaskState, Labels]] = {
    _T.DRAFT: Labels("Draft", "Pending", "Draft", "acknowledged"),
    _T.OPEN: Labels("Open", "Pending", "Open", "acknowledged"),
    _T.SCHEDULED: Labels("Scheduled", "Pending", "Open", "acknowledged"),
    _T.IN_PROGRESS: Labels("In progress", "In Progress", "In Process", "inProgress"),
    _T.ON_HOLD: Labels("On hold", "In Progress", "In Process", "held"),
    _T.AWAITING_INFORMATION: Labels("Awaiting information", "In Progress", "In Process", "pending"),
    _T.RESOLVED: Labels("Resolved", "In Progress", "In Process", "inProgress"),
    _T.CLOSED_COMPLETE: Labels("Closed Complete", "Completed", "Closed", "completed"),
    _T.CANCELED: Labels("Canceled", "Canceled", "Canceled", "cancelled"),
}
