"""Line-item commands (seed 001, ServiceNow in-flight order change; DOMAIN.md "Line-item
commands"): where each may be given, what it does to the line item and its work, and how the
order rolls up from the rest."""

from __future__ import annotations

import pytest

from tests.unit.rules.builders import (
    ORDER_ID,
    REACH,
    TWO_ITEMS,
    Events,
    Run,
    Steps,
    approved,
    for_enrichment,
    item,
    started,
    submitted,
    task,
    then,
    wo,
)
from worker.rules import LINE_ITEM_COMMANDS
from worker.rules.states import OrderState

REJECT = "order.line_item.rejected"
HOLD = "order.line_item.hold.requested"
RESUME = "order.line_item.resumed"
REQUEST = "order.line_item.cancellation.requested"
APPROVE = "order.line_item.cancellation.approved"
DENY = "order.line_item.cancellation.denied"


def on_l1(first: Steps, *types: str) -> Steps:
    """`first`'s events followed by line-item commands on L1."""
    return lambda e: [*first(e), *(e.line_item_command(type_, "L1") for type_ in types)]


# L1 has work order W1 with task T1; in the started situations T1 is in progress.
SITUATIONS: dict[str, Steps] = {
    "order-draft": REACH["draft"],
    "order-submitted": for_enrichment(*TWO_ITEMS),
    "order-new": REACH["new"],
    "order-acknowledged": REACH["acknowledged"],
    "order-in-progress": REACH["in_progress"],
    "order-on-hold": REACH["on_hold"],
    "order-cancellation-in-progress": REACH["cancellation_in_progress"],
    "order-completed": REACH["completed"],
    "held": on_l1(REACH["in_progress"], HOLD),
    "held-while-new": on_l1(REACH["new"], HOLD),
    "assessing": on_l1(REACH["in_progress"], REQUEST),
    "held-and-assessing": on_l1(REACH["in_progress"], HOLD, REQUEST),
    "winding-down": on_l1(REACH["in_progress"], REQUEST, APPROVE),
    "rejected": on_l1(REACH["new"], REJECT),
}

# Written out from DOMAIN.md independently of worker.rules.line_items.COMMANDS: in which
# situations each command applies, and the state L1 then shows.
EXPECTED: dict[str, dict[str, str]] = {
    REJECT: {"order-new": "rejected", "held-while-new": "rejected"},
    HOLD: {
        "order-new": "on_hold",
        "order-acknowledged": "on_hold",
        "order-in-progress": "on_hold",
        "order-on-hold": "on_hold",  # its own now, under the order's
    },
    RESUME: {"held": "in_progress", "held-while-new": "new"},
    REQUEST: {
        "order-new": "assessing_cancellation",
        "order-acknowledged": "assessing_cancellation",
        "order-in-progress": "assessing_cancellation",
        "order-on-hold": "assessing_cancellation",
        "held": "assessing_cancellation",
        "held-while-new": "assessing_cancellation",
    },
    APPROVE: {
        "assessing": "cancellation_in_progress",  # W1 started: it winds down
        "held-and-assessing": "cancellation_in_progress",
    },
    DENY: {"assessing": "in_progress", "held-and-assessing": "on_hold"},
}

CASES = [(command, situation) for command in EXPECTED for situation in SITUATIONS]


def _case_id(command: str, situation: str) -> str:
    verdict = "applied" if situation in EXPECTED[command] else "refused"
    return f"{command.removeprefix('order.line_item.')}-when-{situation}-{verdict}"


def test_every_contract_line_item_command_is_expected() -> None:
    assert set(LINE_ITEM_COMMANDS) == set(EXPECTED)


@pytest.mark.parametrize(("command", "situation"), CASES, ids=[_case_id(*case) for case in CASES])
def test_line_item_command_in_situation(command: str, situation: str) -> None:
    e, run = Events(), Run()
    assert not run.send(*SITUATIONS[situation](e)).rejected
    snapshot = run.snapshot()
    event = e.line_item_command(command, "L1", actor="agent-7", reason="customer call")
    sent = run.send(event)
    if situation in EXPECTED[command]:
        assert sent.rejected == []
        assert run.order.line_items["L1"].state == EXPECTED[command][situation]
        if "L1" in sent.changes:
            assert (sent.changes["L1"].actor, sent.changes["L1"].reason) == (
                "agent-7",
                "customer call",
            )
    else:
        (refusal,) = sent.rejected
        assert (refusal.command, refusal.caused_by) == (command, event.id)
        assert refusal.reason.startswith(f"{command} is not allowed when ")
        assert sent.changes == {}
        assert run.snapshot() == snapshot


def test_a_command_for_an_unknown_line_item_is_refused() -> None:
    e, run = Events(), Run()
    run.send(*REACH["in_progress"](e))
    sent = run.send(e.line_item_command(HOLD, "L9"))
    assert [r.reason for r in sent.rejected] == ["unknown line item L9"]


# --- what each does -------------------------------------------------------------------------------


def test_rejecting_a_line_item_cancels_its_work_and_the_order_rolls_up_from_the_rest() -> None:
    e, run = Events(), Run()
    run.send(*submitted(*TWO_ITEMS)(e))
    sent = run.send(e.line_item_command(REJECT, "L1"))
    assert {key: change.state for key, change in sent.changes.items()} == {
        "T1": "canceled",
        "W1": "canceled",
        "L1": "rejected",
    }
    assert run.order.state is OrderState.NEW
    approved_ = run.send(e.command("order.approved"))
    assert (approved_.state(ORDER_ID), approved_.state("L2")) == ("acknowledged", "acknowledged")
    assert run.send(e.task_updated("T2", "closed_complete")).state(ORDER_ID) == "completed"


