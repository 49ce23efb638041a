"""Jeopardy (DOMAIN.md "Jeopardy"): overdue, stalled and fallout-open at each level, raised once
per episode and cleared once, by progress, a final state, a resolved fallout, a due time moved
later, a deleted order or a removed line item; never for an entity already final."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from schemas import inbound as ev
from schemas import outbound as out
from schemas.envelope import LATEST
from schemas.outbound import JeopardyLevel
from tests.unit.rules.builders import JEOPARDY_OFF, ORDER_ID, T0, Events, Json, inputs, item
from worker.rules import Order, OrderRecord, Policy, Profile, advance, apply, next_due
from worker.rules.inputs import LEVELS, JeopardyLimits, Limits
from worker.rules.jeopardy import conditions
from worker.rules.states import TaskState, task_is_final

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
OVERDUE_ONLY = Policy(jeopardy=JEOPARDY_OFF)
IDS: dict[JeopardyLevel, str] = {
    "task": "T1",
    "work_order": "W1",
    "line_item": "L1",
    "order": ORDER_ID,
}


def only(level: JeopardyLevel, limit: timedelta) -> Limits:
    return {other: limit if other == level else None for other in LEVELS}


def policy(stalled: Limits | None = None, fallout_open: Limits | None = None) -> Policy:
    off = dict.fromkeys(LEVELS)
    limits = JeopardyLimits(stalled or off, fallout_open or off)
    return Policy(jeopardy=dict.fromkeys(Profile, limits))


STATES: dict[JeopardyLevel, str] = {
    "task": "open",
    "work_order": "scheduled",
    "line_item": "new",
    "order": "new",
}


def order(due: JeopardyLevel | None = None, due_at: datetime | None = None) -> dict[str, Any]:
    """order.created's data: one line item L1 with one scheduled work order W1 of one open task
    T1; `due` names the level that has the due time."""

    def due_of(level: JeopardyLevel) -> Json:
        return {"due_at": due_at.isoformat()} if due == level and due_at else {}

    task = {"task_id": "T1", "state": "open", **due_of("task")}
    work_order = {"work_order_id": "W1", "state": "scheduled", "tasks": [task]}
    line_item = item("L1", {**work_order, **due_of("work_order")}, **due_of("line_item"))
    return {"line_items": [line_item], **due_of("order")}


class Story:
    """One order through `apply` and `advance`, every jeopardy event it emitted kept."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.events = Events()
        self.record: OrderRecord | None = None
        self.jeopardy: list[out.JeopardyEvent] = []

    def create(self, data: dict[str, Any], at: datetime = T0) -> Story:
        return self.send(self.events.make("order.created", state="new", time=at, **data))

    def send(self, *events: ev.OrderEvent) -> Story:
        outcome = apply(self.record, ORDER_ID, inputs(*events), self.policy)
        self._keep(outcome.record, outcome.emitted)
        return self

    def until(self, moment: datetime) -> Story:
        assert self.record is not None
        outcome = advance(self.record, moment, self.policy)
        self._keep(outcome.record, outcome.emitted)
        return self

    def _keep(self, record: OrderRecord, emitted: Sequence[Any]) -> None:
        self.record = record
        self.jeopardy.extend(e.event for e in emitted if isinstance(e.event, out.JeopardyEvent))

    def said(self) -> list[tuple[str, str, str, str]]:
        return [(e.type, e.data.entity, e.data.id, e.data.reason) for e in self.jeopardy]

    def last(self) -> out.JeopardyData:
        return self.jeopardy[-1].data


@pytest.mark.parametrize("level", LEVELS)
def test_overdue_is_raised_at_the_due_time_and_cleared_by_a_final_state(
    level: JeopardyLevel,
) -> None:
    due = T0 + HOUR
    story = Story(OVERDUE_ONLY).create(order(level, due))
    story.until(due)
    assert story.said() == []  # due strictly before `until` fires
    story.until(due + MINUTE)
    assert story.said() == [("jeopardy.raised", level, IDS[level], "overdue")]
    raised = story.last()
    assert (raised.since, raised.at, raised.due_at, raised.late_by_s) == (due, due, due, 0.0)
    assert (raised.order_id, raised.state) == (ORDER_ID, STATES[level])
    story.until(due + 10 * HOUR)
    assert len(story.jeopardy) == 1  # once per episode

    done = due + 2 * HOUR
    closing = story.events.task_updated("T1", "closed_complete", time=done)
    story.send(closing)
    assert story.said()[1:] == [("jeopardy.cleared", level, IDS[level], "overdue")]
    cleared = story.last()
    assert (cleared.since, cleared.at, cleared.late_by_s) == (due, done, 7200.0)
    assert cleared.caused_by == closing.id
    assert story.jeopardy[0].id != story.jeopardy[1].id
    assert story.record is not None
    assert next_due(story.record, story.policy) is None


