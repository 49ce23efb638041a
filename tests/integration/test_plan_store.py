"""The plan view's reader on the real worker's Redis (`worker.store.plan`): what the orders stage
writes with each snapshot reads back as the in-memory model of the store (`FakeReader`, fed the
same events through `simulate`) says, and every index stays bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from schemas.inbound import parse_order_event
from tests.integration.harness import RunningWorker, publish, unique
from tests.web.fake_reader import FakeReader, Feed, Json, OrderEvents, order_in_fallout
from worker import rules
from worker.rules import OrderRecord
from worker.rules.states import OrderState
from worker.settings import Settings
from worker.store import codecs, plan
from worker.store.groups import GroupWrite, StageStore
from worker.store.plan import PlanStore, plan_ops
from worker.store.reader import StageCounts, record_topology
from worker.web import PlanList

pytestmark = pytest.mark.integration


async def test_the_plan_reads_what_the_worker_wrote_with_each_snapshot(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    in_fallout, held, deleted = (OrderEvents(unique(name)) for name in ("fallout", "held", "gone"))
    batches: list[list[Json]] = [
        order_in_fallout(in_fallout, service_prefix=unique("SVC")),
        [
            *order_in_fallout(held, service_prefix=unique("SVC")),
            held.command("order.hold.requested", reason="customer away"),
        ],
        [
            deleted.make("order.created", line_items=[]),
            deleted.command("order.deleted"),
        ],
        [in_fallout.make("task.fallout.resolved", task_id="T-2", fallout_id="FO-1")],
    ]
    expected = FakeReader()
    feed = Feed(expected)
    for events in batches:
        feed.send(*events)
        await publish(producer, settings, events)
    await worker.applied("orders", sum(len(events) for events in batches))
    store = PlanStore(redis, settings.group_id)

    for order_id, record in expected.records.items():
        read = await store.order(order_id)
        assert read is not None
        assert _without_origins(read) == _without_origins(record)
        assert await store.order_version(order_id) > 0
        timeline = await store.timeline(order_id, 100)
        kept = expected.timelines[order_id][: settings.web.timeline_events]  # the newest
        assert [e["id"] for e in timeline] == [e["id"] for e in kept]
        assert await store.timeline(order_id, 2) == timeline[:2]
    assert await store.order_version(unique("absent")) == 0
    assert await store.timeline(unique("absent"), 10) == []

    overview, model = await store.overview(10), await expected.overview(10)
    assert (
        overview.counts
        == model.counts
        == {
            OrderState.IN_PROGRESS: 1,
            OrderState.ON_HOLD: 1,
        }
    )
    for name in PlanList:
        listed = {(o.order_id, o.state) for o in overview.lists[name]}
        assert listed == {(o.order_id, o.state) for o in model.lists.get(name, [])}, name
    assert {o.order_id for o in overview.lists[PlanList.ON_HOLD]} == {held.order_id}
    assert {o.order_id for o in overview.lists[PlanList.OPEN_FALLOUT]} == {held.order_id}


async def test_every_index_is_bounded_and_lists_newest_first(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "LIST_CAP", 3)
    namespace = unique("plan")
    await record_topology(redis, namespace, StageCounts(2, 1, 1))
    store: StageStore[OrderRecord] = StageStore(
        redis, namespace, "orders", codecs.ORDERS.encode, codecs.ORDERS.decode
    )
    start = datetime(2026, 12, 1, tzinfo=UTC)
    # Five orders in fallout, written a second apart into two groups; then O-0 five more times
    # (its events again: nothing changes but the time it was written).
    writes = [*(f"O-{n}" for n in range(5)), *(["O-0"] * 5)]
    for second, order_id in enumerate(writes):
        group = int(order_id[-1]) % 2
        before = (await store.load({group: [order_id]}))[group][order_id]
        events = order_in_fallout(OrderEvents(order_id, start))
        outcome = rules.apply(
            before,
            order_id,
            [rules.Input(parse_order_event(json.dumps(event)), start) for event in events],
            rules.Policy(),
        )
        batch = GroupWrite((await store.recover(group)).meta, {order_id: outcome.record})
        batch.ops.extend(
            plan_ops(
                store.keys(group).tag,
                order_id,
                before,
                outcome.record,
                outcome.emitted,
                start + timedelta(seconds=second),
                timeline_events=4,
            )
        )
        assert (await store.commit({group: batch}))[group].written
    reader = PlanStore(redis, namespace)

    overview = await reader.overview(10)
    recent = [listed.order_id for listed in overview.lists[PlanList.RECENTLY_CHANGED]]
    # Each group keeps its newest three: O-0, O-4, O-2 of the even group; O-3, O-1 of the odd.
    assert recent == ["O-0", "O-4", "O-3", "O-2", "O-1"]
    assert overview.lists[PlanList.RECENTLY_CHANGED][0].changed_at == start + timedelta(seconds=9)
    assert [o.order_id for o in (await reader.overview(2)).lists[PlanList.OPEN_FALLOUT]] == [
        "O-0",
        "O-4",
    ]
    assert overview.counts == {OrderState.IN_PROGRESS: 5}  # O-0 counted once, whatever its writes
    assert await reader.order_version("O-0") == 6
    assert await reader.order_version("O-1") == 1
    timeline = await reader.timeline("O-0", 10)
    assert len(timeline) == 4
    assert timeline[0]["type"] == "fallout.reassigned"  # the newest kept


def _without_origins(record: OrderRecord) -> dict[str, object]:
    """The record but where and when its parked events were received (simulate has no broker)."""
    return record.model_dump(exclude={"parked": {"__all__": {"origin", "received_at"}}})


async def test_a_namespace_no_worker_wrote_reads_as_empty(redis: Redis) -> None:
    store = PlanStore(redis, unique("never-ran"))

    overview = await store.overview(10)
    assert overview.lists == {name.value: [] for name in PlanList}
    assert overview.counts == {}
    assert await store.order("O-1") is None
    assert await store.order_version("O-1") == 0
    assert await store.timeline("O-1", 10) == []
