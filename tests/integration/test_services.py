"""Service fulfillment status end to end (DOMAIN.md, "Service fulfillment status"): order events in,
the order stage's service actions, the service stage, billing's non-pay events and the term-expiry
scheduler, with `fulfillment.service-status.v1` and the Redis snapshots checked at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from redis.asyncio import Redis

from tests.integration.harness import (
    Consumed,
    RunningWorker,
    consume_until,
    event,
    outbox_entries,
    publish,
    snapshots,
    unique,
)
from worker.app import Worker
from worker.rules import output_id
from worker.rules.service import ServiceRecord, term_end_cause
from worker.settings import Settings
from worker.simulate import simulate

pytestmark = pytest.mark.integration

Body = dict[str, Any]
Done = Callable[[list[Consumed]], bool]
Sent = list[str]

_PLUS_TWO = timezone(timedelta(hours=2))


def event_key(body: dict[str, Any]) -> str:
    """An event's identity, which output ids derive from (`worker.rules.event_key`)."""
    return f"{body['source']} {body['id']}"


# --- building inbound events -------------------------------------------------------------------


def at(minute: int) -> str:
    return f"2026-11-21T11:{minute:02d}:00Z"


def line(
    line_item_id: str,
    service_id: str,
    *,
    action: str = "add",
    product_id: str | None = None,
    location_id: str | None = None,
    term: dict[str, Any] | None = None,
) -> Body:
    """A line item acting on a service, with one scheduled work order holding one open task."""
    item: Body = {
        "line_item_id": line_item_id,
        "action": action,
        "service_id": service_id,
        "work_orders": [
            {
                "work_order_id": f"WO-{line_item_id}",
                "state": "scheduled",
                "tasks": [{"task_id": f"T-{line_item_id}", "state": "open"}],
            }
        ],
    }
    for name, value in (("product_id", product_id), ("location_id", location_id), ("term", term)):
        if value is not None:
            item[name] = value
    return item


def created(
    order_id: str, account_id: str, items: list[Body], *, id_: str | None = None, minute: int = 0
) -> Body:
    data = {"order_id": order_id, "state": "new", "account_id": account_id, "line_items": items}
    return event("order.created", data, id_=id_, time=at(minute))


def fulfilled(order_id: str, items: list[Body]) -> list[Body]:
    """Approve the order and close every line item's task: each line item completes."""
    events = [event("order.approved", {"order_id": order_id}, time=at(1))]
    for index, item in enumerate(items):
        task = {
            "order_id": order_id,
            "task_id": f"T-{item['line_item_id']}",
            "state": "closed_complete",
        }
        events.append(event("task.updated", task, time=at(2 + index)))
    return events


def canceled(order_id: str, minute: int = 30) -> Body:
    data = {"order_id": order_id, "actor": "tests", "reason": "customer withdrew"}
    return event("order.canceled", data, time=at(minute))


def nonpay(kind: str, service_id: str, *, id_: str | None = None) -> Body:
    return event(f"service.nonpay.{kind}", {"service_id": service_id}, id_=id_, time=at(40))


async def bill(producer: AIOKafkaProducer, settings: Settings, events: list[Body]) -> None:
    """Billing publishes on its own topic, keyed by service id (`publish` keys by order id)."""
    for billing_event in events:
        await producer.send_and_wait(
            settings.topics.billing,
            json.dumps(billing_event).encode(),
            key=billing_event["data"]["service_id"].encode(),
        )


def term(end: datetime, renewal: str = "expires", period_days: int | None = None) -> Body:
    # An offset other than UTC on purpose: the schedule keeps UTC, the service its own form.
    body: Body = {"end": end.astimezone(_PLUS_TWO).isoformat(), "renewal": renewal}
    if period_days is not None:
        body["period_days"] = period_days
    return body


# --- reading outbound events -------------------------------------------------------------------


def bodies(records: list[Consumed]) -> list[Body]:
    return [record.json() for record in records]


def changes(records: list[Consumed], service_id: str) -> list[Body]:
    """The data of every `service.fulfillment.changed` of one service, in published order."""
    return [
        body["data"]
        for body in bodies(records)
        if body["type"] == "service.fulfillment.changed" and body["subject"] == service_id
    ]


