"""The engine around the status rules: stale and duplicate events, parking, the tmf profile,
structural guards, work-order derivation, fallout bookkeeping and the service actions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import pytest

from schemas import inbound as ev
from schemas.internal import ServiceAction
from tests.unit.rules.builders import (
    ORDER_ID,
    T0,
    TWO_ITEMS,
    TWO_WORK_ORDERS,
    Events,
    Json,
    Run,
    Sent,
    approved,
    change_events,
    entity_of,
    inputs,
    item,
    started,
    submitted,
    task,
    wo,
)
from worker.rules import OrderRecord, Policy, Profile, Stream, advance, apply, output_id
from worker.rules.states import OrderState, TaskState, WorkOrderState

# --- stale updates --------------------------------------------------------------------------------

STALE = [
    ("task", "T1", lambda e, seq: e.task_updated("T1", "closed_complete", sequence=seq)),
    ("work_order", "W1", lambda e, seq: e.wo_updated("W1", "closed_complete", sequence=seq)),
    ("order", ORDER_ID, lambda e, seq: e.command("order.hold.requested", sequence=seq)),
]


@pytest.mark.parametrize(("entity", "entity_id", "update"), STALE, ids=[s[0] for s in STALE])
def test_an_update_older_than_the_applied_version_is_reported_stale_and_changes_nothing(
    entity: str, entity_id: str, update: Callable[[Events, int], ev.OrderEvent]
) -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    applied = run.send(
        e.task_updated("T1", "on_hold", sequence=5),
        e.wo_updated("W1", "on_hold", sequence=5),
        e.command("order.revision.started", sequence=5),
        e.command("order.revision.completed", sequence=6),
    )
    assert applied.rejected == []
    snapshot = run.snapshot()
    older = update(e, 4)
    sent = run.send(older)
    assert [s.model_dump() for s in sent.stale] == [
        {
            "order_id": ORDER_ID,
            "entity": entity,
            "id": entity_id,
            "source": "/tests",
            "sequence": 4,
            "applied_sequence": 6 if entity == "order" else 5,
            "caused_by": older.id,
        }
    ]
    assert sent.changes == {}
    assert run.snapshot() == snapshot


def test_an_update_with_the_applied_sequence_or_a_newer_one_applies() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T1", "on_hold", sequence=5))
    assert run.send(e.task_updated("T1", "in_progress", sequence=5)).state("T1") == "in_progress"
    assert run.send(e.task_updated("T1", "on_hold", sequence=9)).state("T1") == "on_hold"
    assert run.order.tasks["T1"].sequences == {"/tests": 9}


def test_without_sequences_an_update_older_in_time_is_stale() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T1", "on_hold", time=T0 + timedelta(hours=1)))
    sent = run.send(e.task_updated("T1", "closed_complete", time=T0 + timedelta(minutes=30)))
    assert [(s.entity, s.id, s.sequence) for s in sent.stale] == [("task", "T1", None)]
    assert run.order.tasks["T1"].state is TaskState.ON_HOLD


def test_an_update_without_time_or_sequence_is_never_stale_and_keeps_the_versions() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T1", "on_hold", sequence=3))
    versions = (run.order.tasks["T1"].sequences, run.order.tasks["T1"].updated_at)
    assert run.send(e.task_updated("T1", "in_progress", untimed=True)).state("T1") == "in_progress"
    assert (run.order.tasks["T1"].sequences, run.order.tasks["T1"].updated_at) == versions


def test_a_sequence_is_compared_only_with_the_version_of_the_same_entity() -> None:
    """An update for a task not created yet is parked, not judged against the order's version."""
    e, run = Events(), Run()
    run.send(*submitted(item("L1", wo("W1")))(e), e.command("order.approved", sequence=7))
    parked = run.send(e.task_updated("T9", "in_progress", sequence=2))
    assert parked.emitted == []
    assert run.send(e.task_created("W1", "T9")).state("T9") == "in_progress"


