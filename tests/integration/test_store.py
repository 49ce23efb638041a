"""The snapshot store on a real Redis: atomic record + outbox writes, compare-and-set, trimming."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.integration.harness import unique
from worker.rules import OrderRecord
from worker.store.snapshots import Committed, OutboxEntry, SnapshotStore, Write, outbox_key

pytestmark = pytest.mark.integration


def entries(*ids: str) -> list[OutboxEntry]:
    return [OutboxEntry(entry_id, "status", "O", f'{{"id":"{entry_id}"}}') for entry_id in ids]


async def write_entries(store: SnapshotStore[OrderRecord], order_id: str, *ids: str) -> Committed:
    """Read the order, then write it with outbox entries `ids`, as one batch does."""
    loaded = await store.load([order_id])
    record = OrderRecord(order_id=order_id)
    return await store.commit({order_id: Write(loaded[order_id], record, entries(*ids))})


@given(
    st.builds(
        OutboxEntry,
        st.text(),
        st.sampled_from(["status", "ops", "dead_letter"]),
        st.text(),
        st.text(),  # any payload, newlines included
        st.none() | st.dictionaries(st.text(), st.text(), min_size=1),
    )
)
def test_an_outbox_entry_reads_back_as_written(entry: OutboxEntry) -> None:
    assert OutboxEntry.decode(entry.encode().encode()) == entry


async def test_entries_an_earlier_attempt_left_come_first_and_trimming_drops_only_the_published(
    redis: Redis,
) -> None:
    store = SnapshotStore(redis, "order", OrderRecord)
    order_id = unique("O")
    committed = await write_entries(store, order_id, "a", "b")
    assert [e.id for e in committed.pending[order_id]] == ["a", "b"]
    # A crash before publishing: the next attempt finds a and b still pending, before its own.
    committed = await write_entries(store, order_id, "c")
    assert [e.id for e in committed.pending[order_id]] == ["a", "b", "c"]
    await store.acknowledge({order_id: committed.pending[order_id][:2]})
    assert await redis.lrange(outbox_key("order", order_id), 0, -1) == [
        entries("c")[0].encode().encode()
    ]


async def test_a_redis_that_lost_the_scripts_gets_them_again_and_runs_each_call_once(
    redis: Redis,
) -> None:
    store = SnapshotStore(redis, "order", OrderRecord)
    order_id = unique("O")
    await redis.script_flush()  # as after a Redis restart
    committed = await write_entries(store, order_id, "a")
    assert [e.id for e in committed.pending[order_id]] == ["a"]
    assert await redis.llen(outbox_key("order", order_id)) == 1
    await redis.script_flush()
    await store.acknowledge(committed.pending)
    assert await redis.llen(outbox_key("order", order_id)) == 0


async def test_a_write_based_on_a_stale_read_is_refused_and_reported_as_a_conflict(
    redis: Redis,
) -> None:
    store = SnapshotStore(redis, "order", OrderRecord)
    order_id = unique("O")
    stale = await store.load([order_id])
    await store.commit({order_id: Write(stale[order_id], OrderRecord(order_id=order_id), [])})
    committed = await store.commit(
        {order_id: Write(stale[order_id], OrderRecord(order_id=order_id), entries("x"))}
    )
    assert committed.conflicts == [order_id]
    assert await redis.llen(outbox_key("order", order_id)) == 0


async def test_a_record_this_store_wrote_is_reused_and_a_write_on_a_stale_one_is_refused(
    redis: Redis,
) -> None:
    mine = SnapshotStore(redis, "order", OrderRecord, cached=10)
    other = SnapshotStore(redis, "order", OrderRecord)
    order_id = unique("O")
    written = OrderRecord(order_id=order_id, applied={"e1"})
    await mine.commit({order_id: Write((await mine.load([order_id]))[order_id], written, [])})

    again = (await mine.load([order_id]))[order_id]
    assert again.record is written  # neither read nor parsed again
    assert again.version == "1"

    # Another instance (after a rebalance) writes a newer version: a write based on the cached
    # record is refused as a conflict, and the entity is then read whole.
    theirs = OrderRecord(order_id=order_id, applied={"e1", "e2"})
    await other.commit({order_id: Write((await other.load([order_id]))[order_id], theirs, [])})
    stale = OrderRecord(order_id=order_id, applied={"e1", "e3"})
    committed = await mine.commit({order_id: Write(again, stale, entries("x"))})
    assert committed.conflicts == [order_id]
    assert await redis.llen(outbox_key("order", order_id)) == 0
    fresh = (await mine.load([order_id]))[order_id]
    assert (fresh.version, fresh.record) == ("2", theirs)


async def test_the_cache_keeps_only_the_most_recently_written_records(redis: Redis) -> None:
    store = SnapshotStore(redis, "order", OrderRecord, cached=2)
    order_ids = [unique("O") for _ in range(3)]
    records = {order_id: OrderRecord(order_id=order_id) for order_id in order_ids}
    loaded = await store.load(order_ids)
    await store.commit({oid: Write(loaded[oid], records[oid], []) for oid in order_ids})

    reread = await store.load(order_ids)
    assert reread[order_ids[0]].record is not records[order_ids[0]]  # evicted: parsed again
    assert reread[order_ids[0]].record == records[order_ids[0]]
    assert [reread[oid].record is records[oid] for oid in order_ids[1:]] == [True, True]
