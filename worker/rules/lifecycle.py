"""Order lifecycle commands (DOMAIN.md "Commands"), from upstream order capture and from people:
where each may be given, and what it does. A command given where it is not allowed changes
nothing and is answered with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from schemas import inbound as ev
from worker.rules.changes import Actor
from worker.rules.derive import line_item_ending, refresh, refresh_line_items
from worker.rules.refusal import Refused
from worker.rules.rollup import order_ending
from worker.rules.snapshot import Order, OrderRecord
from worker.rules.states import ORDER_OVERLAYS, OrderState, Profile, order_is_final
from worker.rules.work import cancel_work_orders, require_order, wind_down

_O = OrderState
_NON_FINAL: Final = frozenset(state for state in OrderState if not order_is_final(state))
_WORKABLE: Final = frozenset({_O.NEW, _O.ACKNOWLEDGED, _O.IN_PROGRESS})
"""Where hold, information request and revision may start: captured, not final, not overlaid."""


@dataclass(frozen=True, slots=True)
class Command:
    """One order lifecycle command: the states it may be given in, and what it does."""

    allowed_from: frozenset[OrderState]
    act: Callable[[Order], None]


def _to(state: OrderState) -> Callable[[Order], None]:
    def move(order: Order) -> None:
        order.move(state)
        refresh(order)

    return move


def _submit(order: Order) -> None:
    # Seed 001: submitted, then new as soon as capture is complete; an order created for
    # enrichment waits in submitted for its enrichment to start (and end).
    order.move(_O.SUBMITTED if order.enrichment else _O.NEW)
    refresh(order)


def _overlay(state: OrderState) -> Callable[[Order], None]:
    def enter(order: Order) -> None:
        order.held_states.append(order.state)
        order.move(state)
        refresh(order)  # line items show it

    return enter


def _leave_overlay(order: Order) -> None:
    order.move(order.held_states.pop())
    refresh(order)  # the rollup the overlay held takes over again


def _reject(order: Order) -> None:
    """Seed 001/002: the fulfillment manager rejected the order: every line item is rejected,
    every work order and task canceled."""
    cancel_work_orders(order, list(order.work_orders))
    for line_item_id, line_item in order.line_items.items():
        if not order_is_final(line_item.state):
            rejected = order.line_item_to_change(line_item_id)
            rejected.state, rejected.overlays = _O.REJECTED, []
    order.held_states.clear()
    order.move(_O.REJECTED)


def _cancel(order: Order) -> None:
    """A manager's direct cancel: every work order and task not final is canceled at once; a line
    item ends as its work orders now say (completed when some were, seed 003), canceled without
    any; the order ends as its line items do, like an approved cancellation that has wound down."""
    cancel_work_orders(order, list(order.work_orders))
    for line_item_id, line_item in order.line_items.items():
        if not order_is_final(line_item.state):
            ended = order.line_item_to_change(line_item_id)
            ended.state, ended.overlays = line_item_ending(order, line_item) or _O.CANCELED, []
    order.held_states.clear()
    order.move(order_ending(order.profile, [li.state for li in order.line_items.values()]))


def _approve_cancellation(order: Order) -> None:
    wind_down(order, list(order.work_orders))
    # The order's cancellation supersedes the line items' own overlays; a line item without work
    # orders has nothing to wind down.
    for line_item_id, line_item in order.line_items.items():
        if not order_is_final(line_item.state):
            winding_down = order.line_item_to_change(line_item_id)
            winding_down.overlays = []
            if not line_item.work_order_ids:
                winding_down.state = _O.CANCELED
    order.held_states.clear()
    order.move(_O.CANCELLATION_IN_PROGRESS)
    refresh(order)


COMMANDS: Final[dict[str, Command]] = {
    "order.submitted": Command(frozenset({_O.DRAFT}), _submit),
    "order.enrichment.started": Command(frozenset({_O.SUBMITTED}), _to(_O.ENRICHMENT_IN_PROGRESS)),
    "order.enrichment.held": Command(
        frozenset({_O.ENRICHMENT_IN_PROGRESS}), _to(_O.ENRICHMENT_ON_HOLD)
    ),
    "order.enrichment.resumed": Command(
        frozenset({_O.ENRICHMENT_ON_HOLD}), _to(_O.ENRICHMENT_IN_PROGRESS)
    ),
    "order.enrichment.completed": Command(frozenset({_O.ENRICHMENT_IN_PROGRESS}), _to(_O.NEW)),
    "order.approved": Command(frozenset({_O.NEW}), _to(_O.ACKNOWLEDGED)),
    "order.rejected": Command(frozenset({_O.NEW}), _reject),
    "order.hold.requested": Command(_WORKABLE, _overlay(_O.ON_HOLD)),
    "order.resumed": Command(frozenset({_O.ON_HOLD}), _leave_overlay),
    "order.information.requested": Command(_WORKABLE, _overlay(_O.AWAITING_INFORMATION)),
    "order.information.received": Command(frozenset({_O.AWAITING_INFORMATION}), _leave_overlay),
    "order.revision.started": Command(_WORKABLE, _overlay(_O.REVISION_IN_PROGRESS)),
    "order.revision.completed": Command(frozenset({_O.REVISION_IN_PROGRESS}), _leave_overlay),
    # A cancellation may be requested over another overlay (an order on hold); denial restores it.
    "order.cancellation.requested": Command(
        _NON_FINAL - {_O.DRAFT, _O.ASSESSING_CANCELLATION, _O.CANCELLATION_IN_PROGRESS},
        _overlay(_O.ASSESSING_CANCELLATION),
    ),
    "order.cancellation.approved": Command(
        frozenset({_O.ASSESSING_CANCELLATION}), _approve_cancellation
    ),
    "order.cancellation.denied": Command(frozenset({_O.ASSESSING_CANCELLATION}), _leave_overlay),
    "order.canceled": Command(_NON_FINAL, _cancel),
}
"""Every lifecycle command but delete and manual state change, as data: one place to audit them."""


def command(record: OrderRecord, event: ev.OrderCommand) -> Actor:
    order = require_order(record)
    actor = (event.data.actor, event.data.reason)
    if event.type == "order.deleted":
        if order.state is not _O.DRAFT:
            raise Refused(f"only a draft order may be deleted; the order is {order.state}")
        record.deleted = True
        return actor
    if event.type == "order.canceled" and order.profile is Profile.PSA and order.state is _O.DRAFT:
        # Seed 000: a draft service order cannot be canceled; it may be deleted instead.
        raise Refused("a draft order cannot be canceled in the psa profile; delete it instead")
    command = COMMANDS[event.type]
    if order.state not in command.allowed_from:
        raise Refused(f"{event.type} is not allowed when the order is {order.state}")
    command.act(order)
    return actor


def set_state(record: OrderRecord, event: ev.OrderStateSet) -> Actor:
    """PSA: "you can change the status manually at any time", to any non-final state."""
    order = require_order(record)
    target = event.data.state
    if order_is_final(order.state):
        raise Refused(f"the order is {order.state}, a final state: it never reopens")
    if order_is_final(target):
        raise Refused(f"{target} is final: reach it by its command or by the work orders")
    if target is _O.SCHEDULED:
        raise Refused("scheduled is a line item state")
    if target in ORDER_OVERLAYS:
        if order.state not in ORDER_OVERLAYS:
            order.held_states.append(order.state)
    else:
        order.held_states.clear()
    order.move(target)
    # Line items show the order's overlay or lifecycle; the order keeps the state given.
    refresh_line_items(order)
    return event.data.actor, event.data.reason