def test_a_parked_event_is_not_stale_against_the_creation_its_source_sent_after_it() -> None:
    """The source sent the fallout (sequence 6) before the task's creation (7), and the fallout
    arrived first: parked, then applied when the task is created, as sent (found by hypothesis)."""
    e, run = Events(), Run()
    run.send(*submitted(item("L1", wo("W1")))(e), e.command("order.approved"))
    early = e.make(
        "task.fallout.raised",
        sequence=6,
        source="/wfm",
        task_id="T9",
        fallout_id="F1",
        category="provisioning failure",
        reason="a",
    )
    assert run.send(early).emitted == []
    sent = run.send(
        e.make(
            "task.created",
            sequence=7,
            source="/wfm",
            work_order_id="W1",
            task_id="T9",
            state="open",
        )
    )
    assert sent.stale == []
    assert run.order.tasks["T9"].fallouts["F1"].open
    assert run.order.tasks["T9"].sequences == {"/wfm": 7}
    assert run.send(e.task_updated("T9", "in_progress", sequence=6, source="/wfm")).stale != []


# --- duplicates -----------------------------------------------------------------------------------


def test_an_event_delivered_twice_is_applied_once() -> None:
    e, run = Events(), Run()
    run.send(*approved(*TWO_ITEMS)(e))
    update = e.task_updated("T1", "in_progress")
    assert run.send(update).state(ORDER_ID) == "in_progress"
    record = run.record
    assert run.send(update).emitted == []
    assert run.record == record


def test_a_refused_event_delivered_again_is_not_answered_twice() -> None:
    e, run = Events(), Run()
    run.send(e.created())
    refused = e.command("order.approved")
    assert len(run.send(refused).rejected) == 1
    assert run.send(refused).emitted == []


def test_an_id_used_by_another_source_is_another_event() -> None:
    """Issue 13 item 7: CloudEvents identifies an event by `source` and `id` together: an update
    from /provisioning with id ext-1 is applied although /wfm used ext-1 before, and its outputs
    get ids of their own."""
    e, run = Events(), Run()
    run.send(*approved(*TWO_ITEMS)(e))
    first = run.send(e.task_updated("T1", "in_progress", event_id="ext-1", source="/wfm"))
    second = run.send(e.task_updated("T2", "in_progress", event_id="ext-1", source="/provisioning"))
    assert second.state("T2") == "in_progress"
    assert {x.event.id for x in first.emitted}.isdisjoint(x.event.id for x in second.emitted)
    assert run.record is not None
    assert {"/wfm ext-1", "/provisioning ext-1"} <= run.record.applied
    again = run.send(e.task_updated("T2", "on_hold", event_id="ext-1", source="/provisioning"))
    assert again.emitted == []  # the same source and id: a redelivery


def test_sequences_are_compared_per_source() -> None:
    """Issue 13 item 8: fallout events with sequence 1 and 2 from one source are not stale
    against sequence 7 from another; each source's own order still holds."""
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T1", "on_hold", sequence=7, source="/wfm"))
    raised = e.make(
        "task.fallout.raised",
        sequence=1,
        source="/fallout",
        task_id="T1",
        fallout_id="F1",
        category="billing issue",
        reason="no account",
    )
    assert len(run.send(raised).fallouts("fallout.raised")) == 1
    resolved = e.make(
        "task.fallout.resolved", sequence=2, source="/fallout", task_id="T1", fallout_id="F1"
    )
    assert run.send(resolved).state("T1") == "resolved"
    assert run.order.tasks["T1"].sequences == {"/wfm": 7, "/fallout": 2}
    older = run.send(e.task_updated("T1", "in_progress", sequence=6, source="/wfm"))
    assert [(s.source, s.sequence, s.applied_sequence) for s in older.stale] == [("/wfm", 6, 7)]


def test_outputs_are_deterministic_so_a_replay_is_recognisable() -> None:
    events = started(*TWO_ITEMS)(Events())
    first = apply(None, ORDER_ID, inputs(*events), Policy(Profile.PSA))
    again = apply(None, ORDER_ID, inputs(*events), Policy(Profile.PSA))
    assert [x.event.id for x in first.emitted] == [x.event.id for x in again.emitted]
    # Derived from the cause's identity: its source and its id.
    assert first.emitted[0].event.id == output_id("/tests evt-1", "task", "T1")
    assert len({x.event.id for x in first.emitted}) == len(first.emitted)


