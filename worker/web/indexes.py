"""Which overview lists an order is on: a presentation decision, pure, called by the store on every
write of an order so that its list indexes change in the same atomic step as its snapshot."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from worker.rules import OrderRecord
from worker.rules.states import order_is_final


class PlanList(StrEnum):
    OPEN_FALLOUT = "open_fallout"
    ON_HOLD = "on_hold"  # on hold or awaiting information
    IN_CANCELLATION = "in_cancellation"  # assessing cancellation or cancellation in progress
    IN_JEOPARDY = "in_jeopardy"  # an open jeopardy episode of the order or one of its entities
    # Kept by the store for every write; never returned by `order_lists`.
    RECENTLY_CHANGED = "recently_changed"


# By value, so that states the rules gain later (enrichment on hold) count once they exist.
_HELD: Final = frozenset({"on_hold", "awaiting_information", "enrichment_on_hold"})
_IN_CANCELLATION: Final = frozenset({"assessing_cancellation", "cancellation_in_progress"})


def order_lists(record: OrderRecord) -> frozenset[PlanList]:
    """The lists the order belongs on now; none for an order not created yet or deleted.

    An order is held or in cancellation when it is, or when one of its line items not yet final is
    (a line-item hold or cancellation): the order manager has to act on it either way."""
    order = record.order
    if order is None or record.deleted:
        return frozenset()
    items = order.line_items.values()
    states = {order.state, *(item.state for item in items if not order_is_final(item.state))}
    lists = set()
    if any(fallout.open for task in order.tasks.values() for fallout in task.fallouts.values()):
        lists.add(PlanList.OPEN_FALLOUT)
    if states & _HELD:
        lists.add(PlanList.ON_HOLD)
    if states & _IN_CANCELLATION:
        lists.add(PlanList.IN_CANCELLATION)
    if order.jeopardy:
        lists.add(PlanList.IN_JEOPARDY)
    return frozenset(lists)
