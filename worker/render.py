"""Human-readable views: one timeline line per outbound event, and an order as a tree."""

from __future__ import annotations

from typing import Any

from schemas.outbound import JeopardyLevel
from worker.rules.service import ServiceRecord
from worker.rules.snapshot import Order, OrderRecord, Timed

_KINDS = {
    "task.state.changed": ("task", "task_id"),
    "workorder.state.changed": ("work order", "work_order_id"),
    "lineitem.state.changed": ("line item", "line_item_id"),
    "order.state.changed": ("order", "order_id"),
}


def timeline_line(event: dict[str, Any]) -> str:
    """One line for one outbound event, given as its JSON object."""
    data = event["data"]
    moment = str(event.get("time") or "")[11:19]
    kind = event["type"]
    if kind in _KINDS:
        name, id_field = _KINDS[kind]
        previous = data.get("previous") or "-"
        who = f"  by {data['actor']}" if data.get("actor") else ""
        return (
            f"{moment}  {name:<10} {data[id_field]:<14} {previous:>24} -> {data['state']:<24}"
            f" [{data['labels']['servicenow']}]{who}"
        )
    if kind.startswith("fallout."):
        detail = {
            "fallout.raised": f"{data['category']}: {data['reason']}",
            "fallout.reassigned": f"assigned to {data['assigned_group']}",
            "fallout.resolved": f"{data.get('resolution') or 'resolved'}",
        }[kind]
        return f"{moment}  {kind:<25} {data['fallout_id']} on {data['task_id']}: {detail}"
    if kind == "command.rejected":
        return f"{moment}  refused {data['command']} for {data['order_id']}: {data['reason']}"
    if kind == "update.stale":
        return (
            f"{moment}  stale update of {data['entity']} {data['id']} ignored: sequence "
            f"{data['sequence']} < applied {data['applied_sequence']} from {data['source']}"
        )
    if kind.startswith("jeopardy."):
        fallouts = ", ".join(fallout["fallout_id"] for fallout in data["open_fallouts"])
        return (
            f"{moment}  {kind:<25} {data['entity'].replace('_', ' ')} {data['id']}: "
            f"{data['reason']} since {data['since']} ({_duration(data['late_by_s'])} past; "
            f"{data['state'] or 'removed'}{'; open fallouts ' + fallouts if fallouts else ''})"
        )
    if kind == "order.deleted":
        return f"{moment}  order {data['order_id']} deleted"
    if kind == "service.fulfillment.changed":
        previous = data.get("previous") or "-"
        charging = "active=true" if data["active"] else "active=false"
        return (
            f"{moment}  {'service':<10} {data['service_id']:<14} {previous:>24} -> "
            f"{data['state']:<24} [{data['tmf_state']}, {charging}]"
        )
    if kind == "service.term.renewed":
        return (
            f"{moment}  service {data['service_id']} renewed: term ends "
            f"{data['term_end']} (was {data['previous_term_end']})"
        )
    if kind == "service.attributes.changed":
        return f"{moment}  service {data['service_id']} attributes changed by {data['order_id']}"
    if kind.endswith(".activity.changed"):
        owner = kind.split(".")[0]
        state = "active" if data["active"] else "inactive"
        return f"{moment}  {owner} {data[owner + '_id']} is now {state}"
    return f"{moment}  {kind} {data}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def order_tree(record: OrderRecord) -> str:
    order = record.order
    if order is None:
        return f"order {record.order_id}: not created yet, {len(record.parked)} event(s) parked"
    lines = [
        f"order {order.order_id}  {order.state}  (profile {order.profile}"
        f"{', account ' + order.account_id if order.account_id else ''})"
        f"{_jeopardy(order, 'order', order.order_id, order)}"
        f"{'  DELETED' if record.deleted else ''}"
    ]
    items = list(order.line_items.values())
    for item_index, item in enumerate(items):
        last_item = item_index == len(items) - 1
        service = f" {item.service_id}" if item.service_id else ""
        lines.append(
            f"{'└─' if last_item else '├─'} line item {item.line_item_id}  {item.state}"
            f"  ({item.action}{service}){_jeopardy(order, 'line_item', item.line_item_id, item)}"
        )
        lines.extend(_work_order_lines(order, item.work_order_ids, "   " if last_item else "│  "))
    return "\n".join(lines)


def _work_order_lines(order: Order, work_order_ids: list[str], indent: str) -> list[str]:
    lines = []
    for index, work_order_id in enumerate(work_order_ids):
        work_order = order.work_orders[work_order_id]
        last = index == len(work_order_ids) - 1
        lines.append(
            f"{indent}{'└─' if last else '├─'} work order {work_order_id}  "
            f"{work_order.state}  ({work_order.kind})"
            f"{_jeopardy(order, 'work_order', work_order_id, work_order)}"
        )
        task_indent = indent + ("   " if last else "│  ")
        for task_index, task_id in enumerate(work_order.task_ids):
            task = order.tasks[task_id]
            fallouts = "".join(
                f"  fallout {f.fallout_id} {'open' if f.open else 'resolved'}"
                f" ({f.category}, {f.assigned_group})"
                for f in task.fallouts.values()
            )
            branch = "└─" if task_index == len(work_order.task_ids) - 1 else "├─"
            lines.append(
                f"{task_indent}{branch} task {task_id}  {task.state}{fallouts}"
                f"{_jeopardy(order, 'task', task_id, task)}"
            )
    return lines


def _jeopardy(order: Order, level: JeopardyLevel, entity_id: str, entity: Timed) -> str:
    """The entity's due time and the jeopardy it is in, if any."""
    due = f"  due {entity.due_at.isoformat()}" if entity.due_at else ""
    return due + "".join(
        f"  IN JEOPARDY: {episode.reason} since {episode.since.isoformat()}"
        for episode in order.jeopardy.values()
        if episode.entity == level and episode.id == entity_id
    )


def service_view(record: ServiceRecord) -> str:
    service = record.service
    if service is None:
        return f"service {record.service_id}: unknown"
    term = (
        f", term ends {service.term.end.isoformat()} ({service.term.renewal})"
        if service.term
        else ""
    )
    lines = [
        f"service {service.service_id}  {service.state}  (account {service.account_id}, "
        f"product {service.product_id}, location {service.location_id}{term})",
        f"  orders: {', '.join(service.orders) or '-'}",
        "  history:",
    ]
    lines.extend(
        f"    {change.at.isoformat()}  {change.previous or '-'} -> {change.state}"
        f"  ({change.order_id or 'billing or term'}, {change.caused_by})"
        for change in service.history
    )
    return "\n".join(lines)
