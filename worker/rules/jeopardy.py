"""Jeopardy (DOMAIN.md "Jeopardy"; TMF641 jeopardy alerts, ServiceNow SLAs): which entities of an
order are at risk, and why, at a moment in event time. Jeopardy never changes a state.

An entity that is not final is in jeopardy
- `overdue` from its due time (`due_at`) on;
- `stalled` once neither it nor anything under it changed state for its level's limit (a draft is
  not judged: nobody has been asked to work on it yet);
- `fallout_open` once a fallout on a task under it (its own, for a task) has been open for its
  level's limit.
The limits are the order's profile's (`Policy.jeopardy`). Each episode (an entity, a reason, the
moment it began) is raised once and cleared once, when its condition ends: progress, a final
state, the fallout resolved, the due time moved later, the order deleted. Ids derive from the
episode, so a judgement repeated after a crash gives the same events.

The order keeps its open episodes and, per entity, when its next one begins
(`Order.jeopardy_ahead`); the earliest is a timer of the order (`order.next_due`). An input
judges the entities it touched (and those in jeopardy); the timer judges the whole order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Final, NamedTuple

from schemas import inbound as ev
from schemas import outbound as out
from schemas.outbound import JeopardyLevel, JeopardyReason
from worker.rules.emit import Emitted, Stream, output_id
from worker.rules.inputs import JeopardyLimits
from worker.rules.snapshot import Jeopardy, Order, Task, Timed
from worker.rules.states import (
    OrderState,
    order_is_final,
    task_is_final,
    work_order_is_final,
)

# Every level's draft state is the same word.
_DRAFT: Final = OrderState.DRAFT.value

Entity = tuple[JeopardyLevel, str]
"""An entity of the order: its level and id."""
_RANK: Final[dict[JeopardyLevel, int]] = {"task": 0, "work_order": 1, "line_item": 2, "order": 3}


class Condition(NamedTuple):
    """An entity is in jeopardy for a reason from `since` on (maybe still ahead). A named tuple:
    made for every entity an input touches, and a frozen dataclass takes twice as long to make."""

    level: JeopardyLevel
    entity_id: str
    reason: JeopardyReason
    since: datetime

    @property
    def key(self) -> str:
        # The id last: level and reason are words without a colon, so keys never collide.
        return f"{self.level}:{self.reason}:{self.entity_id}"


def conditions(order: Order, limits: JeopardyLimits) -> Iterator[Condition]:
    """Every condition of the order's entities that are not final, children before parents."""
    # The earliest open fallout under each work order and line item, gathered from below.
    under_work_order: dict[str, datetime] = {}
    under_line_item: dict[str, datetime] = {}
    under_order: datetime | None = None
    for task in order.tasks.values():
        opened = _earliest_open_fallout(task) if task.fallouts else None
        _earlier(under_work_order, task.work_order_id, opened)
        final = task_is_final(task.state)
        yield from _judged(limits, "task", task.task_id, task, task.state, final, opened)
    for work_order_id, work_order in order.work_orders.items():
        opened = under_work_order.get(work_order_id)
        _earlier(under_line_item, work_order.line_item_id, opened)
        final = work_order_is_final(work_order.state)
        yield from _judged(
            limits, "work_order", work_order_id, work_order, work_order.state, final, opened
        )
    for line_item_id, line_item in order.line_items.items():
        opened = under_line_item.get(line_item_id)
        if opened is not None and (under_order is None or opened < under_order):
            under_order = opened
        final = order_is_final(line_item.state)
        yield from _judged(
            limits, "line_item", line_item_id, line_item, line_item.state, final, opened
        )
    final = order_is_final(order.state)
    yield from _judged(limits, "order", order.order_id, order, order.state, final, under_order)


def _earlier(found: dict[str, datetime], key: str, moment: datetime | None) -> None:
    if moment is not None and (key not in found or moment < found[key]):
        found[key] = moment


