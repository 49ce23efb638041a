"""The functional core: every status decision, pure (no I/O, no clock, no asyncio).

Plain data in (the current snapshot and events), decisions out (the new snapshot, the events to
publish, refusals with their reasons). The worker, the tests and `order-status simulate` share it.
"""

from worker.rules.order import COMMANDS, Emitted, Outcome, Stream, apply, expire_parked, output_id
from worker.rules.snapshot import Order, OrderRecord
from worker.rules.states import Profile

__all__ = [
    "COMMANDS",
    "Emitted",
    "Order",
    "OrderRecord",
    "Outcome",
    "Profile",
    "Stream",
    "apply",
    "expire_parked",
    "output_id",
]