def moves(records: list[Consumed], service_id: str) -> list[tuple[str | None, str]]:
    return [(data["previous"], data["state"]) for data in changes(records, service_id)]


def activity(records: list[Consumed], kind: str, owner_id: str) -> list[Body]:
    return [
        body["data"]
        for body in bodies(records)
        if body["type"] == f"{kind}.activity.changed" and body["data"][f"{kind}_id"] == owner_id
    ]


def of_type(records: list[Consumed], type_: str, subject: str) -> list[Body]:
    return [
        body["data"]
        for body in bodies(records)
        if body["type"] == type_ and body["subject"] == subject
    ]


def reached(service_id: str, state: str) -> Done:
    return lambda seen: any(data["state"] == state for data in changes(seen, service_id))


def every(*conditions: Done) -> Done:
    return lambda seen: all(condition(seen) for condition in conditions)


def activity_is(kind: str, owner_id: str, active: bool) -> Done:
    return lambda seen: any(data["active"] is active for data in activity(seen, kind, owner_id))


async def service_status(settings: Settings, done: Done) -> list[Consumed]:
    return await consume_until(settings, [settings.topics.service_status], done)


async def settle() -> None:
    """Only where a test asserts that something did *not* happen: give it a moment to."""
    await asyncio.sleep(0.5)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async def check() -> bool:
        return condition()

    await poll(check, timeout_s)


async def poll(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Wait until `check` holds, looking again every 50 ms."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def account_is(
    redis: Redis, settings: Settings, account: str, active: bool, services: set[str]
) -> bool:
    record = await snapshots(redis, settings).activity("account", account)
    return record is not None and (record.active, record.active_services) == (active, services)


async def service(redis: Redis, settings: Settings, service_id: str) -> ServiceRecord:
    record = await snapshots(redis, settings).service(service_id)
    assert record is not None
    assert record.service is not None
    return record


# --- 1. provision ------------------------------------------------------------------------------