def _earliest_open_fallout(task: Task) -> datetime | None:
    return min(
        (f.raised_at for f in task.fallouts.values() if f.open and f.raised_at is not None),
        default=None,
    )


def _judged(
    limits: JeopardyLimits,
    level: JeopardyLevel,
    entity_id: str,
    entity: Timed,
    state: StrEnum,
    final: bool,
    fallout_since: datetime | None,
) -> list[Condition]:
    # A list, not a generator: judged for every entity an input touches, so on the hot path.
    judged: list[Condition] = []
    if final:
        return judged
    if entity.due_at is not None:
        judged.append(Condition(level, entity_id, "overdue", entity.due_at))
    stall = limits.stalled[level]
    if stall is not None and entity.progressed_at is not None and state != _DRAFT:
        judged.append(Condition(level, entity_id, "stalled", entity.progressed_at + stall))
    hold = limits.fallout_open[level]
    if hold is not None and fallout_since is not None:
        judged.append(Condition(level, entity_id, "fallout_open", fallout_since + hold))
    return judged


def judge(
    order: Order, limits: JeopardyLimits | None, moment: datetime, caused_by: str | None
) -> list[Emitted]:
    """Judge the whole order (its own copy) at `moment`, as its timer does: end every open
    episode whose condition no longer holds, raise every condition that holds and is not open
    yet, and note exactly when the next one begins. `limits` None: the order was deleted,
    nothing of it is judged any more. `caused_by`: the input that led to the judgement (None:
    the timer)."""
    current = {} if limits is None else {c.key: c for c in conditions(order, limits)}
    emitted = _settle(order, current, moment, caused_by)
    order.jeopardy_ahead = {}
    _note_ahead(order, current)
    return emitted


def next_moment(order: Order) -> datetime | None:
    """When the order's next jeopardy begins; None when none is ahead."""
    return order.jeopardy_due


def _note_ahead(order: Order, current: dict[str, Condition]) -> None:
    """Keep, for each entity of `current` (conditions by key), when its earliest condition not
    open yet begins; and the earliest of every entity's."""
    for key, condition in current.items():
        if key in order.jeopardy:
            continue
        entity = f"{condition.level}:{condition.entity_id}"
        ahead = order.jeopardy_ahead.get(entity)
        if ahead is None or condition.since < ahead:
            order.jeopardy_ahead[entity] = condition.since
    order.jeopardy_due = min(order.jeopardy_ahead.values(), default=None)


def rejudge(
    order: Order,
    limits: JeopardyLimits,
    moment: datetime,
    caused_by: str,
    touched: Iterable[Entity],
) -> list[Emitted]:
    """After an input changed the order: judge at `moment` only what it can have changed, the
    entities it `touched` (see `note_progress`, `touched_by`) and those with an open episode,
    and note when their next jeopardy begins; the others' conditions are as they were. A full
    pass per input would cost a third of the rules' time in the benchmark."""
    entities = {*touched, *((episode.entity, episode.id) for episode in order.jeopardy.values())}
    # Children before parents, then by id: the events' order never depends on a set's.
    ordered = sorted(entities, key=lambda entity: (_RANK[entity[0]], entity[1]))
    # Few tasks have an open fallout: one look at each task instead of one per entity (in C: a
    # comprehension over every task of the order cost as much as judging the entities), and the
    # earliest open fallout of each task that has any found once, not once per entity above it.
    open_fallouts = [
        (task, raised)
        for task in filter(_HAS_FALLOUTS, order.tasks.values())
        if (raised := _earliest_open_fallout(task)) is not None
    ]
    current = {
        c.key: c
        for level, entity_id in ordered
        for c in _entity_conditions(order, limits, level, entity_id, open_fallouts)
    }
    emitted = _settle(order, current, moment, caused_by)
    for level, entity_id in ordered:
        order.jeopardy_ahead.pop(f"{level}:{entity_id}", None)
    _note_ahead(order, current)
    return emitted


_HAS_FALLOUTS: Final = attrgetter("fallouts")