# --- copy-on-write --------------------------------------------------------------------------------


def test_an_event_copies_only_the_entities_it_changes_and_shares_the_rest() -> None:
    """A batch costs what it changes, not the size of the order: the new record shares every
    entity the events left alone with the record it came from, which stays as it was."""
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.fallout_raised("T1", "F1"))
    before = run.order
    run.send(e.task_updated("T2", "in_progress"))
    after = run.order
    kinds: list[tuple[Mapping[str, object], Mapping[str, object]]] = [
        (before.tasks, after.tasks),
        (before.work_orders, after.work_orders),
        (before.line_items, after.line_items),
    ]
    copied = [
        entity_id
        for entities_before, entities_after in kinds
        for entity_id, entity in entities_after.items()
        if entity is not entities_before[entity_id]
    ]
    assert copied == ["T2", "W2", "L2"]
    assert (before.tasks["T2"].state, after.tasks["T2"].state) == ("open", "in_progress")
    assert run.record is not None
    swept = advance(run.record, T0 + timedelta(hours=1), Policy())
    assert swept.record is run.record  # nothing was due (the fallout is open for less than its
    # jeopardy limit): the record is not copied at all


def test_a_record_from_apply_is_what_its_json_reads_back_as() -> None:
    """The worker stores the record as JSON and may read it back: the copy-on-write bookkeeping is
    not part of it, and the record keeps no reference to the one it came from."""
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    run.send(e.fallout_raised("T1", "F1"), e.fallout_reassigned("T1", "F1", "field-ops"))
    assert run.record is not None
    assert OrderRecord.model_validate_json(run.record.model_dump_json()) == run.record


# --- parking --------------------------------------------------------------------------------------


def test_a_task_update_before_its_order_is_parked_and_applied_when_the_order_arrives() -> None:
    e, run = Events(), Run()
    early = e.task_updated("T1", "in_progress")
    assert run.send(early).emitted == []
    assert run.record is not None
    assert [p.event.id for p in run.record.parked] == [early.id]
    sent = run.send(*approved(*TWO_ITEMS)(e))
    assert sent.changes["T1"].caused_by == early.id
    assert run.order.state is OrderState.IN_PROGRESS
    assert run.record.parked == []


def test_children_arriving_before_their_parents_are_applied_in_a_chain() -> None:
    e, run = Events(), Run()
    run.send(*approved()(e))
    early = [e.task_created("W1", "T1", "in_progress"), e.wo_created("L1", "W1")]
    assert run.send(*early).emitted == []
    sent = run.send(e.item_added(item("L1")))
    assert {key: change.state for key, change in sent.changes.items()} == {
        "T1": "in_progress",
        "W1": "in_progress",
        "L1": "in_progress",
        ORDER_ID: "in_progress",
    }
    assert run.record is not None
    assert run.record.parked == []


def test_a_work_order_update_before_its_creation_is_applied_when_it_arrives() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1"))(e))
    early = e.wo_updated("W1", "in_progress", sequence=3, time=T0 + timedelta(hours=1))
    assert run.send(early).emitted == []
    sent = run.send(e.wo_created("L1", "W1"))
    assert (sent.state("W1"), sent.state(ORDER_ID)) == ("in_progress", "in_progress")
    assert run.order.work_orders["W1"].sequences == {"/tests": 3}


def test_a_parked_event_that_turns_out_illegal_is_refused_when_retried() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1")))(e))
    # Sent later than the task's creation, though it arrives first.
    early = e.task_updated("T9", "resolved", time=T0 + timedelta(hours=1))
    run.send(early)
    sent = run.send(e.task_created("W1", "T9", "open"))
    assert [(r.caused_by, r.reason) for r in sent.rejected] == [
        (early.id, "task T9 cannot move from open to resolved")
    ]


