"""Input as upstream systems really publish it, for the differential tests: the benchmark's order
streams (`bench.generator`), with accounts and products shared between orders, billing's non-pay
events for the services (some refused: a restore of a service never suspended), children created
before their parents, and unreadable records on every inbound topic, keyed like the others.

A `Feed` is the records to publish, in publishing order. `stamped` gives it times of the moment
each is published (live input); unchanged, its times are the generator's (a backlog from the past).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bench.generator import StreamSpec, generate
from worker.settings import Settings

Event = dict[str, Any]


@dataclass(frozen=True)
class Published:
    """One record: a CloudEvent (None: unreadable bytes), its topic family and its key."""

    family: str  # "order", "workorder", "task", "service"
    key: str
    event: Event | None
    garbage: bytes = b""

    def value(self) -> bytes:
        return self.garbage if self.event is None else json.dumps(self.event).encode()

    def topic(self, settings: Settings) -> str:
        return settings.topics.for_event(f"{self.family}.x")


@dataclass
class Feed:
    records: list[Published] = field(default_factory=list)

    def events(self) -> list[Event]:
        return [record.event for record in self.records if record.event is not None]

    def lines(self) -> list[str]:
        """The valid events as JSON lines, for `simulate`."""
        return [json.dumps(event) for event in self.events()]

    def garbage(self) -> list[Published]:
        return [record for record in self.records if record.event is None]

    def stamped(self, moments: list[datetime]) -> Feed:
        """The feed with each event's time replaced by the moment given for its record."""
        restamped = []
        for record, moment in zip(self.records, moments, strict=True):
            if record.event is not None:
                time = moment.isoformat().replace("+00:00", "Z")
                record = replace(record, event={**record.event, "time": time})
            restamped.append(record)
        return Feed(restamped)


def feed(seed: int, orders: int, prefix: str) -> Feed:
    rng = random.Random(seed)
    stream = generate(StreamSpec(orders=orders, seed=seed, prefix=prefix))
    accounts = [f"{prefix}ACC-{n}" for n in range(max(2, orders // 4))]
    products = [f"{prefix}PRD-{n}" for n in range(3)]
    shared: dict[str, str] = {}
    records: list[Published] = []
    services: list[tuple[int, str]] = []  # (position, service id) of each service completed
    for event in stream:
        data = event["data"]
        if event["type"] == "order.created":
            account = rng.choice(accounts)
            data = {**data, "account_id": shared.setdefault(data["order_id"], account)}
            data["line_items"] = [
                {**item, "product_id": rng.choice(products)} if "product_id" in item else item
                for item in data["line_items"]
            ]
            event = {**event, "data": data}
            services += [
                (len(records), item["service_id"])
                for item in data["line_items"]
                if item.get("service_id")
            ]
        records.append(Published(event["type"].split(".", 1)[0], data["order_id"], event))
    _children_first(records, rng)
    _billing(records, services, prefix, rng)
    _garbage(records, rng)
    _retime(records)
    return Feed(records)


def _children_first(records: list[Published], rng: random.Random) -> None:
    """Some tasks created before their work order (the work-order system is slower)."""
    for index in range(len(records) - 1):
        first, second = records[index].event, records[index + 1].event
        if first is None or second is None:
            continue
        if (
            first["type"] == "workorder.created"
            and second["type"] == "task.created"
            and second["data"]["work_order_id"] == first["data"]["work_order_id"]
            and rng.random() < 0.5
        ):
            records[index], records[index + 1] = records[index + 1], records[index]


def _billing(
    records: list[Published], services: list[tuple[int, str]], prefix: str, rng: random.Random
) -> None:
    """Non-pay events for about half the services, later than their order's creation: suspended,
    then restored or canceled; and now and then a restore of a service never suspended."""
    sequences = [["suspended", "restored"], ["suspended", "canceled"], ["restored"], ["suspended"]]
    inserts: list[tuple[int, Published]] = []
    for number, (position, service_id) in enumerate(services):
        if rng.random() < 0.5:
            continue
        at = position
        for kind in rng.choice(sequences):
            at = rng.randint(at + 1, min(len(records), at + 400))
            event: Event = {
                "specversion": "1.0",
                "id": f"{prefix}bill-{number}-{kind}",
                "source": "/billing",
                "type": f"service.nonpay.{kind}",
                "time": "",
                "data": {"service_id": service_id},
            }
            inserts.append((at, Published("service", service_id, event)))
    for at, record in sorted(inserts, key=lambda pair: pair[0], reverse=True):
        records.insert(at, record)


def _garbage(records: list[Published], rng: random.Random) -> None:
    """Unreadable records between the others, on each inbound topic, keyed by an order nearby."""
    keyed = [record for record in records if record.family != "service"]
    for _ in range(max(3, len(records) // 200)):
        at = rng.randrange(len(records))
        near = rng.choice(keyed)
        family = rng.choice(["order", "workorder", "task"])
        garbage = rng.choice([b"\xff\x00not json", b'{"specversion": "1.0"', b"[]"])
        records.insert(at, Published(family, near.key, None, garbage))


def _retime(records: list[Published]) -> None:
    """One second apart, in publishing order: the stream is in event-time order."""
    moment = datetime.fromisoformat("2026-11-21T08:00:00+00:00")
    for index, record in enumerate(records):
        if record.event is not None:
            moment += timedelta(seconds=1)
            stamped = {**record.event, "time": moment.isoformat().replace("+00:00", "Z")}
            records[index] = replace(record, event=stamped)