def _settle(
    order: Order, current: dict[str, Condition], moment: datetime, caused_by: str | None
) -> list[Emitted]:
    """End the open episodes whose condition does not hold at `moment`; raise the conditions
    that hold and are not open yet."""
    emitted: list[Emitted] = []
    for key, episode in list(order.jeopardy.items()):
        condition = current.get(key)
        if condition is None or condition.since > moment:
            del order.jeopardy[key]
            emitted.append(_event(order, episode, "jeopardy.cleared", moment, caused_by))
    for key, condition in current.items():
        if condition.since <= moment and key not in order.jeopardy:
            episode = Jeopardy(
                entity=condition.level,
                id=condition.entity_id,
                reason=condition.reason,
                since=condition.since,
            )
            order.jeopardy[key] = episode
            emitted.append(_event(order, episode, "jeopardy.raised", moment, None))
    return emitted


def _entity_conditions(
    order: Order,
    limits: JeopardyLimits,
    level: JeopardyLevel,
    entity_id: str,
    open_fallouts: list[tuple[Task, datetime]],
) -> list[Condition]:
    """The conditions of one entity; `open_fallouts`: the order's tasks that have an open fallout,
    each with the moment its earliest one was raised."""
    found = entity_of(order, level, entity_id)
    assert found is not None  # an input that removes entities has the whole order judged
    entity, state, final = found
    opened = None
    if open_fallouts and limits.fallout_open[level] is not None:
        for task, raised in open_fallouts:
            if _is_under(order, task, level, entity_id):
                opened = raised if opened is None else min(opened, raised)
    return _judged(limits, level, entity_id, entity, state, final, opened)


def _event(
    order: Order, episode: Jeopardy, kind: str, moment: datetime, caused_by: str | None
) -> Emitted:
    # One name per episode: its entity, reason and beginning, in the order.
    name = (
        f"jeopardy:{episode.entity}:{episode.reason}:"
        f"{episode.since.astimezone(UTC).isoformat()}:{order.order_id}"
    )
    entity = entity_of(order, episode.entity, episode.id)
    event = out.JeopardyEvent(
        id=output_id(name, kind, episode.id),
        type=kind,
        subject=episode.id,
        time=moment,
        data=out.JeopardyData(
            order_id=order.order_id,
            entity=episode.entity,
            id=episode.id,
            reason=episode.reason,
            state=None if entity is None else entity[1].value,
            due_at=None if entity is None else entity[0].due_at,
            since=episode.since,
            late_by_s=(moment - episode.since).total_seconds(),
            open_fallouts=[
                out.OpenFallout(
                    task_id=task.task_id,
                    fallout_id=fallout.fallout_id,
                    category=fallout.category,
                    assigned_group=fallout.assigned_group,
                    raised_at=fallout.raised_at,
                )
                for task in _tasks_under(order, episode.entity, episode.id)
                for fallout in task.fallouts.values()
                if fallout.open
            ],
            caused_by=caused_by or output_id(name, "jeopardy", episode.id),
            at=moment,
        ),
    )
    return Emitted(Stream.OPS, order.order_id, event, moment)


def entity_of(
    order: Order, level: JeopardyLevel, entity_id: str
) -> tuple[Timed, StrEnum, bool] | None:
    """The entity, its state and whether that is final; None when it was removed (with its line
    item). The plan view finds an episode's entity with it too."""
    match level:
        case "task":
            task = order.tasks.get(entity_id)
            return None if task is None else (task, task.state, task_is_final(task.state))
        case "work_order":
            work_order = order.work_orders.get(entity_id)
            if work_order is None:
                return None
            return work_order, work_order.state, work_order_is_final(work_order.state)
        case "line_item":
            line_item = order.line_items.get(entity_id)
            if line_item is None:
                return None
            return line_item, line_item.state, order_is_final(line_item.state)
        case "order":  # pragma: no branch - the levels are exhaustive
            return order, order.state, order_is_final(order.state)