# --- tmf profile ----------------------------------------------------------------------------------

TMF_ENDINGS = [
    (("failed", "closed_complete"), "partial"),
    (("failed", "canceled"), "failed"),
    (("failed", "failed"), "failed"),
    (("closed_complete", "canceled"), "completed"),
]


@pytest.mark.parametrize(
    ("work_orders", "order"), TMF_ENDINGS, ids=["-".join(w) for w, _ in TMF_ENDINGS]
)
def test_tmf_work_orders_may_fail_and_the_order_ends_partial_or_failed(
    work_orders: tuple[str, str], order: str
) -> None:
    e, run = Events(), Run(profile=Profile.TMF)
    run.send(*approved(*TWO_WORK_ORDERS)(e), e.wo_updated("W1", work_orders[0]))
    assert run.order.state is OrderState.IN_PROGRESS
    sent = run.send(e.wo_updated("W2", work_orders[1]))
    assert sent.state(ORDER_ID) == order
    assert sent.state("L1") == order
    assert sent.label(ORDER_ID, "tmf") == order


def test_tmf_partial_only_once_every_item_is_final() -> None:
    e, run = Events(), Run(profile=Profile.TMF)
    run.send(*approved(item("L1", wo("W1"), wo("W2"), wo("W3")))(e))
    run.send(e.wo_updated("W1", "failed"), e.wo_updated("W2", "closed_complete"))
    assert ORDER_ID not in run.send(e.wo_updated("W3", "on_hold")).changes
    assert run.order.state is OrderState.IN_PROGRESS
    assert run.send(e.wo_updated("W3", "canceled")).state(ORDER_ID) == "partial"


FAILED_OUTSIDE_TMF: dict[str, Callable[[Events], ev.OrderEvent]] = {
    "update": lambda e: e.wo_updated("W1", "failed"),
    "creation": lambda e: e.wo_created("L1", "W9", "failed"),
    "line-item-addition": lambda e: e.item_added(item("L9", wo("W9", state="failed"))),
}


@pytest.mark.parametrize("event", FAILED_OUTSIDE_TMF.values(), ids=FAILED_OUTSIDE_TMF.keys())
@pytest.mark.parametrize("profile", [Profile.STANDARD, Profile.PSA])
def test_a_failed_work_order_exists_only_in_the_tmf_profile(
    event: Callable[[Events], ev.OrderEvent], profile: Profile
) -> None:
    e, run = Events(), Run(profile=profile)
    run.send(*approved(*TWO_WORK_ORDERS)(e))
    snapshot = run.snapshot()
    sent = run.send(event(e))
    assert [r.reason for r in sent.rejected] == [
        "work order state failed exists only in the tmf profile"
    ]
    assert run.snapshot() == snapshot


def test_the_profile_on_order_created_wins_over_the_deployment_default() -> None:
    e, run = Events(), Run(profile=Profile.STANDARD)
    run.send(e.created(profile="tmf"))
    assert run.order.profile is Profile.TMF
    other = Run(profile=Profile.PSA)
    other.send(Events().created())
    assert other.order.profile is Profile.PSA


# --- structure: what may be created and removed ---------------------------------------------------

