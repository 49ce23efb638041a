"""A fault case end to end: generated input (`tests.integration.streams`, with bad records of the
case's own between the good ones) published before, during and after a fault, and the end state
checked against `order-status simulate` on the valid input:

- every expected output present by id, and nothing else; no id published with two payloads;
- every order, service and account/product/location snapshot equal to the simulator's;
- every bad record on the dead-letter topic, found by its source topic, partition and offset, with
  its key, value and headers byte for byte (or cut down, when it is too large to carry);
- nothing left in the outboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from redis.asyncio import Redis

from tests.integration.harness import assert_snapshots_equal, outbox_entries, running_worker
from tests.integration.outputs import Outputs, reading_outputs, wait_for
from tests.integration.streams import feed
from worker.engine.partitioning import partition_for
from worker.engine.records import (
    DLQ_ERROR,
    DLQ_PAYLOAD_OMITTED,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from worker.settings import Settings
from worker.simulate import Simulation, simulate

Header = tuple[str, bytes | None]
DLQ_HEADERS = {
    DLQ_ERROR,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_PAYLOAD_OMITTED,
}


@dataclass(frozen=True)
class Raw:
    """One record to publish as an upstream system would, and what must become of it: applied
    (`event`, the valid CloudEvent it carries) or dead-lettered (`dead`, part of the reason)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp_ms: int | None = None
    event: dict[str, Any] | None = None
    dead: str | None = None


def generated(settings: Settings, seed: int, orders: int) -> list[Raw]:
    """A stream as upstream systems publish it: orders with shared accounts and products,
    billing's events, children before parents, duplicates, stale updates, unreadable records."""
    records = []
    for record in feed(seed, orders, f"{settings.group_id}-").records:
        topic, key = record.topic(settings), record.key.encode()
        if record.event is None:
            records.append(Raw(topic, key, record.garbage, dead="record"))
        else:
            records.append(Raw(topic, key, record.value(), event=record.event))
    return records


def valid(topic: str, event: dict[str, Any], keyed_by: str, partitions: int, **fields: Any) -> Raw:
    """A valid event keyed by `keyed_by`, on its partition (the default partitioner's)."""
    key = keyed_by.encode()
    placed = {"partition": partition_for(key, partitions), "key": key, **fields}
    return Raw(topic, value=json.dumps(event).encode(), event=event, **placed)