@pytest.mark.parametrize("level", LEVELS)
def test_stalled_is_raised_after_the_levels_limit_without_progress_and_cleared_by_progress(
    level: JeopardyLevel,
) -> None:
    story = Story(policy(stalled=only(level, HOUR))).create(order())
    story.until(T0 + 59 * MINUTE)
    assert story.said() == []
    story.until(T0 + 2 * HOUR)
    assert story.said() == [("jeopardy.raised", level, IDS[level], "stalled")]
    assert (story.last().since, story.last().state) == (T0 + HOUR, STATES[level])

    moved = T0 + 3 * HOUR
    progress = story.events.task_updated("T1", "in_progress", time=moved)  # progress below
    story.send(progress)
    assert story.said()[1:] == [("jeopardy.cleared", level, IDS[level], "stalled")]
    assert (story.last().late_by_s, story.last().caused_by) == (7200.0, progress.id)
    assert story.record is not None
    assert next_due(story.record, story.policy) == moved + HOUR  # a new stall may begin


def test_a_draft_is_not_stalled() -> None:
    story = Story(policy(stalled=dict.fromkeys(LEVELS, HOUR)))
    story.send(story.events.created(item("L1"), state="draft", time=T0))
    assert story.record is not None
    assert next_due(story.record, story.policy) is None
    story.until(T0 + 100 * HOUR)
    assert story.said() == []


def fallout(e: Events, verb: str, at: datetime) -> ev.OrderEvent:
    extra: dict[str, Any] = (
        {"category": "inventory", "reason": "no port"} if verb == "raised" else {}
    )
    return e.make(f"task.fallout.{verb}", task_id="T1", fallout_id="FO-1", time=at, **extra)


@pytest.mark.parametrize("level", LEVELS)
def test_a_fallout_open_too_long_is_raised_and_cleared_when_it_is_resolved(
    level: JeopardyLevel,
) -> None:
    story = Story(policy(fallout_open=only(level, 10 * MINUTE))).create(order())
    story.send(fallout(story.events, "raised", T0 + MINUTE))
    story.until(T0 + 11 * MINUTE)
    assert story.said() == []
    story.until(T0 + 12 * MINUTE)
    assert story.said() == [("jeopardy.raised", level, IDS[level], "fallout_open")]
    raised = story.last()
    assert raised.since == T0 + 11 * MINUTE
    assert [(f.task_id, f.fallout_id, f.raised_at) for f in raised.open_fallouts] == [
        ("T1", "FO-1", T0 + MINUTE)
    ]

    story.send(fallout(story.events, "resolved", T0 + HOUR))
    assert story.said()[1:] == [("jeopardy.cleared", level, IDS[level], "fallout_open")]
    assert story.last().open_fallouts == []


def moved_due(e: Events, level: JeopardyLevel, due: datetime, at: datetime) -> ev.OrderEvent:
    if level == "task":
        return e.task_updated("T1", "open", due_at=due.isoformat(), time=at)
    return e.wo_updated("W1", "scheduled", due_at=due.isoformat(), time=at)


@pytest.mark.parametrize("level", ["task", "work_order"])
def test_a_due_time_moved_later_clears_overdue_until_the_new_one_passes(
    level: JeopardyLevel,
) -> None:
    story = Story(OVERDUE_ONLY).create(order(level, T0 + HOUR)).until(T0 + 2 * HOUR)
    assert story.said() == [("jeopardy.raised", level, IDS[level], "overdue")]
    later = T0 + 5 * HOUR
    story.send(moved_due(story.events, level, later, T0 + 3 * HOUR))
    assert story.said()[1:] == [("jeopardy.cleared", level, IDS[level], "overdue")]
    assert story.last().due_at == later
    story.until(later + MINUTE)
    assert story.said()[2:] == [("jeopardy.raised", level, IDS[level], "overdue")]
    assert story.last().since == later
    assert len({event.id for event in story.jeopardy}) == 3  # a new episode, a new id


def test_a_due_time_moved_earlier_but_still_past_keeps_the_episode() -> None:
    story = Story(OVERDUE_ONLY).create(order("task", T0 + HOUR)).until(T0 + 2 * HOUR)
    story.send(moved_due(story.events, "task", T0 + MINUTE, T0 + 3 * HOUR))
    assert story.said() == [("jeopardy.raised", "task", "T1", "overdue")]