async def test_an_add_line_item_provisions_the_service_and_activates_the_account(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id, service_id = unique("O"), unique("SVC")
    account, product, location = unique("ACC"), unique("PRD"), unique("LOC")
    items = [line("LI-1", service_id, product_id=product, location_id=location)]
    order = created(order_id, account, items)
    await publish(producer, settings, [order, *fulfilled(order_id, items)])

    records = await service_status(settings, reached(service_id, "in_service"))

    first, second = changes(records, service_id)
    assert (first["previous"], first["state"], first["active"]) == (None, "new", True)
    assert first["tmf_state"] == "reserved"
    assert (second["previous"], second["state"], second["active"]) == ("new", "in_service", True)
    assert second["tmf_state"] == "active"
    for data in (first, second):
        assert (data["account_id"], data["product_id"], data["location_id"]) == (
            account,
            product,
            location,
        )
        assert (data["order_id"], data["line_item_id"]) == (order_id, "LI-1")
        assert data["caused_by"]
    # The cause is the order stage's service action, which names the upstream order event.
    assert first["caused_by"] == output_id(event_key(order), "service.action.created", "LI-1")
    actions = await consume_until(
        settings,
        [settings.topics.service_actions],
        lambda seen: len([record for record in seen if "id" in record.json()]) >= 2,
    )
    by_id = {body["id"]: body for body in bodies(actions) if "id" in body}
    assert by_id[first["caused_by"]]["data"]["caused_by"] == order["id"]
    assert by_id[second["caused_by"]]["data"]["outcome"] == "completed"
    assert {record.key for record in records if record.json()["subject"] == service_id} == {
        service_id.encode()
    }

    await settle()
    records = await service_status(settings, reached(service_id, "in_service"))
    for kind, owner in (("account", account), ("product", product), ("location", location)):
        flips = activity(records, kind, owner)
        assert [data["active"] for data in flips] == [True], kind  # once, when it became new
        assert flips[0]["caused_by"] == first["caused_by"]

    record = await service(redis, settings, service_id)
    assert record.service is not None
    assert record.service.state == "in_service"
    assert [(c.previous, c.state) for c in record.service.history] == [
        (None, "new"),
        ("new", "in_service"),
    ]
    assert record.service.orders == [order_id]
    assert (record.service.account_id, record.service.product_id) == (account, product)
    account_record = await snapshots(redis, settings).activity("account", account)
    assert account_record is not None
    assert account_record.active
    assert account_record.active_services == {service_id}
    assert await outbox_entries(redis, settings) == 0


# --- 2. cancel before service ------------------------------------------------------------------


async def test_an_order_canceled_while_the_service_is_new_cancels_the_service(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id, service_id, account = unique("O"), unique("SVC"), unique("ACC")
    await publish(producer, settings, [created(order_id, account, [line("LI-1", service_id)])])
    await service_status(settings, reached(service_id, "new"))

    cancel = canceled(order_id)
    await publish(producer, settings, [cancel])
    records = await service_status(
        settings,
        every(reached(service_id, "order_canceled"), activity_is("account", account, False)),
    )

    assert moves(records, service_id) == [(None, "new"), ("new", "order_canceled")]
    last = changes(records, service_id)[-1]
    assert (last["active"], last["tmf_state"]) == (False, "terminated")
    assert last["order_id"] == order_id
    assert last["caused_by"] == output_id(event_key(cancel), "service.action.canceled", "LI-1")
    assert [data["active"] for data in activity(records, "account", account)] == [True, False]
    record = await service(redis, settings, service_id)
    assert record.service is not None
    assert record.service.state == "order_canceled"


# --- 3. disconnect by a second order -----------------------------------------------------------


async def test_a_disconnect_line_item_of_a_second_order_cancels_the_service_by_user(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    first_order, second_order = unique("O"), unique("O")
    service_id, account = unique("SVC"), unique("ACC")
    add = [line("LI-A", service_id)]
    await publish(
        producer, settings, [created(first_order, account, add), *fulfilled(first_order, add)]
    )
    await service_status(settings, reached(service_id, "in_service"))

    disconnect = [line("LI-B", service_id, action="disconnect")]
    await publish(
        producer,
        settings,
        [created(second_order, account, disconnect), *fulfilled(second_order, disconnect)],
    )
    records = await service_status(
        settings,
        every(reached(service_id, "canceled_by_user"), activity_is("account", account, False)),
    )

    assert moves(records, service_id) == [
        (None, "new"),
        ("new", "in_service"),
        ("in_service", "canceled_by_user"),
    ]
    last = changes(records, service_id)[-1]
    assert (last["active"], last["tmf_state"]) == (False, "terminated")
    assert (last["order_id"], last["line_item_id"]) == (second_order, "LI-B")
    record = await service(redis, settings, service_id)
    assert record.service is not None
    assert record.service.state == "canceled_by_user"
    assert record.service.orders == [first_order, second_order]
    assert [c.order_id for c in record.service.history] == [first_order, first_order, second_order]


# --- 4. non-pay --------------------------------------------------------------------------------


async def test_billing_suspends_restores_and_cancels_for_non_pay_and_a_bad_restore_is_refused(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id, account = unique("O"), unique("ACC")
    billed, untouched = unique("SVC"), unique("SVC")
    items = [line("LI-1", billed), line("LI-2", untouched)]
    await publish(
        producer, settings, [created(order_id, account, items), *fulfilled(order_id, items)]
    )
    await service_status(
        settings, every(reached(billed, "in_service"), reached(untouched, "in_service"))
    )

    bad_restore = nonpay("restored", untouched)
    await bill(
        producer,
        settings,
        [
            nonpay("suspended", billed),
            nonpay("restored", billed),
            nonpay("canceled", billed),
            bad_restore,
        ],
    )
    records = await consume_until(
        settings,
        [settings.topics.service_status, settings.topics.ops],
        every(
            reached(billed, "canceled_for_non_pay"),
            lambda seen: bool(of_type(seen, "command.rejected", untouched)),
        ),
    )

    assert moves(records, billed)[2:] == [
        ("in_service", "suspended_for_non_pay"),
        ("suspended_for_non_pay", "in_service"),
        ("in_service", "canceled_for_non_pay"),
    ]
    suspended, restored, ended = changes(records, billed)[2:]
    assert (suspended["active"], suspended["tmf_state"]) == (False, "inactive")
    assert (restored["active"], restored["tmf_state"]) == (True, "active")
    assert (ended["active"], ended["tmf_state"]) == (False, "terminated")

    (rejected,) = of_type(records, "command.rejected", untouched)
    assert rejected["service_id"] == untouched
    assert rejected["command"] == "service.nonpay.restored"
    assert rejected["caused_by"] == bad_restore["id"]
    assert rejected["reason"]
    ops_keys = {r.key for r in records if r.topic == settings.topics.ops}
    assert ops_keys == {untouched.encode()}

    await settle()
    records = await service_status(settings, reached(billed, "canceled_for_non_pay"))
    assert moves(records, untouched) == [(None, "new"), ("new", "in_service")]
    # The other service stayed active throughout, so the account never went inactive.
    assert [data["active"] for data in activity(records, "account", account)] == [True]
    record = await service(redis, settings, untouched)
    assert record.service is not None
    assert record.service.state == "in_service"
    assert len(record.service.history) == 2
    record = await service(redis, settings, billed)
    assert record.service is not None
    assert record.service.state == "canceled_for_non_pay"


# --- 7. one service, two orders, two worker instances ------------------------------------------


def partition(key: str, partitions: int = 4) -> int:
    """The partition aiokafka's default partitioner picks for a key (murmur2, as Java's)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def order_id_on(partitions: set[int]) -> str:
    while True:
        order_id = unique("O")
        if partition(order_id) in partitions:
            return order_id


@contextlib.asynccontextmanager
async def observed_workers(
    settings: Settings, count: int
) -> AsyncIterator[list[tuple[RunningWorker, Worker]]]:
    """`count` worker instances in one group, started together (one rebalance rather than one per
    join), each with its `Worker` at hand to see which partitions it was assigned."""
    clients = [Redis.from_url(settings.redis_url) for _ in range(count)]
    workers = []
    for redis in clients:
        running = RunningWorker(settings)
        workers.append((running, Worker(settings, redis, running.report)))
    await asyncio.gather(*(worker.start() for _, worker in workers))
    try:
        yield workers
    finally:
        await asyncio.gather(*(worker.stop() for _, worker in workers))
        await asyncio.gather(*(redis.aclose() for redis in clients))


def held(worker: Worker, topics: set[str]) -> dict[str, set[int]]:
    """The partitions of each of `topics` the worker's consumers hold right now."""
    by_topic: dict[str, set[int]] = {topic: set() for topic in topics}
    for runner in worker.runners:
        for tp in runner.consumer.assignment():
            if tp.topic in topics:
                by_topic[tp.topic].add(tp.partition)
    return by_topic


def orders_partitions(worker: Worker, settings: Settings) -> set[int]:
    return held(worker, {settings.topics.orders})[settings.topics.orders]


async def test_two_orders_on_one_service_through_two_worker_instances_in_one_group(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    service_id, account = unique("SVC"), unique("ACC")
    async with observed_workers(settings, 2) as [(one, broker_one), (two, broker_two)]:

        async def split() -> bool:
            first, second = (
                orders_partitions(broker_one, settings),
                orders_partitions(broker_two, settings),
            )
            return bool(first) and bool(second) and first | second == {0, 1, 2, 3}

        await poll(split)
        # The add order goes to one instance, the disconnect order to the other.
        add_order = order_id_on(orders_partitions(broker_one, settings))
        disconnect_order = order_id_on(orders_partitions(broker_two, settings))

        add = [line("LI-A", service_id)]
        await publish(
            producer, settings, [created(add_order, account, add), *fulfilled(add_order, add)]
        )
        await service_status(settings, reached(service_id, "in_service"))
        disconnect = [line("LI-B", service_id, action="disconnect")]
        await publish(
            producer,
            settings,
            [
                created(disconnect_order, account, disconnect),
                *fulfilled(disconnect_order, disconnect),
            ],
        )
        records = await service_status(settings, reached(service_id, "canceled_by_user"))
        await settle()
        records = await service_status(settings, reached(service_id, "canceled_by_user"))

    # Each instance did one order's work: the partitions were split between them.
    assert (one.records("orders"), two.records("orders")) == (3, 3)
    assert moves(records, service_id) == [
        (None, "new"),
        ("new", "in_service"),
        ("in_service", "canceled_by_user"),
    ]
    payloads: dict[str, set[bytes]] = {}
    for record in records:
        payloads.setdefault(record.json()["id"], set()).add(record.value)
    assert all(len(values) == 1 for values in payloads.values())
    assert [data["active"] for data in activity(records, "account", account)] == [True, False]
    stored = await service(redis, settings, service_id)
    assert stored.service is not None
    assert stored.service.state == "canceled_by_user"
    assert stored.service.orders == [add_order, disconnect_order]


# --- 8. account activity over two services -----------------------------------------------------


async def test_an_account_is_active_from_its_first_active_service_until_its_last_stops(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    first_order, second_order = unique("O"), unique("O")
    first, second = unique("SVC"), unique("SVC")
    account, product = unique("ACC"), unique("PRD")
    await publish(
        producer,
        settings,
        [created(first_order, account, [line("LI-1", first, product_id=product)])],
    )
    await service_status(
        settings, every(reached(first, "new"), activity_is("account", account, True))
    )
    await publish(
        producer,
        settings,
        [created(second_order, account, [line("LI-2", second, product_id=product)], minute=1)],
    )
    await service_status(settings, reached(second, "new"))

    await publish(producer, settings, [canceled(first_order)])
    await service_status(settings, reached(first, "order_canceled"))
    # No flip to wait for (the account stays active): the activity stage applies it shortly.
    await poll(lambda: account_is(redis, settings, account, True, {second}))

    await publish(producer, settings, [canceled(second_order, minute=31)])
    records = await service_status(
        settings,
        every(
            reached(second, "order_canceled"),
            activity_is("account", account, False),
            activity_is("product", product, False),
        ),
    )

    for kind, owner in (("account", account), ("product", product)):
        flips = activity(records, kind, owner)
        assert [data["active"] for data in flips] == [True, False], kind
        assert flips[0]["caused_by"] == changes(records, first)[0]["caused_by"]
        assert flips[1]["caused_by"] == changes(records, second)[-1]["caused_by"]
    account_record = await snapshots(redis, settings).activity("account", account)
    assert account_record is not None
    assert (account_record.active, account_record.active_services) == (False, set())


# --- 9. idempotence under redelivery -----------------------------------------------------------


async def test_order_and_billing_events_delivered_twice_change_no_service_twice(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id, service_id, account = unique("O"), unique("SVC"), unique("ACC")
    items = [line("LI-1", service_id)]
    order_events = [created(order_id, account, items), *fulfilled(order_id, items)]
    billing_events = [nonpay("suspended", service_id), nonpay("restored", service_id)]
    await publish(producer, settings, order_events)
    await service_status(settings, reached(service_id, "in_service"))
    await bill(producer, settings, billing_events)
    # Four changes, and the account's flips with them: active, inactive (suspended), active.
    records = await service_status(
        settings,
        lambda seen: (
            len(changes(seen, service_id)) == 4 and len(activity(seen, "account", account)) == 3
        ),
    )
    before = await service(redis, settings, service_id)
    order_before = await snapshots(redis, settings).order(order_id)
    published_before = sorted(record.value for record in records)
    orders_done = worker.records("orders")

    # Everything again, same ids; then a marker behind the billing events on their partition.
    await publish(producer, settings, order_events)
    marker = nonpay("restored", service_id)  # refused: the service is in service
    await bill(producer, settings, [*billing_events, marker])
    await consume_until(
        settings,
        [settings.topics.ops],
        lambda seen: any(body["data"]["caused_by"] == marker["id"] for body in bodies(seen)),
    )
    await wait_until(lambda: worker.records("orders") >= orders_done + len(order_events))
    await settle()

    records = await service_status(settings, lambda seen: len(seen) >= len(published_before))
    assert sorted(record.value for record in records) == published_before
    assert moves(records, service_id) == [
        (None, "new"),
        ("new", "in_service"),
        ("in_service", "suspended_for_non_pay"),
        ("suspended_for_non_pay", "in_service"),
    ]
    after = await service(redis, settings, service_id)
    assert after.service == before.service
    assert after.applied == before.applied | {event_key(marker)}
    assert await snapshots(redis, settings).order(order_id) == order_before


# --- worker bugs found while writing these tests, now fixed ---------------------------------------


async def test_deleting_a_draft_order_ends_the_service_it_created(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer
) -> None:
    order_id, service_id, account = unique("O"), unique("SVC"), unique("ACC")
    draft = created(order_id, account, [line("LI-1", service_id)])
    draft["data"]["state"] = "draft"
    await publish(producer, settings, [draft])
    await service_status(settings, reached(service_id, "new"))

    await publish(producer, settings, [event("order.deleted", {"order_id": order_id}, time=at(5))])
    await consume_until(
        settings,
        [settings.topics.order_status],
        lambda seen: any(body["type"] == "order.deleted" for body in bodies(seen)),
    )
    await settle()
    records = await service_status(settings, reached(service_id, "new"))
    assert changes(records, service_id)[-1]["active"] is False
    assert [data["active"] for data in activity(records, "account", account)] == [True, False]


async def test_three_instances_each_hold_partition_p_of_every_inbound_topic(
    settings: Settings,
) -> None:
    inbound = set(settings.topics.inbound)
    async with observed_workers(settings, 3) as workers:

        async def settled_assignment() -> bool:
            holdings = [held(worker, inbound) for _, worker in workers]
            counts = [sum(len(parts) for parts in by_topic.values()) for by_topic in holdings]
            return all(counts) and sum(counts) == 12

        await poll(settled_assignment)
        for _, worker in workers:
            by_topic = held(worker, inbound)
            assert len({frozenset(parts) for parts in by_topic.values()}) == 1, by_topic


# --- 10. term ends: timers in event time ------------------------------------------------------


def now_plus(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def stamped(body: Body, moment: datetime) -> Body:
    return {**body, "time": moment.isoformat()}


async def test_a_term_end_expires_an_expiring_service_and_renews_an_auto_renewing_one(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    """Live input: the terms end three seconds after the order completes; the services stage's
    event time passes the end as the clock moves (no further input) and the term end fires."""
    order_id, account = unique("O"), unique("ACC")
    expiring, renewing = unique("SVC"), unique("SVC")
    end = now_plus(3)
    items = [
        line("LI-1", expiring, term=term(end)),
        line("LI-2", renewing, term=term(end, "auto_renew", period_days=30)),
    ]
    moment = datetime.now(UTC)
    events = [
        stamped(e, moment) for e in [created(order_id, account, items), *fulfilled(order_id, items)]
    ]
    await publish(producer, settings, events)
    records = await consume_until(
        settings,
        [settings.topics.service_status],
        every(
            reached(expiring, "expired"),
            lambda seen: bool(of_type(seen, "service.term.renewed", renewing)),
        ),
        timeout_s=30,
    )
    assert moves(records, expiring)[-1] == ("in_service", "expired")
    expired = changes(records, expiring)[-1]
    assert (expired["active"], expired["tmf_state"]) == (False, "terminated")
    assert datetime.fromisoformat(expired["effective_at"]) == end
    assert expired["caused_by"] == term_end_cause(expiring, end)
    (renewed,) = of_type(records, "service.term.renewed", renewing)
    assert datetime.fromisoformat(renewed["term_end"]) == end + timedelta(days=30)
    assert moves(records, renewing) == [(None, "new"), ("new", "in_service")]
    # The reference, its clock advanced past the end, agrees on both services.
    reference = simulate(
        [json.dumps(e) for e in events], settings, until=end + timedelta(seconds=1)
    )
    for service_id in (expiring, renewing):
        assert await service(redis, settings, service_id) == reference.services[service_id]


async def test_a_term_that_ended_while_the_service_was_new_expires_it_once_in_service(
    worker: RunningWorker, settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    order_id, service_id, account = unique("O"), unique("SVC"), unique("ACC")
    end = now_plus(1)
    items = [line("LI-1", service_id, term=term(end))]
    await publish(
        producer, settings, [stamped(created(order_id, account, items), datetime.now(UTC))]
    )
    await service_status(settings, reached(service_id, "new"))
    await asyncio.sleep(2)  # the end passes while the service is new: nothing to expire yet
    records = await service_status(settings, reached(service_id, "new"))
    assert moves(records, service_id) == [(None, "new")]
    later = datetime.now(UTC)
    await publish(producer, settings, [stamped(e, later) for e in fulfilled(order_id, items)])
    records = await service_status(settings, reached(service_id, "expired"))
    assert moves(records, service_id) == [
        (None, "new"),
        ("new", "in_service"),
        ("in_service", "expired"),
    ]
    # It expired when it went into service, with the input that did it.
    assert datetime.fromisoformat(changes(records, service_id)[-1]["effective_at"]) >= later
