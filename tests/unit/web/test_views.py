"""The view models: a record in, the page's data out (tree, labels, progress, fallout, parked
events, services, timeline), computed from records the worker's rules produced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.outbound import StateLabels
from tests.web.fake_reader import (
    T0,
    FakeReader,
    Feed,
    OrderEvents,
    order_in_fallout,
    order_overdue,
)
from worker.rules import OrderRecord
from worker.rules.labels import ORDER_LABELS, TASK_LABELS, WORK_ORDER_LABELS
from worker.rules.service import ServiceRecord
from worker.rules.states import OrderState, TaskState, WorkOrderState
from worker.web import ListedOrder, Overview, PlanList
from worker.web.timeline import timeline_entry
from worker.web.views import OrderView, order_view, overview_view, service_view
from worker.web.vocabulary import EntityKind, Vocabulary, badge

# The moment the views are made at: after every event of the scenarios.
NOW = T0 + timedelta(hours=2)


def fed(*events: dict[str, Any]) -> FakeReader:
    reader = FakeReader()
    Feed(reader).send(*events)
    return reader


def in_fallout_then(order_id: str, *more: str) -> FakeReader:
    """`order_in_fallout`, then FO-1 resolved (`resolve`) and tasks closed (a task id)."""
    events = OrderEvents(order_id)
    scenario = order_in_fallout(events)
    later = [
        events.make("task.fallout.resolved", task_id="T-2", fallout_id="FO-1")
        if step == "resolve"
        else events.task_updated(step, "closed_complete")
        for step in more
    ]
    return fed(*scenario, *later)


def view_of(reader: FakeReader, order_id: str) -> OrderView:
    record = reader.records[order_id]
    services: dict[str, ServiceRecord | None] = dict(reader.services)
    return order_view(record, reader.timelines[order_id], services, NOW)


@pytest.fixture(scope="module")
def in_fallout() -> FakeReader:
    return fed(*order_in_fallout(OrderEvents("O-1")))


def test_the_tree_is_the_records_hierarchy_in_its_order_with_each_state(
    in_fallout: FakeReader,
) -> None:
    order = in_fallout.records["O-1"].order
    assert order is not None
    view = view_of(in_fallout, "O-1")

    tree = {
        item.line_item_id: {
            work_order.work_order_id: [
                (task.task_id, task.state.state) for task in work_order.task_views
            ]
            for work_order in item.work_order_views
        }
        for item in view.line_items
    }
    assert tree == {
        "LI-1": {"WO-1": [("T-1", "closed_complete"), ("T-2", "on_hold")]},
        "LI-2": {"WO-2": [("T-3", "resolved")]},
    }
    assert [(item.state.state, item.action, item.service_id) for item in view.line_items] == [
        (order.line_items["LI-1"].state, "add", "SVC-1"),
        (order.line_items["LI-2"].state, "add", "SVC-2"),
    ]
    work_orders = {w.work_order_id: w for item in view.line_items for w in item.work_order_views}
    assert {wid: (w.state.state, w.kind) for wid, w in work_orders.items()} == {
        wid: (w.state, w.kind) for wid, w in order.work_orders.items()
    }
    assert view.state is not None
    assert view.state.state == order.state
    assert (view.profile, view.account_id, view.created, view.deleted) == (
        "standard",
        "ACC-1",
        True,
        False,
    )


def test_each_state_carries_its_label_in_every_vocabulary(in_fallout: FakeReader) -> None:
    view = view_of(in_fallout, "O-1")
    work_order = view.line_items[0].work_order_views[0]
    on_hold_task = work_order.task_views[1]

    assert view.state is not None
    assert view.state.labels == StateLabels(**ORDER_LABELS[OrderState.IN_PROGRESS]._asdict())
    assert work_order.state.labels.tmf == WORK_ORDER_LABELS[WorkOrderState.ON_HOLD].tmf == "held"
    assert on_hold_task.state.state == TaskState.ON_HOLD
    assert on_hold_task.state.label(Vocabulary.PSA) == TASK_LABELS[TaskState.ON_HOLD].psa
    assert on_hold_task.state.tone == "blocked"
    assert [vocabulary.display_name for vocabulary in Vocabulary] == [
        "ServiceNow",
        "Nextian",
        "PSA",
        "TMF",
    ]


def test_a_state_without_labels_shows_its_name_rather_than_failing() -> None:
    unknown = badge(EntityKind.TASK, "waiting_for_parts")  # from a newer worker's event

    assert unknown.labels == StateLabels(
        servicenow="waiting_for_parts",
        nextian="waiting_for_parts",
        psa="waiting_for_parts",
        tmf="waiting_for_parts",
    )
    assert unknown.tone == "unknown"


def test_progress_counts_final_tasks_and_work_orders_out_of_all(in_fallout: FakeReader) -> None:
    view = view_of(in_fallout, "O-1")

    assert (view.tasks.final, view.tasks.total, view.tasks.percent) == (1, 3, 33)
    assert (view.work_orders.final, view.work_orders.total) == (0, 2)
    first, second = view.line_items
    assert (first.work_orders.final, first.work_orders.total) == (0, 1)
    assert (first.work_order_views[0].tasks.final, first.work_order_views[0].tasks.total) == (1, 2)
    assert (second.work_order_views[0].tasks.final, second.work_order_views[0].tasks.total) == (
        0,
        1,
    )


def test_progress_is_100_percent_only_when_all_are_final() -> None:
    view = view_of(in_fallout_then("O-3", "T-3"), "O-3")

    assert (view.tasks.final, view.tasks.total, view.tasks.percent) == (2, 3, 66)
    assert view.line_items[1].work_orders.percent == 100
    assert view.line_items[1].state.state == "completed"


def test_fallouts_show_category_reason_group_and_their_history_open_ones_first(
    in_fallout: FakeReader,
) -> None:
    view = view_of(in_fallout, "O-1")

    assert [(f.fallout_id, f.task_id, f.work_order_id, f.open) for f in view.fallouts] == [
        ("FO-1", "T-2", "WO-1", True),
        ("FO-0", "T-3", "WO-2", False),
    ]
    open_one, resolved = view.fallouts
    assert (open_one.category, open_one.reason, open_one.assigned_group) == (
        "provisioning failure",
        "OLT port not reachable",
        "network-operations",  # reassigned from provisioning
    )
    assert [entry.summary for entry in open_one.history] == [
        "Fallout reassigned to network-operations",
        "Fallout raised: provisioning failure: OLT port not reachable (assigned to provisioning)",
    ]
    assert [entry.type for entry in resolved.history] == ["fallout.resolved", "fallout.raised"]
    assert resolved.history[0].summary == "Fallout resolved: restocked"
    tasks = {
        t.task_id: t
        for item in view.line_items
        for w in item.work_order_views
        for t in w.task_views
    }
    assert tasks["T-2"].open_fallouts == ["FO-1"]
    assert tasks["T-3"].open_fallouts == []


def test_parked_events_say_what_they_wait_for(in_fallout: FakeReader) -> None:
    (parked,) = view_of(in_fallout, "O-1").parked

    assert (parked.event_id, parked.type, parked.waiting_for) == (
        "O-1-e13",
        "task.created",
        "work order WO-9",
    )
    assert parked.received_at == parked.time == datetime(2026, 11, 21, 10, 13, tzinfo=UTC)


def test_an_order_not_created_yet_shows_only_its_parked_events() -> None:
    early = OrderEvents("O-4").make(
        "workorder.created",
        line_item_id="LI-1",
        work_order_id="WO-1",
        kind="service",
        state="draft",
    )
    view = view_of(fed(early), "O-4")

    assert (view.created, view.state, view.line_items, view.services) == (False, None, [], [])
    assert [parked.waiting_for for parked in view.parked] == ["order O-4"]
    assert (view.tasks.total, view.tasks.percent) == (0, 0)


def test_services_show_status_active_and_term_end_of_the_services_the_order_touches(
    in_fallout: FakeReader,
) -> None:
    view = view_of(in_fallout, "O-1")

    assert [
        (
            s.service_id,
            s.line_item_ids,
            s.status and (s.status.name, s.status.active, s.status.tmf_state),
        )
        for s in view.services
    ] == [
        ("SVC-1", ["LI-1"], ("New", True, "reserved")),
        ("SVC-2", ["LI-2"], ("New", True, "reserved")),
    ]
    assert (view.services[0].term_end, view.services[0].renewal) == (
        datetime(2027, 11, 21, tzinfo=UTC),
        "auto_renew",
    )
    assert view.services[1].term_end is None


def test_a_service_the_service_stage_has_not_recorded_shows_the_ordered_term() -> None:
    record = OrderRecord.model_validate(view_free_record())
    view = order_view(record, [], {}, NOW)

    (service,) = view.services
    assert (service.status, service.term_end, service.renewal) == (
        None,
        datetime(2027, 1, 1, tzinfo=UTC),
        "expires",
    )


def view_free_record() -> dict[str, Any]:
    return {
        "order_id": "O-5",
        "order": {
            "order_id": "O-5",
            "profile": "standard",
            "state": "new",
            "line_items": {
                "LI-1": {
                    "line_item_id": "LI-1",
                    "action": "add",
                    "state": "new",
                    "service_id": "SVC-9",
                    "term": {"end": "2027-01-01T00:00:00Z"},
                }
            },
        },
    }


def test_the_timeline_groups_each_inputs_changes_with_its_cause_newest_first(
    in_fallout: FakeReader,
) -> None:
    timeline = view_of(in_fallout, "O-1").timeline

    started = next(step for step in timeline if step.caused_by == "O-1-e5")
    assert [
        (c.entity, c.entity_id, c.previous and c.previous.state, c.state and c.state.state)
        for c in started.changes
    ] == [
        ("task", "T-1", "scheduled", "in_progress"),
        ("work order", "WO-1", "scheduled", "in_progress"),
        ("line item", "LI-1", "scheduled", "in_progress"),
        ("order", "O-1", "acknowledged", "in_progress"),
    ]  # child before parent, as the worker emitted them
    approved = next(step for step in timeline if step.caused_by == "O-1-e3")
    assert (approved.actor, approved.reason) == ("manager.ode", "credit check passed")
    refused = next(step for step in timeline if step.caused_by == "O-1-e4")
    assert [c.summary for c in refused.changes] == [
        "Refused order.approved: order.approved is not allowed when the order is acknowledged"
    ]
    assert refused.reason is None  # the refusal's reason is the change, not the command's
    times = [step.at for step in timeline]
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]


def test_timeline_entries_of_odd_or_unknown_events_show_what_they_have() -> None:
    stale = timeline_entry(
        {
            "id": "x1",
            "type": "update.stale",
            "time": "2026-11-21T10:00:00Z",
            "data": {"entity": "work_order", "id": "WO-1", "sequence": 3, "applied_sequence": 5},
        }
    )
    assert (stale.entity, stale.entity_id, stale.at) == (
        "work order",
        "WO-1",
        datetime(2026, 11, 21, 10, tzinfo=UTC),
    )
    assert stale.summary == "Stale update ignored: sequence 3 is older than the applied 5"

    jeopardy = timeline_entry(
        {"id": "x2", "type": "jeopardy.raised", "data": {"entity": "task", "id": "T-1", "at": "?"}}
    )
    assert (jeopardy.summary, jeopardy.entity, jeopardy.entity_id, jeopardy.at) == (
        "jeopardy.raised",
        "task",
        "T-1",
        None,
    )
    broken = timeline_entry({"type": "task.state.changed", "data": "not an object"})
    assert (broken.entity, broken.entity_id, broken.state and broken.state.state) == (
        "task",
        None,
        "?",
    )
    deleted = timeline_entry({"id": "x3", "type": "order.deleted", "data": {"actor": "kim"}})
    assert (deleted.summary, deleted.actor) == ("Order deleted", "kim")


def test_the_service_view_has_status_active_term_orders_and_history_newest_first() -> None:
    reader = in_fallout_then("O-6", "resolve", "T-2")
    view = service_view(reader.services["SVC-1"])

    assert view.status is not None
    assert (view.status.name, view.status.active, view.status.tmf_state) == (
        "In Service",
        True,
        "active",
    )
    assert (view.account_id, view.product_id, view.location_id) == ("ACC-1", "fiber-1g", None)
    assert (view.term_end, view.renewal) == (datetime(2027, 11, 21, tzinfo=UTC), "auto_renew")
    assert view.orders == ["O-6"]
    assert [(c.previous and c.previous.state, c.state.state, c.order_id) for c in view.history] == [
        ("new", "in_service", "O-6"),
        (None, "new", "O-6"),
    ]


def test_a_service_record_without_a_service_has_an_empty_view() -> None:
    view = service_view(ServiceRecord(service_id="SVC-0"))

    assert (view.service_id, view.status, view.orders, view.history) == ("SVC-0", None, [], [])


def test_the_overview_lists_every_known_list_then_newer_ones_and_counts_by_state() -> None:
    at = datetime(2026, 11, 21, 10, tzinfo=UTC)
    held = ListedOrder(order_id="O-1", state=OrderState.ON_HOLD, changed_at=at)
    parked = ListedOrder(order_id="O-2", state=None, changed_at=at)
    view = overview_view(
        Overview(
            lists={
                PlanList.RECENTLY_CHANGED: [held, parked],
                PlanList.ON_HOLD: [held],
                "awaiting_parts": [held],  # a list a newer store keeps
            },
            counts={OrderState.ON_HOLD: 1, OrderState.DRAFT: 2, OrderState.COMPLETED: 0},
        )
    )

    assert [(listed.name, listed.title) for listed in view.lists] == [
        ("open_fallout", "Open fallout"),
        ("on_hold", "On hold or awaiting information"),
        ("in_cancellation", "In cancellation"),
        ("in_jeopardy", "In jeopardy"),
        ("recently_changed", "Recently changed"),
        ("awaiting_parts", "Awaiting parts"),
    ]
    recent = view.lists[4].orders
    assert [(o.order_id, o.state and o.state.state) for o in recent] == [
        ("O-1", "on_hold"),
        ("O-2", None),
    ]
    assert [(count.state.state, count.count) for count in view.counts] == [
        ("draft", 2),
        ("on_hold", 1),
    ]
    assert view.total == 3


def test_open_fallouts_come_before_resolved_ones_whatever_the_task_order() -> None:
    def task(task_id: str, state: str, *fallouts: tuple[str, bool]) -> dict[str, Any]:
        return {
            "task_id": task_id,
            "work_order_id": "WO-1",
            "state": state,
            "fallouts": {
                fallout_id: {
                    "fallout_id": fallout_id,
                    "category": "billing issue",
                    "reason": "?",
                    "assigned_group": None,
                    "open": is_open,
                }
                for fallout_id, is_open in fallouts
            },
        }

    tasks = [
        task("T-1", "resolved", ("FO-1", False)),
        task("T-2", "on_hold", ("FO-2", True), ("FO-3", False), ("FO-4", True)),
    ]
    record = OrderRecord.model_validate(
        {
            "order_id": "O-9",
            "order": {
                "order_id": "O-9",
                "profile": "standard",
                "state": "in_progress",
                "tasks": {t["task_id"]: t for t in tasks},
            },
        }
    )

    fallouts = order_view(record, [], {}, NOW).fallouts
    assert [(f.fallout_id, f.open) for f in fallouts] == [
        ("FO-2", True),
        ("FO-4", True),
        ("FO-1", False),
        ("FO-3", False),
    ]
    assert fallouts[0].assigned_group is None


def test_open_jeopardy_episodes_show_entity_reason_since_and_how_late() -> None:
    view = view_of(fed(*order_overdue(OrderEvents("O-10"))), "O-10")

    (episode,) = view.jeopardy
    assert (episode.entity, episode.entity_id, episode.reason) == ("task", "T-1", "overdue")
    assert episode.reason_text == "Overdue: not finished by its due time"
    assert episode.since == episode.due_at == T0 + timedelta(minutes=2)
    assert episode.late_by_s == (NOW - episode.since).total_seconds()
    (work_order,) = view.line_items[0].work_order_views
    assert [(t.task_id, t.jeopardy) for t in work_order.task_views] == [
        ("T-1", ["overdue"]),
        ("T-2", []),
    ]
    assert (work_order.jeopardy, view.line_items[0].jeopardy) == ([], [])


def test_due_times_show_where_entities_have_them() -> None:
    view = view_of(fed(*order_overdue(OrderEvents("O-11"))), "O-11")

    (item,) = view.line_items
    (work_order,) = item.work_order_views
    assert view.due_at == T0 + timedelta(days=30)
    assert item.due_at == T0 + timedelta(days=7)
    assert work_order.due_at is None
    assert [t.due_at for t in work_order.task_views] == [T0 + timedelta(minutes=2), None]


def test_an_order_without_open_jeopardy_shows_none(in_fallout: FakeReader) -> None:
    view = view_of(in_fallout, "O-1")

    assert view.jeopardy == []
    assert all(item.jeopardy == [] for item in view.line_items)


def test_only_an_overdue_episode_is_late_by_its_due_time_and_never_before_it() -> None:
    def episode(reason: str, since: datetime) -> dict[str, Any]:
        return {"entity": "order", "id": "O-12", "reason": reason, "since": since.isoformat()}

    due = T0 + timedelta(hours=1)
    record = OrderRecord.model_validate(
        {
            "order_id": "O-12",
            "order": {
                "order_id": "O-12",
                "profile": "standard",
                "state": "in_progress",
                "due_at": due.isoformat(),
                "jeopardy": {
                    "order:stalled:O-12": episode("stalled", T0),
                    "order:overdue:O-12": episode("overdue", due),
                },
            },
        }
    )

    stalled, overdue = order_view(record, [], {}, NOW).jeopardy  # the longest open first
    assert (stalled.reason, stalled.due_at, stalled.late_by_s) == ("stalled", due, None)
    assert (overdue.reason, overdue.late_by_s) == ("overdue", 3600.0)
    # A clock behind the worker's event time: not late (yet) by this clock.
    (_, early) = order_view(record, [], {}, due - timedelta(minutes=1)).jeopardy
    assert early.late_by_s is None