@pytest.mark.parametrize("level", ["task", "work_order"])
def test_a_due_time_moved_into_the_past_is_raised_at_once(level: JeopardyLevel) -> None:
    story = Story(OVERDUE_ONLY).create(order(level, T0 + 10 * HOUR))
    story.send(moved_due(story.events, level, T0, T0 + HOUR))
    assert story.said() == [("jeopardy.raised", level, IDS[level], "overdue")]
    assert (story.last().at, story.last().late_by_s) == (T0 + HOUR, 3600.0)


def test_an_entity_already_final_is_never_in_jeopardy() -> None:
    data = order("task", T0 - HOUR)
    tasks = data["line_items"][0]["work_orders"][0]["tasks"]
    tasks[0]["state"] = "closed_complete"
    tasks.append({"task_id": "T2", "state": "open"})
    story = Story(policy(stalled=dict.fromkeys(LEVELS, MINUTE))).create(data)
    story.until(T0 + 100 * HOUR)
    assert story.said() == [
        ("jeopardy.raised", "task", "T2", "stalled"),
        ("jeopardy.raised", "work_order", "W1", "stalled"),
        ("jeopardy.raised", "line_item", "L1", "stalled"),
        ("jeopardy.raised", "order", ORDER_ID, "stalled"),
    ]  # nothing for T1, final from the start though long overdue and never moving


def test_a_due_time_already_past_on_creation_is_raised_at_once_late() -> None:
    story = Story(OVERDUE_ONLY).create(order("task", T0 - HOUR))
    assert story.said() == [("jeopardy.raised", "task", "T1", "overdue")]
    assert (story.last().at, story.last().late_by_s) == (T0, 3600.0)
    assert story.last().caused_by != "evt-1"  # the episode, not the input, raised it


def test_deleting_the_order_clears_its_jeopardy() -> None:
    story = Story(OVERDUE_ONLY)
    e = story.events
    story.send(e.created(item("L1"), state="draft", due_at=(T0 - HOUR).isoformat(), time=T0))
    story.send(e.command("order.deleted", time=T0 + MINUTE))
    assert story.said() == [
        ("jeopardy.raised", "order", ORDER_ID, "overdue"),
        ("jeopardy.cleared", "order", ORDER_ID, "overdue"),
    ]
    assert story.record is not None
    assert next_due(story.record, story.policy) is None


@pytest.mark.parametrize("level", ["task", "work_order", "line_item"])
def test_removing_a_line_item_clears_the_jeopardy_under_it(level: JeopardyLevel) -> None:
    data = order(level, T0 - HOUR)
    data["line_items"].append(item("L2"))
    story = Story(OVERDUE_ONLY).create(data)
    story.send(story.events.item_removed("L1"))
    assert story.said()[1:] == [("jeopardy.cleared", level, IDS[level], "overdue")]
    assert (story.last().state, story.last().due_at, story.last().open_fallouts) == (None, None, [])


def test_a_line_items_open_fallouts_are_those_of_its_work_orders_tasks() -> None:
    story = Story(policy(fallout_open=only("line_item", MINUTE))).create(order())
    story.send(fallout(story.events, "raised", T0 + MINUTE)).until(T0 + HOUR)
    assert [f.fallout_id for f in story.last().open_fallouts] == ["FO-1"]


def test_the_same_inputs_give_the_same_ids() -> None:
    def run() -> list[str]:
        story = Story(policy(stalled=dict.fromkeys(LEVELS, HOUR))).create(order("task", T0))
        return [event.id for event in story.until(T0 + 200 * HOUR).jeopardy]

    assert run() == run()
    assert len(set(run())) == 5


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="a limit for each of"):
        JeopardyLimits({"task": HOUR}, dict.fromkeys(LEVELS))
    with pytest.raises(ValueError, match="must lie between"):
        JeopardyLimits(only("task", timedelta(0)), dict.fromkeys(LEVELS))
    with pytest.raises(ValueError, match="every profile"):
        Policy(
            jeopardy={
                Profile.STANDARD: JeopardyLimits(dict.fromkeys(LEVELS), dict.fromkeys(LEVELS))
            }
        )


# --- properties over random courses of one order -------------------------------------------------

TASK_STATES = [state.value for state in TaskState]
STEPS = st.lists(
    st.tuples(
        st.integers(0, 300),  # minutes after the step before
        st.sampled_from(["T1", "T2"]),
        st.one_of(
            st.sampled_from(TASK_STATES).map(lambda state: ("state", state)),
            st.sampled_from(["raised", "resolved"]).map(lambda verb: ("fallout", verb)),
            st.integers(-120, 600).map(lambda minutes: ("due", minutes)),
        ),
    ),
    max_size=12,
)
LIMITS = policy(
    stalled={"task": HOUR, "work_order": 2 * HOUR, "line_item": 3 * HOUR, "order": 4 * HOUR},
    fallout_open={"task": 10 * MINUTE, "work_order": 20 * MINUTE, "line_item": None, "order": HOUR},
)