def _is_under(order: Order, task: Task, level: JeopardyLevel, entity_id: str) -> bool:
    """Whether the task is the entity or one of its tasks."""
    match level:
        case "task":
            return task.task_id == entity_id
        case "work_order":
            return task.work_order_id == entity_id
        case "line_item":
            return order.work_orders[task.work_order_id].line_item_id == entity_id
        case "order":  # pragma: no branch - the levels are exhaustive
            return True


def _tasks_under(order: Order, level: JeopardyLevel, entity_id: str) -> Iterable[Task]:
    match level:
        case "task":
            return [order.tasks[entity_id]] if entity_id in order.tasks else []
        case "work_order":
            work_order_ids = [entity_id]
        case "line_item":
            line_item = order.line_items.get(entity_id)
            work_order_ids = [] if line_item is None else line_item.work_order_ids
        case "order":  # pragma: no branch - the levels are exhaustive
            return order.tasks.values()
    return [
        order.tasks[task_id]
        for work_order_id in work_order_ids
        if work_order_id in order.work_orders
        for task_id in order.work_orders[work_order_id].task_ids
    ]


def note_progress(order: Order, emitted: Iterable[Emitted], moment: datetime) -> set[Entity]:
    """What the stall and fallout limits count from: every entity that changed state, and
    everything above it, progressed at `moment`; every fallout raised was raised at `moment`.
    The entities whose conditions that can change."""
    touched: set[Entity] = set()
    for item in emitted:
        match item.event.data:
            case out.TaskStateChangedData(task_id=task_id):
                _progressed(order, "task", task_id, moment, touched)
            case out.WorkOrderStateChangedData(work_order_id=work_order_id):
                _progressed(order, "work_order", work_order_id, moment, touched)
            case out.LineItemStateChangedData(line_item_id=line_item_id):
                _progressed(order, "line_item", line_item_id, moment, touched)
            case out.OrderStateChangedData():
                _progressed(order, "order", order.order_id, moment, touched)
            # The changes are state changes and fallout events only: nothing falls through.
            case out.FalloutData(task_id=task_id, fallout_id=fallout_id):  # pragma: no branch
                if item.event.type == "fallout.raised":
                    order.task_to_change(task_id).fallouts[fallout_id].raised_at = moment
                # Its open fallouts changed: the task and everything above it are judged again.
                _progressed(order, "task", task_id, None, touched)
    return touched


def touched_by(event: ev.OrderEvent) -> set[Entity]:
    """The entity whose due time an update moved, if it did."""
    match event.data:
        case ev.TaskUpdatedData(task_id=task_id, due_at=due_at) if due_at is not None:
            return {("task", task_id)}
        case ev.WorkOrderUpdatedData(work_order_id=work_order_id, due_at=due_at) if (
            due_at is not None
        ):
            return {("work_order", work_order_id)}
    return set()


def _progressed(
    order: Order,
    level: JeopardyLevel,
    entity_id: str,
    moment: datetime | None,
    touched: set[Entity],
) -> None:
    """The entity, and everything above it, progressed at `moment` (None: only touched), up to
    one touched already by the same input (so was everything above that)."""
    entity_key: Entity | None = (level, entity_id)
    while entity_key is not None and entity_key not in touched:
        touched.add(entity_key)
        entity: Timed
        match entity_key:
            case ("task", task_id):
                entity = task = order.task_to_change(task_id)
                above: Entity | None = ("work_order", task.work_order_id)
            case ("work_order", work_order_id):
                entity = work_order = order.work_order_to_change(work_order_id)
                above = ("line_item", work_order.line_item_id)
            case ("line_item", line_item_id):
                entity = order.line_item_to_change(line_item_id)
                above = ("order", order.order_id)
            case _:
                entity, above = order, None
        # A late input may be applied after later ones: progress never goes back in time.
        if moment is not None and (entity.progressed_at is None or moment > entity.progressed_at):
            entity.progressed_at = moment
        entity_key = above
