"""An order's recent outbound events as timeline entries: what changed, when, and what caused it.

The events are read as plain JSON (written by this or another version of the worker), so every
field is looked up defensively: an odd event shows what it has instead of failing the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from worker.web.vocabulary import EntityKind, Frozen, StateBadge, badge

# State-change event type -> the entity it is about and the data field naming it.
_CHANGES: Final = {
    "order.state.changed": (EntityKind.ORDER, "order_id"),
    "lineitem.state.changed": (EntityKind.LINE_ITEM, "line_item_id"),
    "workorder.state.changed": (EntityKind.WORK_ORDER, "work_order_id"),
    "task.state.changed": (EntityKind.TASK, "task_id"),
}


class TimelineEntry(Frozen):
    event_id: str
    type: str
    at: datetime | None  # the causing input's time
    # What the entry is about: the entity changed, the fallout's task, the stale update's entity.
    entity: str | None
    entity_id: str | None
    previous: StateBadge | None  # state changes only
    state: StateBadge | None
    summary: str  # for people, in words; empty for a state change (its badges say it)
    fallout_id: str | None
    caused_by: str | None  # the input event's id
    actor: str | None
    reason: str | None  # why: the command's reason, or why a command was refused


class TimelineStep(Frozen):
    """What one input event did: every change it caused, child before parent as emitted."""

    at: datetime | None
    caused_by: str | None
    actor: str | None  # who sent the command, for a command
    reason: str | None  # and why
    changes: list[TimelineEntry]


def timeline_entries(events: Iterable[Mapping[str, Any]]) -> list[TimelineEntry]:
    return [timeline_entry(event) for event in events]


def timeline_steps(entries: Iterable[TimelineEntry]) -> list[TimelineStep]:
    """Entries (newest first) grouped by the input that caused them, newest first. Only adjacent
    entries are grouped: an input's outputs are written together, so they are adjacent."""
    groups: list[list[TimelineEntry]] = []
    for entry in entries:
        if groups and entry.caused_by is not None and groups[-1][0].caused_by == entry.caused_by:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    steps = []
    for group in groups:
        emitted = group[::-1]
        said = next((entry for entry in emitted if entry.actor or entry.reason), emitted[0])
        steps.append(
            TimelineStep(
                at=emitted[0].at,
                caused_by=emitted[0].caused_by,
                actor=said.actor,
                reason=said.reason,
                changes=emitted,
            )
        )
    return steps


def timeline_entry(event: Mapping[str, Any]) -> TimelineEntry:
    raw_data = event.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    kind = str(event.get("type", ""))
    entry: dict[str, Any] = {
        "event_id": str(event.get("id", "")),
        "type": kind,
        "at": _moment(data.get("at")) or _moment(event.get("time")),
        "entity": None,
        "entity_id": None,
        "previous": None,
        "state": None,
        "summary": "",
        "fallout_id": None,
        "caused_by": _text(data.get("caused_by")),
        "actor": _text(data.get("actor")),
        "reason": _text(data.get("reason")),
    }
    if kind in _CHANGES:
        entity, id_field = _CHANGES[kind]
        previous = _text(data.get("previous"))
        entry |= {
            "entity": entity.value,
            "entity_id": _text(data.get(id_field)),
            "previous": badge(entity, previous) if previous else None,
            "state": badge(entity, str(data.get("state", "?"))),
        }
    elif kind.startswith("fallout."):
        entry |= _fallout(kind, data)
    elif kind == "command.rejected":
        entry |= {
            "summary": f"Refused {data.get('command', 'a command')}: {data.get('reason')}",
            "reason": None,  # why it was refused, said in the summary; not the command's reason
        }
    elif kind == "update.stale":
        entry |= {
            "entity": str(data.get("entity", "")).replace("_", " "),
            "entity_id": _text(data.get("id")),
            "summary": f"Stale update ignored: sequence {data.get('sequence')} is older than "
            f"the applied {data.get('applied_sequence')}",
        }
    elif kind == "order.deleted":
        entry["summary"] = "Order deleted"
    else:  # a type this version does not describe (a newer worker's): its name and its subject
        entry |= {
            "entity": _text(data.get("entity")),
            "entity_id": _text(data.get("id")),
            "summary": kind,
        }
    return TimelineEntry(**entry)


def _fallout(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    fallout_id = _text(data.get("fallout_id"))
    group = data.get("assigned_group") or "no group"
    summary = {
        "fallout.raised": f"Fallout raised: {data.get('category')}: {data.get('reason')} "
        f"(assigned to {group})",
        "fallout.reassigned": f"Fallout reassigned to {group}",
        "fallout.resolved": f"Fallout resolved: {data.get('resolution') or 'no resolution given'}",
    }.get(kind, kind)
    return {
        "entity": EntityKind.TASK.value,
        "entity_id": _text(data.get("task_id")),
        "summary": summary,
        "fallout_id": fallout_id,
        # A fallout's reason is what went wrong, said in the summary; not why the event happened.
        "reason": None,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
