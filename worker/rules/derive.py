"""Every state the rules derive rather than receive, one function per kind of entity: a work order
from its tasks, a line item from its work orders, its own overlays and the order, the order from its
line items (DOMAIN.md "Rollup rules"). Parents are recomputed from the whole current set of
children, never from deltas; `rollup` holds the decisions over sets of states.
"""

from __future__ import annotations

from worker.rules.rollup import (
    order_ending,
    parent_from_work_orders,
    work_order_from_tasks,
    work_started,
)
from worker.rules.snapshot import LineItem, Order, WorkOrder
from worker.rules.states import (
    CAPTURE_STATES,
    ORDER_OVERLAYS,
    WORK_ORDER_MOVES,
    OrderState,
    WorkOrderState,
    order_is_final,
    work_order_is_final,
)

_O = OrderState


def refresh(order: Order, work_order_id: str | None = None) -> None:
    """Re-derive the parents from the current children: every work order, line item and the
    order; or, after an event about one work order (or one of its tasks), that work order, its
    line item and the order, and every line item only if the order's state moved."""
    if work_order_id is None:
        work_orders = list(order.work_orders.values())
    else:
        work_orders = [order.work_orders[work_order_id]]
    for work_order in work_orders:
        _refresh_work_order(order, work_order)
    # The order first: it rolls up from what its line items' work orders say (not from what the
    # line items show), and a line item shows the order's overlay or lifecycle. States are
    # assigned only when they move: assigning a pydantic model's attribute is slow.
    state = order_state(order)
    moved = state is not order.state
    if moved:
        order.move(state)
    if work_order_id is None or moved:
        refresh_line_items(order)
    else:
        _refresh_line_item(order, order.line_items[work_orders[0].line_item_id])


def refresh_line_items(order: Order) -> None:
    for line_item in order.line_items.values():
        _refresh_line_item(order, line_item)


def _refresh_line_item(order: Order, line_item: LineItem) -> None:
    state = line_item_state(order, line_item)
    if state is not line_item.state:
        order.line_item_to_change(line_item.line_item_id).state = state


def _refresh_work_order(order: Order, work_order: WorkOrder) -> None:
    if work_order_is_final(work_order.state) or not work_order.task_ids:
        return
    derived = work_order_from_tasks([order.tasks[task_id].state for task_id in work_order.task_ids])
    if derived is None or derived is work_order.state:
        return
    if work_order.state is WorkOrderState.CANCELLATION_IN_PROGRESS and not work_order_is_final(
        derived
    ):
        return  # it stays there until every task has ended
    # Decision: a derived state the work order cannot legally move to (back to scheduled after it
    # was reported in progress) leaves it where it is.
    if derived in WORK_ORDER_MOVES[work_order.state]:
        order.work_order_to_change(work_order.work_order_id).state = derived


def order_state(order: Order) -> OrderState:
    """Final states are absorbing; overlays hold the rollup; an order still being captured or
    enriched leaves that only by its commands. Otherwise: every line item final -> the ending they
    make (seed 003: completed when one completed, canceled when all canceled or rejected); any work
    started -> in progress; else the order keeps its lifecycle state (seed 003: Pending). A line
    item without work orders is not final: it holds the order open (seed 003, "line items added,
    but work orders not yet created: Pending"). Cancellation in progress ends when every line item
    is final, at once for an order without any."""
    state = order.state
    if order_is_final(state) or state in ORDER_OVERLAYS or state in CAPTURE_STATES:
        return state
    endings: list[OrderState] = []
    for line_item in order.line_items.values():
        ending = line_item_ending(order, line_item)
        if ending is None:
            break
        endings.append(ending)
    else:
        if endings or state is _O.CANCELLATION_IN_PROGRESS:
            return order_ending(order.profile, endings)
    if state is _O.CANCELLATION_IN_PROGRESS:
        return state
    work_orders = [work_order.state for work_order in order.work_orders.values()]
    if work_started(order.profile, work_orders, has_tasks=bool(order.tasks)):
        return _O.IN_PROGRESS
    return state


def line_item_ending(order: Order, line_item: LineItem) -> OrderState | None:
    """The final state a line item is in or its work orders give it; None while it is not final."""
    if order_is_final(line_item.state):
        return line_item.state
    opinion = _line_item_opinion(order, line_item)
    return opinion if opinion is not None and order_is_final(opinion) else None


def _line_item_opinion(order: Order, line_item: LineItem) -> OrderState | None:
    return parent_from_work_orders(
        order.profile,
        [order.work_orders[work_order_id].state for work_order_id in line_item.work_order_ids],
        has_tasks=any(order.work_orders[wo_id].task_ids for wo_id in line_item.work_order_ids),
    )


def line_item_state(order: Order, line_item: LineItem) -> OrderState:
    """What a line item shows, in this order of precedence:
    - a final state, its own or the one its work orders end it in (seed 001: completed with its
      domain orders; canceled or rejected by a command), once and for all;
    - the order's state while the order is still captured or enriched (seed 001: draft, submitted,
      enrichment, "system-assigned");
    - its own overlay (line-item hold or cancellation: seed 001, in-flight order change);
    - the order's overlay (on hold, awaiting information, revision, assessing or winding down a
      cancellation: seed 001 has each for line items too);
    - in progress when its work has started;
    - scheduled when all its work orders are scheduled and the order was approved, whatever its
      siblings do (seed 001: "passed all validations and approvals and is queued");
    - else the order's latest lifecycle state (new, acknowledged): without fulfillment progress
      a line item follows the order's lifecycle.
    """
    if order_is_final(line_item.state):
        return line_item.state
    if order.state in CAPTURE_STATES:
        return order.state
    opinion = _line_item_opinion(order, line_item)
    if opinion is not None and order_is_final(opinion):
        return opinion
    if line_item.overlays:
        return line_item.overlays[-1]
    if order.state in ORDER_OVERLAYS or order.state is _O.CANCELLATION_IN_PROGRESS:
        return order.state
    if opinion is not None:
        return opinion
    if (
        order.lifecycle is _O.ACKNOWLEDGED
        and line_item.work_order_ids
        and all(
            order.work_orders[work_order_id].state is WorkOrderState.SCHEDULED
            for work_order_id in line_item.work_order_ids
        )
    ):
        return _O.SCHEDULED
    return order.lifecycle
