"""Every row of the seed documents' status tables, driven through `worker.rules.apply`.

Each case's id names the seed file (000 PSA, 001 ServiceNow states, 002 ServiceNow approval and
fallout, 003 Nextian order status) and the row. Seed 004 (service fulfillment) belongs to the
service rules and is tested with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from schemas import inbound as ev
from tests.unit.rules.builders import (
    ORDER_ID,
    TWO_ITEMS,
    TWO_WORK_ORDERS,
    Events,
    Run,
    Steps,
    approved,
    commands,
    event,
    for_enrichment,
    item,
    started,
    submitted,
    task,
    then,
    wo,
)
from worker.rules import COMMANDS, Profile
from worker.rules.labels import ORDER_LABELS
from worker.rules.states import OrderState, TaskState


@dataclass(frozen=True)
class Row:
    """One row of a seed table: after `steps`, the last step moves `entity` to `state`, which
    `system` calls `label`. With `changes=False` the last step must leave the order as it was."""

    id: str
    steps: Steps
    entity: str
    state: str
    label: str
    system: str
    profile: Profile = Profile.STANDARD
    changes: bool = True


def psa(id_: str, steps: Steps, entity: str, state: str, label: str) -> Row:
    return Row(f"000:{id_}", steps, entity, state, label, "psa", Profile.PSA)


def servicenow(seed: str, id_: str, steps: Steps, entity: str, state: str, label: str) -> Row:
    return Row(f"{seed}:{id_}", steps, entity, state, label, "servicenow")


def nextian(id_: str, steps: Steps, state: str, label: str, *, changes: bool = True) -> Row:
    return Row(f"003:{id_}", steps, ORDER_ID, state, label, "nextian", changes=changes)


PSA_TWO = submitted(*TWO_WORK_ORDERS, profile="psa")

SEED_000 = [
    psa(
        "order-row1-draft-save-for-later",
        lambda e: [e.created(profile="psa")],
        ORDER_ID,
        "draft",
        "Draft",
    ),
    psa("order-row2-new-save-and-submit", submitted(profile="psa"), ORDER_ID, "new", "New"),
    psa(
        "order-row3-open-manual-change",
        then(submitted(profile="psa"), lambda e: e.state_set("acknowledged", actor="staffing")),
        ORDER_ID,
        "acknowledged",
        "Open",
    ),
    *(
        psa(
            f"order-row4-in-process-assignment-created-{state}",
            then(PSA_TWO, event(Events.task_created, "W1", "T1", state)),
            ORDER_ID,
            "in_progress",
            "In Process",
        )
        for state in TaskState
    ),
    psa(
        "order-row5-canceled-all-resource-requests-canceled",
        then(
            PSA_TWO,
            lambda e: e.wo_updated("W1", "canceled"),
            lambda e: e.wo_updated("W2", "canceled"),
        ),
        ORDER_ID,
        "canceled",
        "Canceled",
    ),
    psa(
        "order-row6-closed-all-resource-requests-final",
        then(
            PSA_TWO,
            lambda e: e.wo_updated("W1", "canceled"),
            lambda e: e.wo_updated("W2", "closed_complete"),
        ),
        ORDER_ID,
        "completed",
        "Closed",
    ),
    psa(
        "resource-request-row1-open-on-creation",
        then(
            submitted(item("L1"), profile="psa"),
            lambda e: e.wo_created("L1", "W1", kind="resource"),
        ),
        "W1",
        "draft",
        "Open",
    ),
    *(
        psa(
            f"resource-request-row1-open-while-{state}",
            then(PSA_TWO, event(Events.wo_updated, "W1", state)),
            "W1",
            state,
            "Open",
        )
        for state in (
            "qualified",
            "scheduled",
            "in_progress",
            "on_hold",
            "cancellation_in_progress",
        )
    ),
    psa(
        "resource-request-row2-canceled",
        then(PSA_TWO, lambda e: e.wo_updated("W1", "canceled")),
        "W1",
        "canceled",
        "Canceled",
    ),
    psa(
        "resource-request-row3-closed",
        then(PSA_TWO, lambda e: e.wo_updated("W1", "closed_complete")),
        "W1",
        "closed_complete",
        "Closed",
    ),
]

ENRICHING = for_enrichment(item("L1"))
ENRICHMENT_STARTED = commands(ENRICHING, "order.enrichment.started")
ENRICHMENT_HELD = commands(ENRICHMENT_STARTED, "order.enrichment.held")

# Customer order states (seed 001, first table).
_ORDER_ROWS: list[tuple[str, Steps, str, str]] = [
    ("row1-draft-capture-stage", lambda e: [e.created()], "draft", "Draft"),
    ("row2-new-capture-complete", lambda e: [e.created(state="new")], "new", "New"),
    ("row2-new-at-once-when-submitted-without-enrichment", submitted(), "new", "New"),
    ("row3-submitted-by-agent", ENRICHING, "submitted", "Submitted"),
    (
        "row4-enrichment-in-progress",
        ENRICHMENT_STARTED,
        "enrichment_in_progress",
        "Enrichment in progress",
    ),
    ("row5-enrichment-on-hold", ENRICHMENT_HELD, "enrichment_on_hold", "Enrichment on hold"),
    (
        "row4-enrichment-resumed",
        commands(ENRICHMENT_HELD, "order.enrichment.resumed"),
        "enrichment_in_progress",
        "Enrichment in progress",
    ),
    (
        "row2-new-once-enrichment-completes",
        commands(ENRICHMENT_STARTED, "order.enrichment.completed"),
        "new",
        "New",
    ),
    ("row6-acknowledged-approved-by-manager", approved(), "acknowledged", "Acknowledged"),
    (
        "row7-rejected-by-manager",
        lambda e: [e.created(state="new"), e.command("order.rejected")],
        "rejected",
        "Rejected",
    ),
    ("row8-in-progress", started(*TWO_ITEMS), "in_progress", "In progress"),
    (
        "row9-revision-in-progress",
        then(started(*TWO_ITEMS), lambda e: e.command("order.revision.started")),
        "revision_in_progress",
        "Revision in progress",
    ),
    (
        "row10-awaiting-information",
        then(started(*TWO_ITEMS), lambda e: e.command("order.information.requested")),
        "awaiting_information",
        "Awaiting information",
    ),
    (
        "row11-on-hold",
        then(started(*TWO_ITEMS), lambda e: e.command("order.hold.requested")),
        "on_hold",
        "On hold",
    ),
    (
        "row12-canceled-by-manager",
        then(started(*TWO_ITEMS), lambda e: e.command("order.canceled")),
        "canceled",
        "Canceled",
    ),
    (
        "row13-assessing-cancellation",
        then(started(*TWO_ITEMS), lambda e: e.command("order.cancellation.requested")),
        "assessing_cancellation",
        "Assessing cancellation",
    ),
    (
        "row14-cancellation-in-progress-after-approval",
        then(
            started(*TWO_ITEMS),
            lambda e: e.command("order.cancellation.requested"),
            lambda e: e.command("order.cancellation.approved"),
        ),
        "cancellation_in_progress",
        "Cancellation in progress",
    ),
    (
        "row15-canceled-after-cancellation-approved-nothing-started",
        then(
            approved(*TWO_ITEMS),
            lambda e: e.command("order.cancellation.requested"),
            lambda e: e.command("order.cancellation.approved"),
        ),
        "canceled",
        "Canceled",
    ),
    (
        "row16-completed-all-line-items-complete",
        then(
            approved(*TWO_ITEMS),
            lambda e: e.task_updated("T1", "closed_complete"),
            lambda e: e.task_updated("T2", "closed_complete"),
        ),
        "completed",
        "Completed",
    ),
]

# Order line item states (seed 001, second table). The overlay rows are below, in
# test_seed_001_line_item_overlay_rows_are_held_at_the_order.
_LINE_ITEM_ROWS: list[tuple[str, Steps, str, str]] = [
    ("row1-draft-system-assigned", lambda e: [e.created(item("L1"))], "draft", "Draft"),
    ("row2-submitted", ENRICHING, "submitted", "Submitted"),
    (
        "row3-enrichment-in-progress",
        ENRICHMENT_STARTED,
        "enrichment_in_progress",
        "Enrichment in progress",
    ),
    ("row4-enrichment-on-hold", ENRICHMENT_HELD, "enrichment_on_hold", "Enrichment on hold"),
    ("row5-new-after-submission", submitted(item("L1")), "new", "New"),
    ("row5-new-capture-complete", lambda e: [e.created(item("L1"), state="new")], "new", "New"),
    ("row6-acknowledged", approved(item("L1")), "acknowledged", "Acknowledged"),
    (
        "row7-scheduled-queued-for-fulfillment",
        then(
            approved(*TWO_WORK_ORDERS),
            lambda e: e.wo_updated("W1", "scheduled"),
            lambda e: e.wo_updated("W2", "scheduled"),
        ),
        "scheduled",
        "Scheduled",
    ),
    (
        # ServiceNow decomposes an order into domain orders on approval: a rejected order has none.
        "row8-rejected",
        lambda e: [e.created(item("L1"), state="new"), e.command("order.rejected")],
        "rejected",
        "Rejected",
    ),
    ("row9-in-progress", started(*TWO_ITEMS), "in_progress", "In progress"),
    (
        "row15-canceled",
        then(started(*TWO_ITEMS), lambda e: e.command("order.canceled")),
        "canceled",
        "Canceled",
    ),
    (
        "row16-completed-with-its-domain-orders-and-tasks",
        then(approved(*TWO_ITEMS), lambda e: e.task_updated("T1", "closed_complete")),
        "completed",
        "Completed",
    ),
    # The order's overlays show on its line items (L1's work is in progress underneath).
    *(
        (f"row{row}-{name}-of-the-order", commands(started(*TWO_ITEMS), *given), state, label)
        for row, name, given, state, label in (
            (
                10,
                "revision-in-progress",
                ["order.revision.started"],
                "revision_in_progress",
                "Revision in progress",
            ),
            (
                11,
                "awaiting-information",
                ["order.information.requested"],
                "awaiting_information",
                "Awaiting information",
            ),
            (12, "on-hold", ["order.hold.requested"], "on_hold", "On hold"),
            (
                13,
                "assessing-cancellation",
                ["order.cancellation.requested"],
                "assessing_cancellation",
                "Assessing cancellation",
            ),
            (
                14,
                "cancellation-in-progress",
                ["order.cancellation.requested", "order.cancellation.approved"],
                "cancellation_in_progress",
                "Cancellation in progress",
            ),
        )
    ),
    # In-flight order change of one line item (L1; L2 carries on).
    (
        "row8-rejected-alone-before-approval",
        then(
            submitted(*TWO_ITEMS), lambda e: e.line_item_command("order.line_item.rejected", "L1")
        ),
        "rejected",
        "Rejected",
    ),
    (
        "row12-on-hold-by-its-own-hold",
        then(
            started(*TWO_ITEMS),
            lambda e: e.line_item_command("order.line_item.hold.requested", "L1"),
        ),
        "on_hold",
        "On hold",
    ),
    (
        "row13-assessing-its-own-cancellation",
        then(
            started(*TWO_ITEMS),
            lambda e: e.line_item_command("order.line_item.cancellation.requested", "L1"),
        ),
        "assessing_cancellation",
        "Assessing cancellation",
    ),
    (
        "row14-its-cancellation-approved-while-its-work-winds-down",
        then(
            started(*TWO_ITEMS),
            lambda e: e.line_item_command("order.line_item.cancellation.requested", "L1"),
            lambda e: e.line_item_command("order.line_item.cancellation.approved", "L1"),
        ),
        "cancellation_in_progress",
        "Cancellation in progress",
    ),
    (
        "row15-canceled-its-cancellation-approved-nothing-started",
        then(
            approved(*TWO_ITEMS),
            lambda e: e.line_item_command("order.line_item.cancellation.requested", "L1"),
            lambda e: e.line_item_command("order.line_item.cancellation.approved", "L1"),
        ),
        "canceled",
        "Canceled",
    ),
]

ONE_TASK = approved(item("L1", wo("W1", task("T1"))))
TWO_TASKS = approved(item("L1", wo("W1", task("T1"), task("T2"))))

# Product, service and resource order states (seed 001, third table).
_WORK_ORDER_ROWS: list[tuple[str, Steps, str, str]] = [
    *(
        (
            f"row1-draft-{kind}-order",
            then(approved(item("L1")), event(Events.wo_created, "L1", "W1", kind=kind)),
            "draft",
            "Draft",
        )
        for kind in ("product", "service", "resource")
    ),
    (
        "row2-qualified",
        then(approved(*TWO_WORK_ORDERS), lambda e: e.wo_updated("W1", "qualified")),
        "qualified",
        "Qualified",
    ),
    (
        "row3-in-progress-a-task-is",
        then(ONE_TASK, lambda e: e.task_updated("T1", "in_progress")),
        "in_progress",
        "In progress",
    ),
    (
        "row4-on-hold-a-task-is",
        then(ONE_TASK, lambda e: e.task_updated("T1", "on_hold")),
        "on_hold",
        "On hold",
    ),
    (
        "row5-scheduled-its-tasks-are",
        then(ONE_TASK, lambda e: e.task_updated("T1", "scheduled")),
        "scheduled",
        "Scheduled",
    ),
    (
        "row6-closed-complete-after-all-its-tasks",
        then(
            TWO_TASKS,
            lambda e: e.task_updated("T1", "closed_complete"),
            lambda e: e.task_updated("T2", "closed_complete"),
        ),
        "closed_complete",
        "Closed complete",
    ),
    (
        "row7-canceled",
        then(ONE_TASK, lambda e: e.wo_updated("W1", "canceled")),
        "canceled",
        "Canceled",
    ),
    (
        "row8-cancellation-in-progress",
        then(
            started(*TWO_ITEMS),
            lambda e: e.command("order.cancellation.requested"),
            lambda e: e.command("order.cancellation.approved"),
        ),
        "cancellation_in_progress",
        "Cancellation in progress",
    ),
]

# Order task states (seed 001, fourth table).
_TASK_ROWS: list[tuple[str, Steps, str, str]] = [
    *(
        (
            f"row{row}-{state}-on-creation",
            then(
                approved(item("L1", wo("W1"))),
                event(Events.task_created, "W1", "T1", state),
            ),
            state,
            label,
        )
        for row, state, label in ((9, "draft", "Draft"), (1, "open", "Open"))
    ),
    *(
        (
            f"row{row}-{state}",
            then(ONE_TASK, event(Events.task_updated, "T1", state)),
            state,
            label,
        )
        for row, state, label in (
            (2, "in_progress", "In progress"),
            (3, "on_hold", "On hold"),
            (4, "scheduled", "Scheduled"),
            (5, "awaiting_information", "Awaiting information"),
            (7, "closed_complete", "Closed Complete"),
            (8, "canceled", "Canceled"),
        )
    ),
    (
        "row6-resolved-after-on-hold",
        then(
            ONE_TASK,
            lambda e: e.task_updated("T1", "on_hold"),
            lambda e: e.task_updated("T1", "resolved"),
        ),
        "resolved",
        "Resolved",
    ),
]

SEED_001 = [
    *(servicenow("001", f"order-{i}", s, ORDER_ID, st, lb) for i, s, st, lb in _ORDER_ROWS),
    *(servicenow("001", f"lineitem-{i}", s, "L1", st, lb) for i, s, st, lb in _LINE_ITEM_ROWS),
    *(servicenow("001", f"domain-order-{i}", s, "W1", st, lb) for i, s, st, lb in _WORK_ORDER_ROWS),
    *(servicenow("001", f"task-{i}", s, "T1", st, lb) for i, s, st, lb in _TASK_ROWS),
]

FALLOUT = then(started(*TWO_ITEMS), lambda e: e.fallout_raised("T1", "F1"))

# Seed 002's table: approve or reject, fulfilment tasks marked complete, fallout.
SEED_002 = [
    servicenow(
        "002",
        "row1-approve-service-order",
        lambda e: [e.created(state="new"), e.command("order.approved")],
        ORDER_ID,
        "acknowledged",
        "Acknowledged",
    ),
    servicenow(
        "002",
        "row1-reject-service-order",
        lambda e: [e.created(state="new"), e.command("order.rejected")],
        ORDER_ID,
        "rejected",
        "Rejected",
    ),
    servicenow(
        "002",
        "row4-agents-mark-order-tasks-complete",
        then(
            started(*TWO_ITEMS),
            lambda e: e.task_updated("T1", "closed_complete"),
            lambda e: e.task_updated("T2", "closed_complete"),
        ),
        ORDER_ID,
        "completed",
        "Completed",
    ),
    servicenow("002", "row4-fallout-raised-task-on-hold", FALLOUT, "T1", "on_hold", "On hold"),
    servicenow(
        "002", "row4-fallout-raised-domain-order-on-hold", FALLOUT, "W1", "on_hold", "On hold"
    ),
    servicenow(
        "002",
        "row5-fallout-resolved-task-resolved",
        then(FALLOUT, lambda e: e.fallout_resolved("T1", "F1", "port re-patched")),
        "T1",
        "resolved",
        "Resolved",
    ),
]

# Seed 003's order status calculation table (Nextian labels), with its rule 1.
SEED_003 = [
    nextian("rule1-new-order-created-pending", lambda e: [e.created()], "draft", "Pending"),
    nextian("row1-empty-order-no-line-items", approved(), "acknowledged", "Pending"),
    nextian(
        "row2-line-items-without-work-orders",
        approved(item("L1"), item("L2")),
        "acknowledged",
        "Pending",
    ),
    *(
        nextian(
            f"row3-work-order-created-still-pending-{state}",
            then(approved(item("L1")), event(Events.wo_created, "L1", "W1", state)),
            "acknowledged",
            "Pending",
            changes=False,
        )
        for state in ("draft", "qualified", "scheduled")
    ),
    nextian(
        "row4-one-work-order-in-progress",
        then(approved(*TWO_WORK_ORDERS), lambda e: e.wo_updated("W1", "in_progress")),
        "in_progress",
        "In Progress",
    ),
    nextian(
        "row5-all-work-orders-canceled",
        then(
            approved(*TWO_WORK_ORDERS),
            lambda e: e.wo_updated("W1", "canceled"),
            lambda e: e.wo_updated("W2", "canceled"),
        ),
        "canceled",
        "Canceled",
    ),
    nextian(
        "row6-all-final-at-least-one-completed",
        then(
            approved(*TWO_WORK_ORDERS),
            lambda e: e.wo_updated("W1", "closed_complete"),
            lambda e: e.wo_updated("W2", "closed_complete"),
        ),
        "completed",
        "Completed",
    ),
    nextian(
        "row6-mix-of-completed-and-canceled-is-completed",
        then(
            approved(*TWO_WORK_ORDERS),
            lambda e: e.wo_updated("W1", "closed_complete"),
            lambda e: e.wo_updated("W2", "canceled"),
        ),
        "completed",
        "Completed",
    ),
]

ROWS = [*SEED_000, *SEED_001, *SEED_002, *SEED_003]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_seed_row(row: Row) -> None:
    run = Run(profile=row.profile)
    *setup, last = row.steps(Events())
    assert not run.send(*setup).rejected, "the row's setup must apply"
    before = run.states().get(row.entity)
    sent = run.send(last)
    assert not sent.rejected
    assert run.states()[row.entity] == row.state
    if row.changes:
        assert sent.state(row.entity) == row.state
        assert sent.label(row.entity, row.system) == row.label
    else:
        assert before == row.state
        assert row.entity not in sent.changes
        assert getattr(ORDER_LABELS[OrderState(row.state)], row.system) == row.label


def test_row_ids_are_unique() -> None:
    assert len({row.id for row in ROWS}) == len(ROWS)


# --- seed 000: the rows that are refusals ---------------------------------------------------------


def test_seed_000_a_draft_service_order_cannot_be_canceled_only_deleted() -> None:
    e, run = Events(), Run(profile=Profile.PSA)
    run.send(e.created(*TWO_WORK_ORDERS, profile="psa"))
    snapshot = run.snapshot()
    refused = run.send(e.command("order.canceled", actor="pm"))
    assert [r.command for r in refused.rejected] == ["order.canceled"]
    assert "delete it instead" in refused.rejected[0].reason
    assert run.snapshot() == snapshot
    deleted = run.send(e.command("order.deleted", actor="pm", reason="not needed"))
    assert [d.event.data.model_dump() for d in deleted.of_type("order.deleted")] == [
        {
            "order_id": ORDER_ID,
            "actor": "pm",
            "reason": "not needed",
            "caused_by": "evt-3",
            "at": deleted.emitted[0].event.time,
        }
    ]


def test_seed_000_canceling_resource_requests_of_a_draft_leaves_it_draft() -> None:
    """Decision: a draft is still being captured; it leaves draft only when submitted."""
    e, run = Events(), Run(profile=Profile.PSA)
    run.send(e.created(*TWO_WORK_ORDERS, profile="psa"))
    sent = run.send(e.wo_updated("W1", "canceled"), e.wo_updated("W2", "canceled"))
    assert ORDER_ID not in sent.changes
    assert run.order.state is OrderState.DRAFT


# --- seed 001: line item overlay rows -------------------------------------------------------------

# --- seed 002: rejection is final, fallout events -------------------------------------------------

AFTER_REJECTION = sorted(COMMANDS)


@pytest.mark.parametrize(
    "command",
    AFTER_REJECTION,
    ids=[f"002:row1-rejected-is-final-then-{c}" for c in AFTER_REJECTION],
)
def test_seed_002_a_rejected_order_refuses_every_later_command(command: str) -> None:
    e, run = Events(), Run()
    run.send(e.created(item("L1"), state="new"), e.command("order.rejected"))
    snapshot = run.snapshot()
    sent = run.send(e.command(command))
    assert [r.command for r in sent.rejected] == [command]
    assert "rejected" in sent.rejected[0].reason
    assert run.snapshot() == snapshot


def test_seed_002_fallout_raised_holds_the_task_and_tells_operations() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    sent = run.send(e.fallout_raised("T1", "F1", "inventory allocation failure", "no port", "noc"))
    (raised,) = sent.fallouts("fallout.raised")
    assert (raised.task_id, raised.fallout_id) == ("T1", "F1")
    assert (raised.category, raised.reason, raised.assigned_group) == (
        "inventory allocation failure",
        "no port",
        "noc",
    )
    assert sent.state("T1") == "on_hold"
    assert sent.state("W1") == "on_hold"
    assert ORDER_ID not in sent.changes  # the order stays in progress: W2 is still open


def test_seed_002_fallout_reassigned_names_the_new_group_and_changes_no_state() -> None:
    e, run = Events(), Run()
    run.send(*FALLOUT(e))
    sent = run.send(e.fallout_reassigned("T1", "F1", "field-services"))
    (reassigned,) = sent.fallouts("fallout.reassigned")
    assert reassigned.assigned_group == "field-services"
    assert reassigned.category == "provisioning failure"
    assert sent.changes == {}
    assert run.order.tasks["T1"].fallouts["F1"].assigned_group == "field-services"


def test_seed_002_fallout_resolved_resolves_the_task_and_tells_operations() -> None:
    e, run = Events(), Run()
    run.send(*FALLOUT(e))
    sent = run.send(e.fallout_resolved("T1", "F1", "port re-patched"))
    (resolved,) = sent.fallouts("fallout.resolved")
    assert (resolved.fallout_id, resolved.resolution) == ("F1", "port re-patched")
    assert sent.state("T1") == "resolved"
    assert sent.state("W1") == "in_progress"
    assert not run.order.tasks["T1"].fallouts["F1"].open


# --- seed 003: rules 2 and 3 ----------------------------------------------------------------------

CREATIONS: list[tuple[str, Callable[[Events], ev.OrderEvent]]] = [
    *(
        (f"work-order-{state}", event(Events.wo_created, "L1", "W9", state))
        for state in ("draft", "qualified", "scheduled")
    ),
    ("task-on-a-pending-work-order", lambda e: e.task_created("W1", "T9", "open")),
    (
        "line-item-creating-a-service",
        lambda e: e.item_added(item("L9", wo("W9"), service_id="S-9", product_id="internet")),
    ),
]


@pytest.mark.parametrize("lifecycle", ["new", "acknowledged"], ids=["in-new", "in-acknowledged"])
@pytest.mark.parametrize(
    "create", [c for _, c in CREATIONS], ids=[f"003:rule2-creating-{i}" for i, _ in CREATIONS]
)
def test_seed_003_creating_services_or_work_orders_does_not_change_the_status(
    create: Callable[[Events], ev.OrderEvent], lifecycle: str
) -> None:
    e, run = Events(), Run()
    steps = (
        submitted(item("L1", wo("W1"))) if lifecycle == "new" else approved(item("L1", wo("W1")))
    )
    run.send(*steps(e))
    sent = run.send(create(e))
    assert not sent.rejected
    assert sent.changes, "the creation is published"
    assert all(change.previous is None for change in sent.changes.values()), "only new entities"
    assert run.order.state == lifecycle


FINAL_ORDERS: dict[str, Steps] = {
    "completed": then(
        approved(*TWO_WORK_ORDERS),
        lambda e: e.wo_updated("W1", "closed_complete"),
        lambda e: e.wo_updated("W2", "canceled"),
    ),
    "canceled": then(approved(*TWO_WORK_ORDERS), lambda e: e.command("order.canceled")),
}
LINE_ITEM_EDITS: dict[str, Callable[[Events], ev.OrderEvent]] = {
    "added": lambda e: e.item_added(item("L9", wo("W9"))),
    "deleted": lambda e: e.item_removed("L1"),
}


@pytest.mark.parametrize(
    ("final", "edit"),
    [(final, edit) for final in FINAL_ORDERS for edit in LINE_ITEM_EDITS],
    ids=[
        f"003:rule3-no-line-item-{edit}-once-{final}"
        for final in FINAL_ORDERS
        for edit in LINE_ITEM_EDITS
    ],
)
def test_seed_003_no_line_item_added_or_deleted_once_final(final: str, edit: str) -> None:
    e, run = Events(), Run()
    run.send(*FINAL_ORDERS[final](e))
    assert run.order.state == final
    snapshot = run.snapshot()
    sent = run.send(LINE_ITEM_EDITS[edit](e))
    assert len(sent.rejected) == 1
    assert f"order is {final}" in sent.rejected[0].reason
    assert "no line item may be added or removed once final" in sent.rejected[0].reason
    assert sent.changes == {}
    assert run.snapshot() == snapshot


def test_seed_003_status_remains_pending_while_work_orders_are_created_but_not_started() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1"))(e))
    pending = [
        e.wo_created("L1", "W1"),
        e.wo_created("L1", "W2", "qualified"),
        e.task_created("W1", "T1"),
        e.task_updated("T1", "scheduled"),
        e.wo_updated("W2", "scheduled"),
    ]
    sent = run.send(*pending)
    assert ORDER_ID not in sent.changes
    assert ORDER_LABELS[run.order.state].nextian == "Pending"
    assert run.send(e.task_updated("T1", "in_progress")).label(ORDER_ID, "nextian") == "In Progress"


# --- where the worker differed from the seeds (issue 13), each named after its seed and sentence --


@pytest.mark.parametrize(
    ("ending", "line_item", "order"),
    [("closed_complete", "completed", "in_progress"), ("canceled", "canceled", "acknowledged")],
    ids=["other-completed", "other-canceled"],
)
def test_seed_003_line_items_added_but_work_orders_not_yet_created_is_pending(
    ending: str, line_item: str, order: str
) -> None:
    """Seed 003: "Line items added, but work orders not yet created: Pending"; "All line items
    created and all work orders final ... Completed". A line item without work orders holds the
    order open; the work order created for it later is taken, and the order ends with it."""
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1")), item("L2"))(e))
    sent = run.send(e.wo_updated("W1", ending))
    assert sent.state("L1") == line_item
    assert "L2" not in sent.changes
    assert run.order.line_items["L2"].state is OrderState.ACKNOWLEDGED
    assert run.order.state == order
    created = run.send(e.wo_created("L2", "W2"))
    assert created.rejected == []
    assert created.state("W2") == "draft"
    ended = run.send(e.wo_updated("W2", "closed_complete"))
    assert (ended.state("L2"), ended.state(ORDER_ID)) == ("completed", "completed")


@pytest.mark.parametrize(
    "cancel",
    [["order.canceled"], ["order.cancellation.requested", "order.cancellation.approved"]],
    ids=["direct-cancel", "approved-cancellation"],
)
def test_seed_003_some_work_orders_completed_and_some_canceled_is_completed(
    cancel: list[str],
) -> None:
    """Seed 003: "if some work orders have been completed and some canceled, the order status is
    Completed", whichever way the rest was canceled: a manager's direct cancel agrees with an
    approved cancellation."""
    e, run = Events(), Run()
    run.send(*approved(*TWO_ITEMS)(e), e.task_updated("T1", "closed_complete"))
    sent = run.send(*(e.command(command) for command in cancel))
    assert (sent.state("W2"), sent.state("L2")) == ("canceled", "canceled")
    assert run.order.line_items["L1"].state is OrderState.COMPLETED
    assert sent.state(ORDER_ID) == "completed"


def test_seed_003_an_order_canceled_before_any_work_completed_is_canceled() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1")), item("L2"))(e))
    sent = run.send(e.command("order.canceled"))
    assert (sent.state("L1"), sent.state("L2"), sent.state(ORDER_ID)) == ("canceled",) * 3


def test_seed_001_a_line_item_the_fulfillment_manager_rejected_is_rejected() -> None:
    """Seed 001: a rejected customer order's line items are Rejected (not canceled), whether or
    not they have domain orders; their domain orders and tasks are canceled."""
    e, run = Events(), Run()
    run.send(*submitted(item("L1", wo("W1", task("T1"))), item("L2"))(e))
    sent = run.send(e.command("order.rejected", actor="manager.ode"))
    assert {key: change.state for key, change in sent.changes.items()} == {
        "T1": "canceled",
        "W1": "canceled",
        "L1": "rejected",
        "L2": "rejected",
        ORDER_ID: "rejected",
    }
    assert sent.label("L1", "servicenow") == "Rejected"


def test_seed_001_rejecting_the_order_leaves_a_line_item_rejected_alone_as_it_was() -> None:
    e, run = Events(), Run()
    run.send(*submitted(*TWO_ITEMS)(e), e.line_item_command("order.line_item.rejected", "L1"))
    sent = run.send(e.command("order.rejected"))
    assert "L1" not in sent.changes
    assert (sent.state("L2"), sent.state(ORDER_ID)) == ("rejected", "rejected")


def test_seed_001_a_line_item_winding_down_shows_cancellation_in_progress_until_it_ends() -> None:
    """Seed 001: "When the cancellation request is approved, the customer order line item moves to
    this state"; it stays there while its started work winds down, then its work orders decide."""
    e, run = Events(), Run()
    run.send(*commands(started(*TWO_ITEMS), "order.cancellation.requested")(e))
    approved_ = run.send(e.command("order.cancellation.approved"))
    assert (approved_.state("L1"), approved_.state("L2")) == (
        "cancellation_in_progress",
        "canceled",
    )
    assert "L1" not in run.send(e.task_updated("T1", "on_hold")).changes
    ended = run.send(e.task_updated("T1", "canceled"))
    assert (ended.state("L1"), ended.state(ORDER_ID)) == ("canceled", "canceled")