STRUCTURE: list[tuple[str, Callable[[Events], ev.OrderEvent], str]] = [
    ("order-created-twice", lambda e: e.created(), "order O-1 already exists"),
    (
        "line-item-id-taken",
        lambda e: e.item_added(item("L1")),
        "line item L1 already exists",
    ),
    (
        "work-order-id-taken-by-a-new-line-item",
        lambda e: e.item_added(item("L9", wo("W1"))),
        "work order W1 already exists",
    ),
    (
        "task-id-taken-by-a-new-line-item",
        lambda e: e.item_added(item("L9", wo("W9", task("T1")))),
        "task T1 already exists",
    ),
    (
        "work-order-id-repeated-in-a-new-line-item",
        lambda e: e.item_added(item("L9", wo("W9"), wo("W9"))),
        "work order W9 already exists",
    ),
    (
        "task-id-repeated-in-a-new-line-item",
        lambda e: e.item_added(item("L9", wo("W8", task("T9")), wo("W9", task("T9")))),
        "task T9 already exists",
    ),
    ("removing-an-unknown-line-item", lambda e: e.item_removed("L9"), "unknown line item L9"),
    ("work-order-id-taken", lambda e: e.wo_created("L2", "W1"), "work order W1 already exists"),
    ("task-id-taken", lambda e: e.task_created("W2", "T1"), "task T1 already exists"),
    (
        "work-order-move-not-in-its-table",
        lambda e: e.wo_updated("W1", "draft"),
        "work order W1 cannot move from in_progress to draft",
    ),
    (
        "task-move-not-in-its-table",
        lambda e: e.task_updated("T1", "open"),
        "task T1 cannot move from in_progress to open",
    ),
]


@pytest.mark.parametrize(
    ("event", "reason"), [s[1:] for s in STRUCTURE], ids=[s[0] for s in STRUCTURE]
)
def test_an_event_that_breaks_the_structure_is_refused_and_changes_nothing(
    event: Callable[[Events], ev.OrderEvent], reason: str
) -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    snapshot = run.snapshot()
    sent = run.send(event(e))
    assert [r.reason for r in sent.rejected] == [reason]
    assert run.snapshot() == snapshot


REPEATED_IN_CREATION: dict[str, Json] = {
    "work-order": item("L1", wo("W1"), wo("W1")),
    "task": item("L1", wo("W1", task("T1"), task("T1"))),
}


@pytest.mark.parametrize(
    "line_item", REPEATED_IN_CREATION.values(), ids=REPEATED_IN_CREATION.keys()
)
def test_an_order_created_with_a_repeated_id_is_refused(line_item: Json) -> None:
    e, run = Events(), Run()
    sent = run.send(e.created(line_item))
    assert [r.reason.split()[-2:] for r in sent.rejected] == [["already", "exists"]]
    assert run.record is not None
    assert run.record.order is None


def test_removing_a_line_item_removes_its_work_orders_and_tasks_and_rolls_up_the_rest() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T2", "closed_complete"))
    sent = run.send(e.item_removed("L1"))
    assert set(run.order.work_orders) == {"W2"}
    assert set(run.order.tasks) == {"T2"}
    assert sent.state(ORDER_ID) == "completed"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (lambda e: e.wo_created("L1", "W9"), "line item L1 is completed"),
        (lambda e: e.task_created("W1", "T9"), "work order W1 is closed_complete"),
    ],
    ids=["work-order-on-a-final-line-item", "task-on-a-final-work-order"],
)
def test_nothing_is_created_under_a_final_parent(
    event: Callable[[Events], ev.OrderEvent], reason: str
) -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.task_updated("T1", "closed_complete"))
    assert [r.reason for r in run.send(event(e)).rejected] == [reason]


def test_a_line_item_added_to_a_running_order_starts_acknowledged() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    assert run.send(e.item_added(item("L3", wo("W3")))).state("L3") == "acknowledged"


# --- work orders derived from their tasks ---------------------------------------------------------


def test_a_reported_work_order_update_to_its_current_state_changes_nothing() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    sent = run.send(e.wo_updated("W1", "in_progress"))
    assert sent.emitted == []
    assert run.order.work_orders["W1"].state is WorkOrderState.IN_PROGRESS


def test_a_work_order_reported_in_progress_does_not_fall_back_to_its_tasks_scheduled() -> None:
    """Decision: a derived state the work order's table forbids leaves it where it is."""
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1", task("T1"), task("T2"))))(e))
    run.send(e.wo_updated("W1", "in_progress"))
    sent = run.send(e.task_updated("T1", "scheduled"))
    assert "W1" not in sent.changes
    assert run.order.work_orders["W1"].state is WorkOrderState.IN_PROGRESS


def test_a_work_order_with_unstarted_tasks_keeps_its_reported_state() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1", task("T1"))))(e), e.wo_updated("W1", "qualified"))
    assert "W1" not in run.send(e.task_updated("T1", "open")).changes
    assert run.order.work_orders["W1"].state is WorkOrderState.QUALIFIED


