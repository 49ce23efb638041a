"""Which overview lists an order is on (`order_lists`), for records the rules produced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.fake_reader import (
    FakeReader,
    Feed,
    Json,
    OrderEvents,
    order_in_fallout,
    order_overdue,
)
from worker.rules import OrderRecord
from worker.web import PlanList, order_lists

FALLOUT, HELD, CANCELLING = PlanList.OPEN_FALLOUT, PlanList.ON_HOLD, PlanList.IN_CANCELLATION


def record_after(*events: Json) -> OrderRecord:
    reader = FakeReader()
    Feed(reader).send(*events)
    (record,) = reader.records.values()
    return record


def started(e: OrderEvents) -> list[Json]:
    """One line item, one work order, one task in progress: the order is in progress."""
    item = {
        "line_item_id": "LI-1",
        "action": "add",
        "work_orders": [
            {"work_order_id": "WO-1", "kind": "service", "tasks": [{"task_id": "T-1"}]}
        ],
    }
    return [
        e.make("order.created", line_items=[item]),
        e.command("order.submitted"),
        e.command("order.approved"),
        e.task_updated("T-1", "in_progress"),
    ]


@pytest.mark.parametrize(
    ("commands", "lists"),
    [
        ((), set()),
        (("order.hold.requested",), {HELD}),
        (("order.information.requested",), {HELD}),
        (("order.revision.started",), set()),
        (("order.hold.requested", "order.resumed"), set()),
        (("order.cancellation.requested",), {CANCELLING}),
        (("order.cancellation.requested", "order.cancellation.approved"), {CANCELLING}),
        (("order.cancellation.requested", "order.cancellation.denied"), set()),
        (("order.canceled",), set()),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else None,
)
def test_an_order_is_listed_while_held_or_in_cancellation(
    commands: tuple[str, ...], lists: set[PlanList]
) -> None:
    e = OrderEvents("O-1")
    record = record_after(*started(e), *(e.command(command) for command in commands))

    assert order_lists(record) == lists


def test_an_order_with_an_open_fallout_is_listed_until_it_is_resolved() -> None:
    e = OrderEvents("O-1")
    scenario = order_in_fallout(e)
    assert order_lists(record_after(*scenario)) == {FALLOUT}
    resolved = e.make("task.fallout.resolved", task_id="T-2", fallout_id="FO-1")
    assert order_lists(record_after(*scenario, resolved)) == set()
    held = e.command("order.hold.requested")
    assert order_lists(record_after(*scenario, held)) == {FALLOUT, HELD}


def test_an_order_in_jeopardy_is_listed_until_the_episode_ends() -> None:
    e = OrderEvents("O-1")
    overdue = order_overdue(e)
    assert order_lists(record_after(*overdue)) == {PlanList.IN_JEOPARDY}
    done = e.task_updated("T-1", "closed_complete")  # final: no longer overdue
    assert order_lists(record_after(*overdue, done)) == set()


def test_a_line_item_held_or_in_cancellation_lists_its_order() -> None:
    def order_with(*item_states: str) -> OrderRecord:
        items: dict[str, Any] = {
            f"LI-{n}": {"line_item_id": f"LI-{n}", "action": "add", "state": state}
            for n, state in enumerate(item_states)
        }
        order = {"order_id": "O-1", "profile": "standard", "state": "in_progress"}
        return OrderRecord.model_validate(
            {"order_id": "O-1", "order": {**order, "line_items": items}}
        )

    assert order_lists(order_with("in_progress", "on_hold")) == {HELD}
    assert order_lists(order_with("awaiting_information")) == {HELD}
    assert order_lists(order_with("assessing_cancellation", "completed")) == {CANCELLING}
    assert order_lists(order_with("cancellation_in_progress", "on_hold")) == {CANCELLING, HELD}
    assert order_lists(order_with("completed", "canceled")) == set()


def test_an_order_not_created_or_deleted_is_on_no_list() -> None:
    e = OrderEvents("O-1")
    parked = e.make("task.created", work_order_id="WO-1", task_id="T-1", state="open")
    assert order_lists(record_after(parked)) == set()

    e = OrderEvents("O-2")
    item = started(e)[0]["data"]["line_items"][0]
    draft = [
        e.make("order.created", line_items=[item]),
        e.make(
            "task.fallout.raised",
            task_id="T-1",
            fallout_id="FO-1",
            category="billing issue",
            reason="no account",
            assigned_group=None,
        ),
    ]
    assert order_lists(record_after(*draft)) == {FALLOUT}
    deleted = record_after(*draft, e.command("order.deleted"))
    assert deleted.deleted
    assert order_lists(deleted) == set()
