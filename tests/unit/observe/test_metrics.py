"""The instruments: named by Prometheus conventions, explained, each in its worker's registry, and
moved by the amounts the engine reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import Metric

from worker.observe import DeadLetterReason, Metrics


def _families(metrics: Metrics) -> list[Metric]:
    return [family for family in metrics.registry.collect() if family.name.startswith("order")]


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_instrument_is_named_by_convention_and_explained() -> None:
    families = _families(Metrics())
    assert len(families) == 23
    for family in families:
        assert re.fullmatch(r"order_status_[a-z_]+", family.name), family.name
        assert len(family.documentation) > 20, family.name
        if family.type == "counter":
            assert not family.name.endswith("_total"), "the client adds _total to the samples"
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


def test_two_workers_in_one_process_keep_their_own_counts() -> None:
    first, second = Metrics(), Metrics()
    first.consumed("orders", "fulfillment.orders.v1", 3)
    name = "order_status_records_consumed_total"
    assert _value(first, name, stage="orders", topic="fulfillment.orders.v1") == 3
    assert _value(second, name, stage="orders", topic="fulfillment.orders.v1") is None


def test_batch_counters_move_by_what_the_engine_reports() -> None:
    metrics = Metrics()
    metrics.applied("orders", 10)
    metrics.applied("orders", 5)
    metrics.published("fulfillment.order-status.v1", "order.state.changed", 4)
    metrics.dead_lettered(DeadLetterReason.UNKNOWN_TYPE, 2)
    metrics.refused("orders", "order.approved")
    metrics.stale("task")
    metrics.conflicts("services", 3)
    metrics.retried("write")
    metrics.cache_lookups("order", hits=7, misses=1)
    metrics.late("orders", 2)
    metrics.jeopardy(True, "task", "stalled")
    metrics.fatal(RuntimeError("boom"))

    assert _value(metrics, "order_status_events_applied_total", stage="orders") == 15
    assert (
        _value(
            metrics,
            "order_status_outputs_published_total",
            topic="fulfillment.order-status.v1",
            type="order.state.changed",
        )
        == 4
    )
    assert _value(metrics, "order_status_dead_letters_total", reason="unknown_type") == 2
    assert (
        _value(metrics, "order_status_refusals_total", stage="orders", type="order.approved") == 1
    )
    assert _value(metrics, "order_status_stale_updates_total", entity="task") == 1
    assert _value(metrics, "order_status_cas_conflicts_total", stage="services") == 3
    assert _value(metrics, "order_status_retries_total", step="write") == 1
    lookups = "order_status_snapshot_cache_lookups_total"
    assert _value(metrics, lookups, kind="order", result="hit") == 7
    assert _value(metrics, lookups, kind="order", result="miss") == 1
    assert _value(metrics, "order_status_late_arrivals_total", stage="orders") == 2
    raised = "order_status_jeopardy_raised_total"
    assert _value(metrics, raised, entity="task", reason="stalled") == 1
    assert _value(metrics, "order_status_fatal_errors_total", kind="RuntimeError") == 1

    totals = metrics.totals()
    assert (totals.events_applied, totals.dead_letters, totals.refusals) == (15, 2, 1)


def test_delays_are_observed_from_event_time_and_from_broker_time() -> None:
    metrics = Metrics()
    metrics.delivered("orders", 1000.0, event_times=[999.95, 940.0], broker_timestamps=[999.99])
    metrics.batch("orders", 0.03)

    event = "order_status_event_delay_seconds"
    assert _value(metrics, f"{event}_count", stage="orders") == 2
    assert _value(metrics, f"{event}_sum", stage="orders") == pytest.approx(60.05)
    assert _value(metrics, f"{event}_bucket", stage="orders", le="0.1") == 1
    broker = "order_status_broker_delay_seconds"
    assert _value(metrics, f"{broker}_bucket", stage="orders", le="0.025") == 1
    duration = "order_status_batch_duration_seconds"
    assert _value(metrics, f"{duration}_bucket", stage="orders", le="0.05") == 1


def test_lag_is_per_partition_and_dropped_when_revoked() -> None:
    metrics = Metrics()
    metrics.lag("g", "t", 0, 12)
    metrics.lag("g", "t", 1, 30)
    assert metrics.totals().lag == 42
    metrics.revoked("g", [("t", 1), ("t", 7)])
    assert _value(metrics, "order_status_consumer_lag_records", group="g", topic="t", partition="0")
    assert metrics.totals().lag == 12


def test_gauges_hold_the_latest_reading() -> None:
    metrics = Metrics()
    metrics.timers("orders", 4)
    metrics.timers("orders", 1)
    metrics.fired("services", 3)
    metrics.outbox("orders", 9)
    metrics.merge_state("orders", held_back=120, watermark_delay_s=2.5)
    assert _value(metrics, "order_status_timers_pending", stage="orders") == 1
    assert _value(metrics, "order_status_timers_fired_total", stage="services") == 3
    assert _value(metrics, "order_status_outbox_backlog_entries", stage="orders") == 9
    assert _value(metrics, "order_status_records_held_back", stage="orders") == 120
    assert _value(metrics, "order_status_watermark_delay_seconds", stage="orders") == 2.5


def test_the_readme_explains_every_instrument() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    operations = readme[readme.index("## Operations") : readme.index("## How one batch flows")]
    for family in _families(Metrics()):
        suffix = "_total" if family.type == "counter" else "_info" if family.type == "info" else ""
        assert f"`{family.name}{suffix}" in operations, family.name