def interleave(good: Sequence[Raw], bad: Sequence[Raw]) -> list[Raw]:
    """`bad` spread evenly between `good`, so each third of the input has some."""
    merged = list(good)
    step = max(1, len(good) // (len(bad) + 1))
    for index, record in enumerate(bad):
        merged.insert(min(len(merged), (index + 1) * step + index), record)
    return merged


def thirds(records: Sequence[Raw]) -> tuple[list[Raw], list[Raw], list[Raw]]:
    third = len(records) // 3
    return list(records[:third]), list(records[third : 2 * third]), list(records[2 * third :])


Sent = tuple[Raw, RecordMetadata]


async def send(producer: AIOKafkaProducer, records: Sequence[Raw]) -> list[Sent]:
    """Publish the records (acknowledged by the broker), in order."""
    futures = [await _send(producer, record) for record in records]
    return list(zip(records, await asyncio.gather(*futures), strict=True))


async def _send(producer: AIOKafkaProducer, record: Raw) -> asyncio.Future[RecordMetadata]:
    if record.key is None and record.value is None:
        # `send` refuses a record with neither (a keyless tombstone); the protocol does not.
        assert record.partition is not None
        batch = producer.create_batch()
        batch.append(key=None, value=None, timestamp=None, headers=list(record.headers))
        # A batch's metadata names the offset of its first (here: only) record.
        sent: asyncio.Future[RecordMetadata] = await producer.send_batch(
            batch, record.topic, partition=record.partition
        )
        return sent
    future = producer.send(
        record.topic,
        record.value,
        key=record.key,
        partition=record.partition,
        headers=list(record.headers),
        timestamp_ms=record.timestamp_ms,
    )
    return cast("asyncio.Future[RecordMetadata]", await future)


def reference(
    settings: Settings, sent: Sequence[Sent], until: datetime | None = None
) -> Simulation:
    """`order-status simulate` on the valid input, in publishing order (`until`: with the timers
    due before it fired)."""
    lines = [json.dumps(record.event) for record, _ in sent if record.event is not None]
    simulation = simulate(lines, settings, until=until)
    assert simulation.invalid == [], simulation.invalid  # the case's own mistake
    return simulation


def published_ids(expected: Simulation, sent: Sequence[Sent]) -> set[str]:
    """The ids of the outputs the simulator published (not the dead letters of expired parked
    events, which it lists as the events themselves, and which go out as dead letters)."""
    inputs = {record.event["id"] for record, _ in sent if record.event is not None}
    return {event["id"] for event in expected.emitted} - inputs


async def settle(
    settings: Settings,
    outputs: Outputs,
    sent: Sequence[Sent],
    timeout_s: float = 90.0,
    until: datetime | None = None,
) -> Simulation:
    """Until every expected output and dead letter was read; the reference."""
    expected = reference(settings, sent, until)
    dead = sum(1 for record, _ in sent if record.dead is not None)
    await wait_for(outputs, published_ids(expected, sent), dead, timeout_s)
    return expected


async def check(
    settings: Settings,
    redis: Redis,
    outputs: Outputs,
    sent: Sequence[Sent],
    expected: Simulation,
) -> None:
    doubled = {i: p for i, p in outputs.payloads.items() if len(p) > 1}
    assert not doubled, f"ids published with two payloads: {list(doubled)[:3]}"
    ids = published_ids(expected, sent)
    missing, unexpected = ids - outputs.payloads.keys(), outputs.payloads.keys() - ids
    assert not missing, f"{len(missing)} output(s) lost, e.g. {sorted(missing)[:3]}"
    assert not unexpected, f"{len(unexpected)} output(s) not expected: {sorted(unexpected)[:3]}"
    await assert_snapshots_equal(redis, settings, expected)
    check_dead_letters(outputs, sent, settings.max_record_bytes)
    assert await outbox_entries(redis, settings) == 0


def check_dead_letters(outputs: Outputs, sent: Sequence[Sent], max_bytes: int) -> None:
    """Each bad record once (by source; at least once: a copy after a crash is the same), as
    consumed: key, value and every header, in order, byte for byte; one larger than `max_bytes`
    cut down, saying where to read it."""
    by_source: dict[tuple[str, int, int], list[tuple[Any, ...]]] = {}
    for key, value, headers in outputs.dead:
        about = dict(headers)
        source = (
            (about[DLQ_SOURCE_TOPIC] or b"").decode(),
            int(about[DLQ_SOURCE_PARTITION] or b"-1"),
            int(about[DLQ_SOURCE_OFFSET] or b"-1"),
        )
        kept = tuple(header for header in headers if header[0] not in DLQ_HEADERS)
        letter = (key, value, kept, about.get(DLQ_PAYLOAD_OMITTED), about[DLQ_ERROR])
        by_source.setdefault(source, []).append(letter)
    dead = [(record, record.dead, meta) for record, meta in sent if record.dead is not None]
    wrong: list[str] = []
    for record, reason, meta in dead:
        source = (meta.topic, meta.partition, meta.offset)
        letters = by_source.get(source)
        if letters is None:
            wrong.append(f"{reason}: not dead-lettered ({source})")
            continue
        if any(letter != letters[0] for letter in letters):
            wrong.append(f"{reason}: copies differ ({source})")
        key, value, headers, omitted, error = letters[0]
        if reason.encode() not in (error or b""):
            wrong.append(f"{reason}: the reason given is {error!r}")
        if omitted is None and (key, value, headers) != (record.key, record.value, record.headers):
            wrong.append(f"{reason}: not as consumed: {(key, value, headers)!r}")
        if omitted is not None and (
            value is not None or f"offset {meta.offset}".encode() not in omitted
        ):
            wrong.append(f"{reason}: cut down without saying where to read it: {omitted!r}")
    assert not wrong, "\n".join(wrong)
    assert len(by_source) == len(dead), "a record dead-lettered that should have been applied"


Fault = Callable[[], contextlib.AbstractAsyncContextManager[None]]
"""Entered: the fault is on; left: it is healed."""


async def run_through_fault(
    settings: Settings,
    producer: AIOKafkaProducer,
    redis: Redis,
    records: Sequence[Raw],
    fault: Fault,
    hold_s: float,
    until: datetime | None = None,
) -> None:
    """A third of the input before the fault (and some of its outputs read), a third while it
    lasts (`hold_s` at least), a third after; then the end state is checked."""
    before, during, after = thirds(records)
    async with reading_outputs(settings) as outputs, running_worker(settings):
        sent = await send(producer, before)
        await outputs.at_least(len(reference(settings, sent).emitted) // 2)
        async with fault():
            sent += await send(producer, during)
            await asyncio.sleep(hold_s)
        sent += await send(producer, after)
        expected = await settle(settings, outputs, sent, until=until)
    await check(settings, redis, outputs, sent, expected)


@contextlib.asynccontextmanager
async def no_fault() -> AsyncIterator[None]:
    yield