def test_an_order_whose_line_items_are_all_rejected_is_canceled() -> None:
    """DOMAIN.md: an order whose line items all end canceled or rejected is canceled."""
    e, run = Events(), Run()
    run.send(*submitted(*TWO_ITEMS)(e), e.line_item_command(REJECT, "L1"))
    sent = run.send(e.line_item_command(REJECT, "L2"))
    assert (sent.state("L2"), sent.state(ORDER_ID)) == ("rejected", "canceled")


def test_a_held_line_item_keeps_its_hold_while_its_work_moves_and_shows_it_again_on_resume() -> (
    None
):
    e, run = Events(), Run()
    run.send(*on_l1(REACH["acknowledged"], HOLD)(e))
    moved = run.send(e.task_updated("T1", "in_progress"))
    assert (moved.state("W1"), moved.state(ORDER_ID)) == ("in_progress", "in_progress")
    assert "L1" not in moved.changes
    assert run.send(e.line_item_command(RESUME, "L1")).state("L1") == "in_progress"


def test_a_line_item_whose_work_all_ended_is_final_even_under_its_own_hold() -> None:
    """Decision: the hold held no work, and the order must see every line item final."""
    e, run = Events(), Run()
    run.send(*on_l1(REACH["in_progress"], HOLD)(e), e.task_updated("T2", "closed_complete"))
    sent = run.send(e.task_updated("T1", "closed_complete"))
    assert (sent.state("L1"), sent.state(ORDER_ID)) == ("completed", "completed")


def test_its_own_overlay_shows_over_the_orders_and_the_orders_again_once_it_is_lifted() -> None:
    e, run = Events(), Run()
    run.send(*on_l1(REACH["in_progress"], HOLD)(e))
    information = run.send(e.command("order.information.requested"))
    assert information.state("L2") == "awaiting_information"
    assert "L1" not in information.changes
    assert run.send(e.line_item_command(RESUME, "L1")).state("L1") == "awaiting_information"


def test_approving_a_line_item_cancellation_without_work_cancels_it_at_once() -> None:
    e, run = Events(), Run()
    run.send(*on_l1(approved(item("L1"), item("L2", wo("W2"))), REQUEST)(e))
    sent = run.send(e.line_item_command(APPROVE, "L1"))
    assert sent.state("L1") == "canceled"
    assert run.order.line_items["L1"].overlays == []
    assert run.order.state is OrderState.ACKNOWLEDGED  # L2 holds it


def test_an_approved_line_item_cancellation_winds_its_work_down_then_the_rollup_decides() -> None:
    e, run = Events(), Run()
    two_work_orders = (item("L1", wo("W1", task("T1")), wo("W3", task("T3"))), TWO_ITEMS[1])
    run.send(*on_l1(started(*two_work_orders), REQUEST)(e))
    sent = run.send(e.line_item_command(APPROVE, "L1"))
    assert {key: change.state for key, change in sent.changes.items()} == {
        "T3": "canceled",
        "W3": "canceled",
        "W1": "cancellation_in_progress",
        "L1": "cancellation_in_progress",
    }
    assert "W1" not in run.send(e.task_updated("T1", "on_hold")).changes
    ended = run.send(e.task_updated("T1", "closed_complete"))
    assert (ended.state("W1"), ended.state("L1")) == ("closed_complete", "completed")
    assert run.order.state is OrderState.IN_PROGRESS  # L2 is still open


def test_the_orders_approved_cancellation_supersedes_line_item_overlays() -> None:
    e, run = Events(), Run()
    run.send(
        *on_l1(REACH["in_progress"], HOLD)(e),
        e.command("order.cancellation.requested"),
    )
    sent = run.send(e.command("order.cancellation.approved"))
    assert sent.state("L1") == "cancellation_in_progress"
    assert run.order.line_items["L1"].overlays == []


def test_no_work_order_is_created_for_a_line_item_being_canceled() -> None:
    e, run = Events(), Run()
    run.send(*on_l1(REACH["in_progress"], REQUEST, APPROVE)(e))
    sent = run.send(e.wo_created("L1", "W9"))
    assert [r.reason for r in sent.rejected] == ["line item L1 is being canceled"]


def test_no_line_item_is_added_to_an_order_being_canceled() -> None:
    e, run = Events(), Run()
    run.send(*REACH["cancellation_in_progress"](e))
    sent = run.send(e.item_added(item("L9", wo("W9"))))
    assert [r.reason for r in sent.rejected] == [
        "the order is being canceled: no line item may be added"
    ]


def test_line_items_follow_the_order_through_enrichment() -> None:
    e, run = Events(), Run()
    run.send(*for_enrichment(*TWO_ITEMS)(e))
    assert run.order.line_items["L1"].state is OrderState.SUBMITTED
    steps = then(
        lambda _: [],
        lambda e: e.command("order.enrichment.started"),
        lambda e: e.command("order.enrichment.held"),
        lambda e: e.command("order.enrichment.resumed"),
        lambda e: e.command("order.enrichment.completed"),
    )
    shown = [run.send(event).state("L1") for event in steps(e)]
    assert shown == [
        "enrichment_in_progress",
        "enrichment_on_hold",
        "enrichment_in_progress",
        "new",
    ]