def test_a_work_order_canceled_by_its_owner_cancels_only_its_unfinished_tasks() -> None:
    e, run = Events(), Run()
    run.send(*approved(item("L1", wo("W1", task("T1"), task("T2"))))(e))
    run.send(e.task_updated("T1", "closed_complete"))
    sent = run.send(e.wo_updated("W1", "canceled"))
    assert sent.state("T2") == "canceled"
    assert "T1" not in sent.changes
    assert sent.state(ORDER_ID) == "canceled"


def test_an_event_announces_its_moves_child_before_parent_each_kind_in_the_orders_order() -> None:
    # Ids out of sort order.
    e, run = Events(), Run()
    line_items = (item("L2", wo("W3", task("T3"), task("T1"), task("T2"))), item("L1", wo("W1")))
    run.send(*approved(*line_items)(e))
    sent = run.send(e.command("order.canceled"))
    announced = [entity_of(change) for change in change_events(sent.emitted)]
    assert announced == ["T3", "T1", "T2", "W3", "W1", "L2", "L1", ORDER_ID]


# --- fallout --------------------------------------------------------------------------------------

FALLOUT_REFUSALS: list[tuple[str, list[Callable[[Events], ev.OrderEvent]], str]] = [
    (
        "raised-twice",
        [lambda e: e.fallout_raised("T1", "F1"), lambda e: e.fallout_raised("T1", "F1")],
        "fallout F1 already exists",
    ),
    (
        "raised-on-a-draft-task",
        [lambda e: e.task_created("W1", "T9", "draft"), lambda e: e.fallout_raised("T9", "F1")],
        "task T9 cannot move from draft to on_hold",
    ),
    (
        "raised-on-a-final-task",
        [lambda e: e.task_updated("T1", "canceled"), lambda e: e.fallout_raised("T1", "F1")],
        "task T1 cannot move from canceled to on_hold",
    ),
    (
        "resolving-an-unknown-one",
        [lambda e: e.fallout_resolved("T1", "F9")],
        "unknown fallout F9 on task T1",
    ),
    (
        "resolved-twice",
        [
            lambda e: e.fallout_raised("T1", "F1"),
            lambda e: e.fallout_resolved("T1", "F1"),
            lambda e: e.fallout_resolved("T1", "F1"),
        ],
        "fallout F1 is already resolved",
    ),
    (
        "reassigning-a-resolved-one",
        [
            lambda e: e.fallout_raised("T1", "F1"),
            lambda e: e.fallout_resolved("T1", "F1"),
            lambda e: e.fallout_reassigned("T1", "F1", "noc"),
        ],
        "fallout F1 is already resolved",
    ),
]


@pytest.mark.parametrize(
    ("events", "reason"), [f[1:] for f in FALLOUT_REFUSALS], ids=[f[0] for f in FALLOUT_REFUSALS]
)
def test_fallout_bookkeeping_refuses_what_does_not_fit(
    events: list[Callable[[Events], ev.OrderEvent]], reason: str
) -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    *setup, last = [make(e) for make in events]
    run.send(*setup)
    snapshot = run.snapshot()
    sent = run.send(last)
    assert [r.reason for r in sent.rejected] == [reason]
    assert sent.fallouts(last.type.replace("task.", "")) == []
    assert run.snapshot() == snapshot


def test_a_task_stays_on_hold_until_its_last_open_fallout_is_resolved() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e), e.fallout_raised("T1", "F1"), e.fallout_raised("T1", "F2"))
    first = run.send(e.fallout_resolved("T1", "F1"))
    assert len(first.fallouts("fallout.resolved")) == 1
    assert first.changes == {}
    assert run.send(e.fallout_resolved("T1", "F2")).state("T1") == "resolved"


