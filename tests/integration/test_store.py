"""A stage's state in Redis (`worker.store.groups`): one atomic write per group fenced by its
version, outbox entries acknowledged by exact id, timers, and what recovery finds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.integration.harness import unique
from worker.engine.records import Outgoing
from worker.rules import OrderRecord
from worker.store import codecs
from worker.store.groups import GroupMeta, GroupWrite, OutboxEntry, StageStore

pytestmark = pytest.mark.integration

headers = st.lists(st.tuples(st.text(), st.none() | st.binary()))


@given(
    st.builds(
        OutboxEntry,
        st.uuids().map(str),
        st.builds(
            Outgoing,
            st.text(),
            st.none() | st.binary(),
            st.none() | st.binary(),  # newlines and any byte included
            headers,
            st.none() | st.integers(0, 1000),
        ),
        st.text(),
    )
)
def test_an_outbox_entry_reads_back_as_written(entry: OutboxEntry) -> None:
    decoded = OutboxEntry.decode(entry.encode())
    assert decoded.id == entry.id
    assert decoded.kind == entry.kind
    assert decoded.record.headers == list(entry.record.headers)
    assert (decoded.record.topic, decoded.record.key, decoded.record.value) == (
        entry.record.topic,
        entry.record.key,
        entry.record.value,
    )
    assert decoded.record.partition == entry.record.partition


def store(redis: Redis) -> StageStore[OrderRecord]:
    return StageStore(redis, unique("ns"), "orders", codecs.ORDERS.encode, codecs.ORDERS.decode, 10)


def entry(entry_id: str, payload: bytes = b"{}") -> OutboxEntry:
    return OutboxEntry(entry_id, Outgoing("topic", b"key", payload, []), "test")


async def commit(
    groups: StageStore[OrderRecord], meta: GroupMeta, *entries: OutboxEntry
) -> tuple[bool, int]:
    batch = GroupWrite(meta, {"O-1": OrderRecord(order_id="O-1")})
    batch.ops.extend(("R", groups.keys(0).outbox, e.encode()) for e in entries)
    result = (await groups.commit({0: batch}))[0]
    return result.written, result.leftovers


async def test_a_write_read_at_an_older_version_is_refused(redis: Redis) -> None:
    groups = store(redis)
    first = (await groups.recover(0)).meta
    stale = GroupMeta(version=first.version)
    assert await commit(groups, first, entry("a")) == (True, 0)
    assert first.version == 1
    # Another owner that read version 0 (a stale instance after a rebalance) is refused.
    assert await commit(groups, stale, entry("b")) == (False, 0)
    assert (groups.take_conflicts(), groups.take_conflicts()) == (1, 0)  # counted, then taken
    assert [e.id for e in (await groups.recover(0)).leftovers] == ["a"]


async def test_acknowledging_drops_exactly_the_published_entries_from_the_head(
    redis: Redis,
) -> None:
    groups = store(redis)
    meta = (await groups.recover(0)).meta
    a, b, c = (str(index) * 8 + "-0000-4000-8000-000000000000" for index in range(3))
    # b's payload holds a's id: matching is by the entry's own id, never by text inside it.
    assert await commit(groups, meta, entry(a), entry(b, a.encode()), entry(c)) == (True, 0)
    await groups.acknowledge({0: [b, a]})  # a and b, acknowledged in any order
    assert [e.id for e in (await groups.recover(0)).leftovers] == [c]
    await groups.acknowledge({0: [a]})  # already gone: nothing else is touched
    assert [e.id for e in (await groups.recover(0)).leftovers] == [c]
    # The next write says how many an earlier attempt left: they are published first.
    meta = (await groups.recover(0)).meta
    assert await commit(groups, meta, entry("d")) == (True, 1)
    assert [e.id for e in await groups.leftovers(0, 1)] == [c]


async def test_records_read_back_through_the_cache_and_from_redis(redis: Redis) -> None:
    groups = store(redis)
    meta = (await groups.recover(0)).meta
    await commit(groups, meta)
    assert (await groups.load({0: ["O-1", "O-2"]}))[0] == {
        "O-1": OrderRecord(order_id="O-1"),
        "O-2": None,
    }
    assert (groups.hits, groups.misses) == (1, 1)
    groups.forget(0)
    assert (await groups.load({0: ["O-1"]}))[0] == {"O-1": OrderRecord(order_id="O-1")}
    assert groups.misses == 2


async def test_timers_due_before_a_moment_and_the_first_one_after_recovery(redis: Redis) -> None:
    groups = store(redis)
    meta = (await groups.recover(0)).meta
    timers = groups.keys(0).timers
    batch: GroupWrite[OrderRecord] = GroupWrite(meta, {})
    batch.ops.extend([("Z", timers, 1000, "O-1"), ("Z", timers, 2000, "O-2"), ("z", timers, "O-3")])
    assert (await groups.commit({0: batch}))[0].written
    assert await groups.due({0: 1500}, 10) == {0: ["O-1"]}
    assert await groups.due({0: 2000}, 10) == {0: ["O-1"]}  # due strictly before
    assert (await groups.recover(0)).first_due_ms == 1000


async def test_scripts_flushed_from_redis_are_loaded_again(redis: Redis) -> None:
    groups = store(redis)
    meta = (await groups.recover(0)).meta
    await redis.script_flush()
    assert await commit(groups, meta, entry("a")) == (True, 0)
    await redis.script_flush()
    await groups.acknowledge({0: ["a"]})
    assert (await groups.recover(0)).leftovers == []
