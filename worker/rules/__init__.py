"""The functional core: every status decision, pure (no I/O, no clock, no asyncio).

Plain data in (the current snapshot and inputs), decisions out (the new snapshot, the events to
publish, refusals with their reasons). Time is the events' own: timers (a parked event's expiry, a
service's term end) fire in event time, as the inputs move it or as the shell advances it. The
worker, the tests and `order-status simulate` share it.

Where each decision lives: `derive` (every derived status) over `rollup` (sets of states),
`lifecycle` (order commands), `line_items` (the order's structure and line-item commands), `work`
(work orders and tasks), `fallout`, `versions` (stale updates), `changes` (what an input
publishes), `jeopardy` (which entities are at risk, and why), `order` (the engine and its timers),
`service` (service fulfillment and activity).
"""

from worker.rules.emit import Emitted, Outcome, Stream, output_id
from worker.rules.inputs import Input, Origin, Policy, event_key
from worker.rules.lifecycle import COMMANDS
from worker.rules.line_items import COMMANDS as LINE_ITEM_COMMANDS
from worker.rules.order import advance, apply, next_due
from worker.rules.service import (
    ServiceOutcome,
    ServiceRecord,
    advance_service,
    apply_service,
    next_service_due,
    term_end_cause,
)
from worker.rules.snapshot import Order, OrderRecord
from worker.rules.states import Profile

__all__ = [
    "COMMANDS",
    "LINE_ITEM_COMMANDS",
    "Emitted",
    "Input",
    "Order",
    "OrderRecord",
    "Origin",
    "Outcome",
    "Policy",
    "Profile",
    "ServiceOutcome",
    "ServiceRecord",
    "Stream",
    "advance",
    "advance_service",
    "apply",
    "apply_service",
    "event_key",
    "next_due",
    "next_service_due",
    "output_id",
    "term_end_cause",
]
