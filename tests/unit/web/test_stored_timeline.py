"""The timeline the orders stage keeps in Redis (`worker.store.plan`): the events abridged to about
half their size, each read by the page exactly as the whole event would be."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.inbound import parse_order_event
from tests.web.fake_reader import OrderEvents, order_in_fallout
from worker import rules
from worker.store.plan import plan_ops
from worker.web.timeline import timeline_entry


def test_an_abridged_event_reads_as_the_whole_one() -> None:
    events = order_in_fallout(OrderEvents("O-1"))
    at = datetime(2026, 12, 1, tzinfo=UTC)
    outcome = rules.apply(
        None,
        "O-1",
        [rules.Input(parse_order_event(json.dumps(event)), at) for event in events],
        rules.Policy(),
    )
    ops = plan_ops("{ns:orders:0}", "O-1", None, outcome.record, outcome.emitted, at, 1000)

    stored = [str(op[-1]) for op in ops if op[0] == "L"]
    whole = [
        item.event.model_dump_json()
        for item in outcome.emitted
        if item.stream in {rules.Stream.STATUS, rules.Stream.OPS}
    ]
    assert {json.loads(event)["type"] for event in whole} >= {
        "task.state.changed",
        "order.state.changed",
        "fallout.raised",
        "fallout.reassigned",
        "fallout.resolved",
        "command.rejected",
    }
    assert len(stored) == len(whole)
    for abridged, event in zip(stored, whole, strict=True):
        assert timeline_entry(json.loads(abridged)) == timeline_entry(json.loads(event))
    assert sum(map(len, stored)) < sum(map(len, whole)) * 0.55
    assert {op[-2] for op in ops if op[0] == "L"} == {1000}  # each push keeps the latest 1000
    three = plan_ops("{ns:orders:0}", "O-1", None, outcome.record, outcome.emitted, at, 3)
    assert [op[-1] for op in three if op[0] == "L"] == stored[-3:]  # only the newest are written
    no_timeline = plan_ops("{ns:orders:0}", "O-1", None, outcome.record, outcome.emitted, at, 0)
    assert [op for op in no_timeline if op[0] == "L"] == []