def course(steps: list[tuple[int, str, tuple[str, Any]]]) -> list[ev.OrderEvent]:
    e = Events()
    tasks = [
        {"task_id": t, "state": "open", "due_at": (T0 + 2 * HOUR).isoformat()} for t in ("T1", "T2")
    ]
    created = e.make(
        "order.created",
        state="new",
        time=T0,
        line_items=[item("L1", {"work_order_id": "W1", "state": "scheduled", "tasks": tasks})],
    )
    events, at = [created], T0
    for minutes, task_id, (kind, value) in steps:
        at += minutes * MINUTE
        if kind == "state":
            events.append(e.task_updated(task_id, value, time=at))
        elif kind == "fallout":
            extra: dict[str, Any] = {"category": "c", "reason": "r"} if value == "raised" else {}
            events.append(
                e.make(
                    f"task.fallout.{value}",
                    task_id=task_id,
                    fallout_id=f"F-{task_id}",
                    time=at,
                    **extra,
                )
            )
        else:
            events.append(
                e.task_updated(task_id, "open", due_at=(at + value * MINUTE).isoformat(), time=at)
            )
    return events


def one_by_one(events: list[ev.OrderEvent], end: datetime) -> Story:
    """As the worker sees them: each event in a batch of its own, the timers fired up to it."""
    story = Story(LIMITS)
    for event in events:
        if story.record is not None:
            assert event.time is not None
            story.until(event.time)
        story.send(event)
    return story.until(end)


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_each_episode_is_raised_once_and_cleared_once_whatever_the_batches(
    steps: list[tuple[int, str, tuple[str, Any]]],
) -> None:
    events = course(steps)
    end = (events[-1].time or T0) + 20 * HOUR
    whole = Story(LIMITS).send(*events).until(end)
    note(str(whole.said()))
    assert [event.id for event in one_by_one(events, end).jeopardy] == [
        event.id for event in whole.jeopardy
    ]
    open_now: dict[tuple[str, str, str], bool] = {}
    for event in whole.jeopardy:
        key = (event.data.entity, event.data.id, event.data.reason)
        raised = event.type == "jeopardy.raised"
        assert open_now.get(key, False) is not raised  # raised, cleared, raised, ...
        open_now[key] = raised
        if raised and event.data.entity == "task":
            assert event.data.state is not None
            assert not task_is_final(TaskState(event.data.state))
    assert whole.record is not None
    assert whole.record.order is not None
    assert {(j.entity, j.id, j.reason) for j in whole.record.order.jeopardy.values()} == {
        key for key, is_open in open_now.items() if is_open
    }
    # What inputs kept up to date entity by entity is what the whole order gives afresh.
    assert whole.record.order.jeopardy_ahead == ahead_afresh(whole.record.order)


def ahead_afresh(order: Order) -> dict[str, datetime]:
    ahead: dict[str, datetime] = {}
    for condition in conditions(order, LIMITS.jeopardy[order.profile]):
        entity = f"{condition.level}:{condition.entity_id}"
        if condition.key not in order.jeopardy and condition.since < ahead.get(entity, LATEST):
            ahead[entity] = condition.since
    return ahead


def test_progress_applied_late_does_not_take_the_last_progress_back() -> None:
    data = order()
    data["line_items"][0]["work_orders"][0]["tasks"].append({"task_id": "T2", "state": "open"})
    story = Story(OVERDUE_ONLY).create(data)
    e = story.events
    story.send(e.task_updated("T1", "in_progress", time=T0 + 2 * HOUR))
    story.send(e.task_updated("T2", "in_progress", time=T0 + HOUR))  # arrived late
    assert story.record is not None
    assert story.record.order is not None
    assert story.record.order.work_orders["W1"].progressed_at == T0 + 2 * HOUR
    assert story.record.order.tasks["T2"].progressed_at == T0 + HOUR


def test_what_one_input_raises_comes_children_first_whatever_the_hashing() -> None:
    past = (T0 - HOUR).isoformat()
    data = order("task", T0 - HOUR)
    data["due_at"] = past
    data["line_items"][0]["due_at"] = past
    data["line_items"][0]["work_orders"][0]["due_at"] = past
    story = Story(OVERDUE_ONLY).create(data)
    assert [level for _, level, _, _ in story.said()] == [
        "task",
        "work_order",
        "line_item",
        "order",
    ]
