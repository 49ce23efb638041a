"""The stored form of records: compressed JSON, and plain JSON still read."""

from __future__ import annotations

import json

import pytest

from bench.generator import StreamSpec, generate
from worker.rules import OrderRecord
from worker.simulate import simulate
from worker.store import codecs


@pytest.fixture(scope="module")
def orders() -> list[OrderRecord]:
    stream = generate(StreamSpec(orders=20, seed=3))
    records = simulate([json.dumps(event) for event in stream]).records.values()
    return [record for record in records if isinstance(record, OrderRecord)]


def test_a_record_reads_back_equal(orders: list[OrderRecord]) -> None:
    for record in orders:
        assert codecs.ORDERS.decode(codecs.ORDERS.encode(record)) == record


def test_an_order_is_stored_in_under_a_third_of_its_json(orders: list[OrderRecord]) -> None:
    stored = sum(len(codecs.ORDERS.encode(record)) for record in orders)
    as_json = sum(len(record.model_dump_json()) for record in orders)
    assert stored * 3 < as_json


def test_a_record_stored_as_plain_json_is_still_read(orders: list[OrderRecord]) -> None:
    record = orders[0]
    assert codecs.ORDERS.decode(record.model_dump_json().encode()) == record


def test_a_value_in_no_known_format_is_refused() -> None:
    with pytest.raises(codecs.UnreadableRecord, match="starts with b'x'"):
        codecs.ORDERS.decode(b"x-not-a-record")