def test_seed_001_a_line_item_is_scheduled_once_validated_and_queued_whatever_its_siblings_do() -> (
    None
):
    """Seed 001 Scheduled: "passed all validations and approvals and is queued for fulfillment",
    a fact about the line item's own work orders: a started sibling does not hide it."""
    e, run = Events(), Run()
    run.send(*approved(*TWO_ITEMS)(e), e.task_updated("T1", "in_progress"))
    assert run.order.state is OrderState.IN_PROGRESS
    sent = run.send(e.task_updated("T2", "scheduled"))
    assert (sent.state("W2"), sent.state("L2")) == ("scheduled", "scheduled")
    assert sent.label("L2", "servicenow") == "Scheduled"


def test_seed_001_a_line_item_is_not_scheduled_before_the_order_is_approved() -> None:
    e, run = Events(), Run()
    run.send(*submitted(*TWO_ITEMS)(e))
    sent = run.send(e.task_updated("T2", "scheduled"))
    assert sent.state("W2") == "scheduled"
    assert "L2" not in sent.changes  # new: not yet through its approvals
    assert run.send(e.command("order.approved")).state("L2") == "scheduled"


def test_seed_001_a_task_stays_on_hold_until_the_group_assigned_to_its_fallout_resolves_it() -> (
    None
):
    """Seed 001 On hold: "If you created a fallout record for it, the state of the order task
    changes to On Hold until the person or group that is assigned to the fallout record resolves
    the issue." An update that would move it on meanwhile is refused with the reason."""
    e, run = Events(), Run()
    run.send(*FALLOUT(e))
    snapshot = run.snapshot()
    for state in ("in_progress", "resolved", "awaiting_information"):
        sent = run.send(e.task_updated("T1", state))
        assert [r.reason for r in sent.rejected] == [
            "task T1 stays on hold while fallout F1 is open"
        ]
        assert run.snapshot() == snapshot
    assert run.send(e.task_updated("T1", "on_hold")).emitted == []  # it moves nothing
    assert run.send(e.fallout_resolved("T1", "F1")).state("T1") == "resolved"


@pytest.mark.parametrize("final", ["closed_complete", "canceled"])
def test_seed_001_a_task_on_hold_for_fallout_may_still_end_which_closes_its_fallouts(
    final: str,
) -> None:
    """DOMAIN.md "Fallout": a final update is applied and closes the task's open fallouts, each
    announced as resolved with resolution "task closed"."""
    e, run = Events(), Run()
    run.send(*FALLOUT(e), e.fallout_raised("T1", "F2"))
    sent = run.send(e.task_updated("T1", final))
    assert sent.state("T1") == final
    assert [(f.fallout_id, f.resolution) for f in sent.fallouts("fallout.resolved")] == [
        ("F1", "task closed"),
        ("F2", "task closed"),
    ]
    assert not any(fallout.open for fallout in run.order.tasks["T1"].fallouts.values())


def test_seed_002_canceling_the_order_closes_the_fallouts_of_the_tasks_it_cancels() -> None:
    e, run = Events(), Run()
    run.send(*FALLOUT(e))
    sent = run.send(e.command("order.canceled"))
    assert sent.state("T1") == "canceled"
    (closed,) = sent.fallouts("fallout.resolved")
    assert (closed.task_id, closed.fallout_id, closed.resolution) == ("T1", "F1", "task closed")