def test_a_fallout_for_a_task_not_yet_known_waits_for_it() -> None:
    e, run = Events(), Run()
    run.send(*started(*TWO_ITEMS)(e))
    raised = e.make(
        "task.fallout.raised",
        time=T0 + timedelta(hours=1),
        task_id="T9",
        fallout_id="F1",
        category="billing issue",
        reason="no account",
    )
    assert run.send(raised).emitted == []
    sent = run.send(e.task_created("W2", "T9", "in_progress"))
    assert sent.state("T9") == "on_hold"
    assert len(sent.fallouts("fallout.raised")) == 1


# --- service actions: what each line item did to its service --------------------------------------


def _service_actions(sent: Sent) -> list[tuple[str, str, str]]:
    return [
        (x.key, x.event.data.line_item_id, x.event.data.outcome)
        for x in sent.emitted
        if isinstance(x.event, ServiceAction) and x.stream is Stream.SERVICE_ACTIONS
    ]


SERVICE_ITEMS = (
    item("L1", wo("W1", task("T1")), service_id="S-1", product_id="internet", location_id="LOC-1"),
    item("L2", wo("W2", task("T2")), action="disconnect", service_id="S-2"),
    item("L3", wo("W3", task("T3"))),  # a widget: no service
)


def test_an_add_line_item_creates_its_service_and_other_actions_wait_for_their_end() -> None:
    e, run = Events(), Run()
    sent = run.send(e.created(*SERVICE_ITEMS, account_id="ACC-1"))
    assert _service_actions(sent) == [("S-1", "L1", "created")]
    (action,) = [x.event for x in sent.emitted if isinstance(x.event, ServiceAction)]
    assert (action.data.account_id, action.data.product_id, action.data.location_id) == (
        "ACC-1",
        "internet",
        "LOC-1",
    )


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            lambda e: [
                e.task_updated("T1", "closed_complete"),
                e.task_updated("T2", "closed_complete"),
            ],
            [("S-1", "L1", "completed"), ("S-2", "L2", "completed")],
        ),
        (
            lambda e: [e.task_updated("T1", "canceled"), e.task_updated("T2", "canceled")],
            [("S-1", "L1", "canceled"), ("S-2", "L2", "canceled")],
        ),
        (
            lambda e: [e.command("order.canceled")],
            [("S-1", "L1", "canceled"), ("S-2", "L2", "canceled")],
        ),
        (lambda e: [e.item_removed("L2")], [("S-2", "L2", "canceled")]),
        (lambda e: [e.task_updated("T1", "in_progress")], []),
    ],
    ids=["completed", "canceled-by-work", "canceled-by-command", "removed", "in-progress-nothing"],
)
def test_a_line_item_ending_completes_or_cancels_its_service_action(
    events: Callable[[Events], list[ev.OrderEvent]], expected: list[tuple[str, str, str]]
) -> None:
    e, run = Events(), Run()
    run.send(e.created(*SERVICE_ITEMS), e.command("order.submitted"), e.command("order.approved"))
    assert _service_actions(run.send(*events(e))) == expected


@pytest.mark.parametrize(
    ("profile", "work_orders", "outcome"),
    [
        (Profile.TMF, ("failed", "closed_complete"), "completed"),
        (Profile.TMF, ("failed", "failed"), "canceled"),
    ],
    ids=["partial-delivered-something", "failed-delivered-nothing"],
)
def test_a_tmf_line_item_ending_partial_or_failed(
    profile: Profile, work_orders: tuple[str, str], outcome: str
) -> None:
    e, run = Events(), Run(profile=profile)
    run.send(
        *approved(item("L1", wo("W1"), wo("W2"), service_id="S-1"))(e),
        e.wo_updated("W1", work_orders[0]),
    )
    assert _service_actions(run.send(e.wo_updated("W2", work_orders[1]))) == [
        ("S-1", "L1", outcome)
    ]


def test_a_rejected_order_cancels_the_services_its_line_items_would_have_created() -> None:
    e, run = Events(), Run()
    run.send(e.created(item("L1", service_id="S-1"), state="new"))
    assert _service_actions(run.send(e.command("order.rejected"))) == [("S-1", "L1", "canceled")]
