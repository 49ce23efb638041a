"""The live update's event stream: fragments pushed when the order's version moves, only those that
changed; all of them when the page is older than the store; `gone` when the order is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from sse_starlette import ServerSentEvent

from tests.web.fake_reader import FakeReader, Feed, OrderEvents, order_in_fallout
from worker.web.live import fragment_updates

POLL_S = 0.01


class Pages:
    """What `render` returns: settable fragments, and how often it was asked."""

    def __init__(self, **fragments: str) -> None:
        self.fragments: dict[str, str] | None = fragments
        self.renders = 0

    async def render(self) -> dict[str, str] | None:
        self.renders += 1
        return None if self.fragments is None else dict(self.fragments)


def written(reader: FakeReader, order_id: str = "O-1") -> FakeReader:
    Feed(reader).send(*order_in_fallout(OrderEvents(order_id)))
    return reader


async def next_event(updates: AsyncGenerator[ServerSentEvent, None]) -> tuple[str | None, Any]:
    event = await asyncio.wait_for(anext(updates), timeout=2)
    return event.event, json.loads(str(event.data))


async def test_a_write_pushes_the_fragments_that_changed_and_only_those() -> None:
    reader = written(FakeReader())
    timeline = "<section id=timeline>1</section>"
    pages = Pages(tree="<section id=tree>a</section>", timeline=timeline)
    updates = fragment_updates(reader, "O-1", reader.versions["O-1"], pages.render, POLL_S)
    waiting = asyncio.ensure_future(next_event(updates))
    await asyncio.sleep(POLL_S * 5)
    assert not waiting.done()  # the page is current: nothing to send

    pages.fragments = {
        "tree": "<section id=tree>b</section>",
        "timeline": timeline,
    }
    reader.versions["O-1"] += 1
    kind, data = await waiting

    assert kind == "fragments"
    assert data == {
        "version": reader.versions["O-1"],
        "fragments": {"tree": "<section id=tree>b</section>"},
    }
    await updates.aclose()


async def test_a_page_older_than_the_store_gets_every_fragment_at_once() -> None:
    reader = written(FakeReader())
    pages = Pages(tree="t", parked="p")
    updates = fragment_updates(reader, "O-1", reader.versions["O-1"] - 1, pages.render, POLL_S)

    assert await next_event(updates) == (
        "fragments",
        {"version": reader.versions["O-1"], "fragments": {"tree": "t", "parked": "p"}},
    )
    await updates.aclose()


async def test_without_a_write_the_fragments_are_rendered_again_every_few_polls() -> None:
    """A service changes with no write of the order: the periodic render catches it."""
    reader = written(FakeReader())
    pages = Pages(services="new")
    updates = fragment_updates(
        reader, "O-1", reader.versions["O-1"], pages.render, POLL_S, refresh_polls=3
    )
    waiting = asyncio.ensure_future(next_event(updates))
    await asyncio.sleep(POLL_S * 10)
    renders_while_unchanged = pages.renders

    pages.fragments = {"services": "in service"}
    assert await waiting == (
        "fragments",
        {"version": reader.versions["O-1"], "fragments": {"services": "in service"}},
    )
    assert 3 <= renders_while_unchanged <= 5  # the first, then one every third poll
    await updates.aclose()


async def test_an_order_no_longer_in_the_store_ends_the_stream_with_gone() -> None:
    reader = written(FakeReader())
    pages = Pages(tree="t")
    updates = fragment_updates(reader, "O-1", reader.versions["O-1"], pages.render, POLL_S)
    waiting = asyncio.ensure_future(next_event(updates))
    await asyncio.sleep(POLL_S * 3)

    pages.fragments = None
    reader.versions["O-1"] += 1
    assert await waiting == ("gone", {})
    assert [event async for event in updates] == []


async def test_an_order_absent_from_the_start_is_gone_at_once() -> None:
    pages = Pages()
    pages.fragments = None
    updates = fragment_updates(FakeReader(), "O-1", 0, pages.render, POLL_S)

    assert [event.event async for event in updates] == ["gone"]
