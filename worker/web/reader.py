"""What the plan pages read, as an interface: the worker's Redis store implements it.

Reads only, each a snapshot of one moment; a page reads the version before the record, so a write
landing in between is seen as a newer version by the live update and pushed again.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from worker.rules import OrderRecord
from worker.rules.service import ServiceRecord
from worker.rules.states import OrderState


class ListedOrder(BaseModel):
    """An order on one of the overview's lists."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    state: OrderState | None  # None: not created yet (only parked events so far)
    changed_at: AwareDatetime  # when the store last wrote the order


class Overview(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Per list name (a `PlanList` value: those `order_lists` returns, and `recently_changed`
    # for every write), its orders newest first, at most the limit asked for.
    lists: dict[str, list[ListedOrder]]
    # How many orders are in each state (states with none may be left out).
    counts: dict[OrderState, int]


class PlanReader(Protocol):
    async def order(self, order_id: str) -> OrderRecord | None: ...

    async def order_version(self, order_id: str) -> int:
        """0 when the order is absent; moves on every write of its record."""
        ...

    async def timeline(self, order_id: str, limit: int) -> list[dict[str, Any]]:
        """The order's most recent outbound CloudEvents, newest first, as their JSON objects: those
        of the status and ops streams (state changes with `caused_by`, `fallout.*`,
        `command.rejected`, `update.stale`, later `jeopardy.*`). The store may leave out what
        `timeline_entry` does not read (each state's labels)."""
        ...

    async def service(self, service_id: str) -> ServiceRecord | None: ...

    async def overview(self, limit: int) -> Overview: ...
