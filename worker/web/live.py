"""The live order page: server-sent events carrying the fragments that changed.

Each open page polls its order's version (one small read a second) and, when it moves, renders the
page's fragments again and sends those whose HTML changed. Services are written by the service stage
after the order (a service goes in service after its line item completes, with no write of the
order), so every `refresh_polls` polls the fragments are rendered again even if the version stayed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Final

from sse_starlette import ServerSentEvent

from worker.web.reader import PlanReader

# Rendered fragments by element id; None once the order is no longer in the store.
Render = Callable[[], Awaitable[dict[str, str] | None]]

REFRESH_POLLS: Final = 10


async def fragment_updates(
    reader: PlanReader,
    order_id: str,
    page_version: int,
    render: Render,
    poll_interval_s: float,
    refresh_polls: int = REFRESH_POLLS,
) -> AsyncGenerator[ServerSentEvent, None]:
    """`fragments` events ({"version", "fragments": {id: html}}) for a page rendered at
    `page_version`, until the order is gone (a `gone` event) or the client leaves.

    The version is read before the fragments are rendered, so a write between the two is seen as a
    newer version on the next poll and sent again: an update is never lost, at worst sent twice."""
    version = await reader.order_version(order_id)
    sent = await render()
    if sent is None:
        yield _GONE
        return
    if version != page_version:  # written since the page was read: replace every fragment
        yield _fragments(version, sent)
    polls = 0
    while True:
        await asyncio.sleep(poll_interval_s)
        polls += 1
        current = await reader.order_version(order_id)
        if current == version and polls % refresh_polls:
            continue
        version = current
        rendered = await render()
        if rendered is None:
            yield _GONE
            return
        changed = {name: html for name, html in rendered.items() if sent.get(name) != html}
        sent = rendered
        if changed:
            yield _fragments(version, changed)


_GONE: Final = ServerSentEvent(event="gone", data="{}")


def _fragments(version: int, fragments: dict[str, str]) -> ServerSentEvent:
    return ServerSentEvent(
        event="fragments", data=json.dumps({"version": version, "fragments": fragments})
    )
