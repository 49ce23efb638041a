"""Order lifecycle commands (DOMAIN.md "Commands"): where each may be given, what it does, and
that a refused one changes nothing and says why."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemas import inbound as ev
from tests.unit.rules.builders import (
    ORDER_ID,
    REACH,
    TWO_ITEMS,
    Events,
    Run,
    approved,
    commands,
    item,
    started,
    task,
    wo,
)
from worker.rules import COMMANDS
from worker.rules.states import ORDER_OVERLAYS, OrderState, order_is_final

_WORKABLE = {"new", "acknowledged", "in_progress"}
_OVERLAID = {"on_hold", "awaiting_information", "revision_in_progress"}
_ENRICHING = {"submitted", "enrichment_in_progress", "enrichment_on_hold"}
_NOT_FINAL = {state for state in REACH if not order_is_final(OrderState(state))}

# DOMAIN.md "Commands", written out independently of worker.rules.order.COMMANDS: each command's
# states of origin (among those REACH can produce) and the state it leads to from there. Every
# overlay in REACH stands over in_progress, so leaving one returns to in_progress.
EXPECTED: dict[str, tuple[set[str], str]] = {
    "order.submitted": ({"draft"}, "new"),  # REACH's draft was not created for enrichment
    "order.enrichment.started": ({"submitted"}, "enrichment_in_progress"),
    "order.enrichment.held": ({"enrichment_in_progress"}, "enrichment_on_hold"),
    "order.enrichment.resumed": ({"enrichment_on_hold"}, "enrichment_in_progress"),
    "order.enrichment.completed": ({"enrichment_in_progress"}, "new"),
    "order.approved": ({"new"}, "acknowledged"),
    "order.rejected": ({"new"}, "rejected"),
    "order.hold.requested": (_WORKABLE, "on_hold"),
    "order.resumed": ({"on_hold"}, "in_progress"),
    "order.information.requested": (_WORKABLE, "awaiting_information"),
    "order.information.received": ({"awaiting_information"}, "in_progress"),
    "order.revision.started": (_WORKABLE, "revision_in_progress"),
    "order.revision.completed": ({"revision_in_progress"}, "in_progress"),
    "order.cancellation.requested": (
        _ENRICHING | _WORKABLE | _OVERLAID,
        "assessing_cancellation",
    ),
    "order.cancellation.approved": ({"assessing_cancellation"}, "cancellation_in_progress"),
    "order.cancellation.denied": ({"assessing_cancellation"}, "in_progress"),
    "order.canceled": (_NOT_FINAL, "canceled"),
    "order.deleted": ({"draft"}, "deleted"),
}

CASES = [(command, state) for command in EXPECTED for state in REACH]


def _case_id(command: str, state: str) -> str:
    verdict = "applied" if state in EXPECTED[command][0] else "refused"
    return f"{command}-from-{state}-{verdict}"


def test_every_contract_command_is_covered_and_every_rule_entry_is_expected() -> None:
    assert set(COMMANDS) | {"order.deleted"} == set(EXPECTED)


@pytest.mark.parametrize(("command", "state"), CASES, ids=[_case_id(*case) for case in CASES])
def test_command_from_state(command: str, state: str) -> None:
    e, run = Events(), Run()
    run.send(*REACH[state](e))
    assert run.order.state == state
    snapshot = run.snapshot()
    allowed, target = EXPECTED[command]
    event = e.command(command, actor="agent-7", reason="ticket 42")
    sent = run.send(event)
    if state in allowed:
        assert sent.rejected == []
        if target == "deleted":
            assert run.record is not None
            assert run.record.deleted
            assert len(sent.of_type("order.deleted")) == 1
        else:
            assert sent.state(ORDER_ID) == target
            change = sent.changes[ORDER_ID]
            assert (change.previous, change.actor, change.reason) == (state, "agent-7", "ticket 42")
    else:
        (refusal,) = sent.rejected
        assert refusal.command == command
        assert state in refusal.reason
        assert refusal.caused_by == event.id
        assert sent.changes == {}
        assert run.snapshot() == snapshot


def test_a_refusal_names_the_command_and_the_state() -> None:
    e, run = Events(), Run()
    run.send(e.created())
    (refusal,) = run.send(e.command("order.approved")).rejected
    assert refusal.reason == "order.approved is not allowed when the order is draft"


def test_only_a_draft_may_be_deleted_and_the_refusal_says_so() -> None:
    e, run = Events(), Run()
    run.send(*approved()(e))
    (refusal,) = run.send(e.command("order.deleted")).rejected
    assert refusal.reason == "only a draft order may be deleted; the order is acknowledged"


LATER: dict[str, Callable[[Events], ev.OrderEvent]] = {
    "task-update": lambda e: e.task_updated("T1", "in_progress"),
    "command": lambda e: e.command("order.submitted"),
    "order-created-again": lambda e: e.created(*TWO_ITEMS),
}


@pytest.mark.parametrize("later", LATER.values(), ids=LATER.keys())
def test_every_event_after_deletion_is_refused(later: Callable[[Events], ev.OrderEvent]) -> None:
    e, run = Events(), Run()
    run.send(*REACH["draft"](e), e.command("order.deleted"))
    sent = run.send(later(e))
    assert [r.reason for r in sent.rejected] == ["the order was deleted"]
    assert sent.changes == {}


def test_events_parked_when_the_order_is_deleted_are_refused() -> None:
    e, run = Events(), Run()
    run.send(e.created(item("L1")), e.task_created("W9", "T9"))
    assert run.record is not None
    assert len(run.record.parked) == 1
    sent = run.send(e.command("order.deleted"))
    assert [r.command for r in sent.rejected] == ["task.created"]
    assert run.record.parked == []


# --- psa: a draft is deleted, never canceled ------------------------------------------------------


def test_psa_draft_cannot_be_canceled_while_a_standard_draft_can() -> None:
    e = Events()
    psa, standard = Run(), Run()
    psa.send(e.created(*TWO_ITEMS, profile="psa"))
    standard.send(e.created(*TWO_ITEMS))
    (refusal,) = psa.send(e.command("order.canceled")).rejected
    assert (
        refusal.reason == "a draft order cannot be canceled in the psa profile; delete it instead"
    )
    assert psa.order.state is OrderState.DRAFT
    assert standard.send(e.command("order.canceled")).state(ORDER_ID) == "canceled"


# --- overlays hold the rollup ---------------------------------------------------------------------

OVERLAYS = [
    ("order.hold.requested", "order.resumed"),
    ("order.information.requested", "order.information.received"),
    ("order.revision.started", "order.revision.completed"),
    ("order.cancellation.requested", "order.cancellation.denied"),
]
OVERLAY_IDS = [enter.removeprefix("order.") for enter, _ in OVERLAYS]


@pytest.mark.parametrize(("enter", "leave"), OVERLAYS, ids=OVERLAY_IDS)
def test_an_overlay_holds_the_order_while_children_finish_and_leaving_takes_the_rollup(
    enter: str, leave: str
) -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    overlay = run.send(e.command(enter)).state(ORDER_ID)
    sent = run.send(
        e.task_updated("T1", "closed_complete"), e.task_updated("T2", "closed_complete")
    )
    assert {key: change.state for key, change in sent.changes.items()} == {
        "T1": "closed_complete",
        "T2": "closed_complete",
        "W1": "closed_complete",
        "W2": "closed_complete",
        "L1": "completed",
        "L2": "completed",
    }
    assert run.order.state == overlay
    left = run.send(e.command(leave))
    assert (left.changes[ORDER_ID].previous, left.state(ORDER_ID)) == (overlay, "completed")


@pytest.mark.parametrize(("enter", "leave"), OVERLAYS, ids=OVERLAY_IDS)
def test_leaving_an_overlay_takes_the_rolled_up_state_not_the_one_it_was_entered_from(
    enter: str, leave: str
) -> None:
    e, run = Events(), Run()
    run.send(*approved(*TWO_ITEMS)(e), e.command(enter))
    assert ORDER_ID not in run.send(e.task_updated("T1", "in_progress")).changes
    assert run.send(e.command(leave)).state(ORDER_ID) == "in_progress"


def test_overlays_nest_and_unwind_innermost_first() -> None:
    e, run = Events(), Run()
    run.send(*REACH["on_hold"](e))
    assert run.send(e.command("order.cancellation.requested")).state(ORDER_ID) == (
        "assessing_cancellation"
    )
    assert run.order.held_states == ["in_progress", "on_hold"]
    assert run.send(e.command("order.cancellation.denied")).state(ORDER_ID) == "on_hold"
    assert run.send(e.command("order.resumed")).state(ORDER_ID) == "in_progress"
    assert run.order.held_states == []


# --- cancellation ---------------------------------------------------------------------------------

# W1 started (its task in progress), W2 not started with an open task, W3 on hold.
MIXED = (
    item("L1", wo("W1", task("T1")), wo("W2", task("T2"))),
    item("L2", wo("W3", task("T3"))),
)


def _approved_cancellation(run: Run, e: Events) -> dict[str, str]:
    run.send(
        *approved(*MIXED)(e),
        e.task_updated("T1", "in_progress"),
        e.task_updated("T3", "on_hold"),
        e.command("order.cancellation.requested"),
    )
    sent = run.send(e.command("order.cancellation.approved", actor="csm"))
    assert all(change.actor == "csm" for change in sent.changes.values())
    return {key: change.state for key, change in sent.changes.items()}


def test_approving_cancellation_cancels_unstarted_work_orders_with_their_tasks_at_once() -> None:
    e, run = Events(), Run()
    assert _approved_cancellation(run, e) == {
        "T2": "canceled",
        "W1": "cancellation_in_progress",
        "W2": "canceled",
        "W3": "cancellation_in_progress",
        "L1": "cancellation_in_progress",  # seed 001: the line items show it too
        "L2": "cancellation_in_progress",
        ORDER_ID: "cancellation_in_progress",
    }
    assert run.order.tasks["T1"].state == "in_progress"
    assert run.order.held_states == []


def test_a_work_order_being_canceled_stays_so_until_its_tasks_end() -> None:
    e, run = Events(), Run()
    _approved_cancellation(run, e)
    assert "W3" not in run.send(e.task_updated("T3", "in_progress")).changes
    assert run.send(e.task_updated("T3", "canceled")).state("W3") == "canceled"


@pytest.mark.parametrize(
    ("t1", "order"),
    [("canceled", "canceled"), ("closed_complete", "completed")],
    ids=["all-canceled-order-canceled", "one-completed-order-completed"],
)
def test_cancellation_ends_when_every_work_order_is_final_and_the_rollup_decides(
    t1: str, order: str
) -> None:
    e, run = Events(), Run()
    _approved_cancellation(run, e)
    assert ORDER_ID not in run.send(e.wo_updated("W3", "canceled")).changes
    sent = run.send(e.task_updated("T1", t1))
    assert sent.state("W1") == ("canceled" if t1 == "canceled" else "closed_complete")
    assert sent.state(ORDER_ID) == order


def test_the_owner_reporting_a_work_order_canceled_cancels_its_open_tasks() -> None:
    e, run = Events(), Run()
    _approved_cancellation(run, e)
    sent = run.send(e.wo_updated("W1", "canceled"))
    assert (sent.state("W1"), sent.state("T1")) == ("canceled", "canceled")


def test_approving_cancellation_of_an_order_without_work_orders_cancels_it() -> None:
    e, run = Events(), Run()
    run.send(*commands(approved(item("L1")), "order.cancellation.requested")(e))
    sent = run.send(e.command("order.cancellation.approved"))
    assert (sent.state("L1"), sent.state(ORDER_ID)) == ("canceled", "canceled")


def test_cancellation_leaves_already_final_work_orders_as_they_are() -> None:
    e, run = Events(), Run()
    run.send(
        *approved(*MIXED)(e),
        e.task_updated("T1", "closed_complete"),
        e.command("order.cancellation.requested"),
    )
    sent = run.send(e.command("order.cancellation.approved"))
    assert "W1" not in sent.changes
    assert sent.state(ORDER_ID) == "completed"  # W1 was delivered, W2 and W3 canceled


# --- manual state change --------------------------------------------------------------------------

SETTABLE = [s for s in OrderState if not order_is_final(s) and s is not OrderState.SCHEDULED]
SET_CASES = [(origin, target) for origin in REACH for target in OrderState]


def _set_id(origin: str, target: OrderState) -> str:
    ok = not order_is_final(OrderState(origin)) and target in SETTABLE
    return f"{origin}-to-{target}-{'applied' if ok else 'refused'}"


@pytest.mark.parametrize(("origin", "target"), SET_CASES, ids=[_set_id(*c) for c in SET_CASES])
def test_manual_state_change_to_any_non_final_state(origin: str, target: OrderState) -> None:
    e, run = Events(), Run()
    run.send(*REACH[origin](e))
    snapshot = run.snapshot()
    sent = run.send(e.state_set(target, actor="pm-anna", reason="reviewed"))
    if order_is_final(OrderState(origin)) or target not in SETTABLE:
        (refusal,) = sent.rejected
        assert refusal.command == "order.state.set"
        assert origin in refusal.reason or target in refusal.reason
        assert run.snapshot() == snapshot
        return
    assert sent.rejected == []
    assert run.order.state is target
    if origin == target:
        assert sent.changes == {}
        return
    change = sent.changes[ORDER_ID]
    assert (change.previous, change.state) == (origin, target)
    assert (change.actor, change.reason) == ("pm-anna", "reviewed")


@pytest.mark.parametrize(
    ("reason", "target"),
    [
        ("the order is completed, a final state: it never reopens", OrderState.IN_PROGRESS),
        ("canceled is final: reach it by its command or by the work orders", OrderState.CANCELED),
        ("scheduled is a line item state", OrderState.SCHEDULED),
    ],
    ids=["from-final", "to-final", "to-scheduled"],
)
def test_manual_state_change_refusals_say_why(reason: str, target: OrderState) -> None:
    e, run = Events(), Run()
    origin = "completed" if target is OrderState.IN_PROGRESS else "in_progress"
    run.send(*REACH[origin](e))
    assert [r.reason for r in run.send(e.state_set(target)).rejected] == [reason]


def test_a_manual_overlay_is_left_by_its_command_back_to_the_state_it_stood_over() -> None:
    e, run = Events(), Run()
    run.send(*REACH["acknowledged"](e), e.state_set("on_hold"), e.state_set("awaiting_information"))
    assert run.order.held_states == ["acknowledged"]
    assert run.send(e.command("order.information.received")).state(ORDER_ID) == "acknowledged"


def test_a_manual_change_out_of_an_overlay_forgets_what_it_stood_over() -> None:
    e, run = Events(), Run()
    run.send(*REACH["on_hold"](e), e.state_set("acknowledged"))
    assert run.order.held_states == []
    assert [r.command for r in run.send(e.command("order.resumed")).rejected] == ["order.resumed"]


@pytest.mark.parametrize(
    ("origin", "target"),
    [("draft", "new"), ("draft", "acknowledged"), ("new", "draft"), ("acknowledged", "new")],
)
def test_a_manual_lifecycle_change_carries_line_items_without_progress_along(
    origin: str, target: str
) -> None:
    """README decision: line items without fulfillment progress follow the order's lifecycle."""
    e, run = Events(), Run()
    run.send(*REACH[origin](e))
    sent = run.send(e.state_set(target, actor="pm-anna"))
    assert (sent.state("L1"), sent.state("L2"), sent.state(ORDER_ID)) == (target,) * 3
    assert sent.changes["L1"].actor == "pm-anna"


def test_a_manual_change_keeps_line_items_that_have_progress() -> None:
    e, run = Events(), Run()
    run.send(*REACH["in_progress"](e))
    sent = run.send(e.state_set("new"))
    assert set(sent.changes) == {ORDER_ID, "L2"}  # L1's work order is started; L2's is not
    assert run.order.line_items["L1"].state is OrderState.IN_PROGRESS


def test_every_overlay_state_is_reachable_by_its_command() -> None:
    reached = {state for state in REACH if OrderState(state) in ORDER_OVERLAYS}
    assert reached == set(ORDER_OVERLAYS)
