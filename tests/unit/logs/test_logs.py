"""In JSON mode every line a worker writes is JSON, from every logger it has; the worker's own
lines say what the issue asks of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from schemas import outbound as out
from tests.unit.rules.builders import Events, inputs, item
from worker.logs import ProgressReporter
from worker.observe import DeadLetterReason, Metrics
from worker.pipeline import log_ops_events
from worker.rules import Policy, apply

ROOT = Path(__file__).resolve().parents[3]


def _run(log_format: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.unit.logs.worker_like_run", log_format],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_line_of_a_worker_like_run_is_json() -> None:
    run = _run("json")
    assert run.returncode == 1, "the run ends with an uncaught exception"
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not JSON: {line!r}")
    loggers = {record.get("logger", "").split(".")[0] for record in records}
    assert {"uvicorn", "aiokafka", "py", "asyncio", "worker"} <= loggers
    events = [record["event"] for record in records]
    for event in ("worker starting", "partitions assigned", "progress", "partitions revoked"):
        assert event in events
    assert events[-2:] == ["worker stopped", "uncaught exception"]
    assert "and an uncaught exception" in records[-1]["exception"]
    assert "s3cret" not in run.stderr
    assert "hunter2" not in run.stderr
    startup = records[events.index("worker starting")]
    assert startup["configuration"]["REDIS_URL"] == "redis://:****@127.0.0.1:6379/0"
    assert startup["http"].startswith("http://127.0.0.1:")


def test_console_mode_is_for_people() -> None:
    run = _run("console")
    first = run.stderr.splitlines()[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
    assert "worker starting" in run.stderr


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_line_counts_what_happened_since_the_previous_one() -> None:
    metrics, clock = Metrics(), Clock()
    metrics.applied("orders", 100)
    reporter = ProgressReporter(metrics, 10, clock)
    metrics.applied("orders", 40)
    metrics.applied("services", 10)
    metrics.dead_lettered(DeadLetterReason.INVALID, 3)
    metrics.refused("orders", "order.approved")
    metrics.lag("g", "t", 0, 17)
    clock.now = 10.0
    with structlog.testing.capture_logs() as captured:
        reporter.report()
        clock.now = 20.0
        reporter.report()
    assert captured == [
        {
            "event": "progress",
            "log_level": "info",
            "events": 50,
            "events_per_s": 5.0,
            "lag": 17,
            "dead_letters": 3,
            "refusals": 1,
            "seconds": 10.0,
        },
        {
            "event": "progress",
            "log_level": "info",
            "events": 0,
            "events_per_s": 0.0,
            "lag": 17,
            "dead_letters": 0,
            "refusals": 0,
            "seconds": 10.0,
        },
    ]


def test_a_jeopardy_raised_is_logged_with_the_entity_and_why() -> None:
    created = Events().created(item("L1"), state="new", due_at="2026-11-21T09:00:00Z")
    emitted = apply(None, "O-1", inputs(created), Policy()).emitted
    (raised,) = [e.event for e in emitted if isinstance(e.event, out.JeopardyEvent)]
    with structlog.testing.capture_logs() as captured:
        log_ops_events(emitted)
    (line,) = captured
    assert (line["event"], line["entity"], line["id"], line["reason"]) == (
        "jeopardy.raised",
        "order",
        "O-1",
        "overdue",
    )
    # Created a second after T0 (10:00), an hour and a second after its due time.
    assert (line["since"], line["late_by_s"]) == ("2026-11-21T09:00:00Z", 3601.0)
    assert line["event_id"] == raised.data.caused_by
