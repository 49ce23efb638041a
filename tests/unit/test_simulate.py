"""`order-status simulate`: the reference model over a JSONL file, no broker and no Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.cli import main

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo" / "scenario.jsonl"


def test_simulate_prints_the_demo_timeline_and_the_final_tree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", str(DEMO)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[1:] == ["task", "T-1", "-", "->", "scheduled", "[Scheduled]"]
    assert "order O-1001  completed  (profile standard, account ACC-7)" in printed
    changes = [line for line in printed if "order      O-1001" in line]
    assert [line.split(" -> ")[1].split()[0] for line in changes] == [
        "draft",
        "new",
        "acknowledged",
        "in_progress",
        "completed",
    ]


def test_the_demo_has_a_task_stuck_on_hold_go_into_jeopardy_and_out_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", str(DEMO)]) == 0
    jeopardy = [
        line.split()[1:4] for line in capsys.readouterr().out.splitlines() if "jeopardy." in line
    ]
    assert jeopardy == [
        ["jeopardy.raised", "task", "T-4:"],
        ["jeopardy.cleared", "task", "T-4:"],
    ]


def test_simulate_json_reports_events_orders_and_invalid_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(DEMO.read_text() + "\n{broken\n")
    assert main(["simulate", str(feed), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["orders"]["O-1001"]["order"]["state"] == "completed"
    assert result["services"]["SVC-INTERNET-1"]["service"]["state"] == "in_service"
    broken_line = len(DEMO.read_text().splitlines()) + 2  # after the blank line
    assert result["invalid"] == [{"line": broken_line, "error": result["invalid"][0]["error"]}]
    assert result["invalid"][0]["error"].startswith("record: Invalid JSON")
    assert len({event["id"] for event in result["events"]}) == len(result["events"])


def test_simulate_until_a_moment_shows_the_jeopardy_an_order_is_in_then(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo up to O-1002's task going on hold, its clock run to the next day: stalled."""
    lines = DEMO.read_text().splitlines()
    on_hold = next(i for i, line in enumerate(lines) if '"state":"on_hold"' in line)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines[: on_hold + 1]) + "\n")
    assert main(["simulate", str(feed), "--until", "2026-11-24T00:00:00Z"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "      └─ task T-4  on_hold  IN JEOPARDY: stalled since 2026-11-23T11:10:00+00:00" in (
        printed
    )
    assert any(line.startswith("order O-1002  in_progress") for line in printed)
