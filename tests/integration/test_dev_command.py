"""`order-status dev --once` as a new user runs it: the demo ends with the order completed, and the
last line is the address of its plan page."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_dev_once_plays_the_demo_to_completed_and_exits_0(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli", "dev", "--once"],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    order_changes = [line for line in lines if "order      O-1001" in line]
    assert order_changes[-1].split(" -> ")[1].split()[0] == "completed"
    service_changes = [line for line in lines if line[10:17] == "service"]
    assert {line.split()[2] for line in service_changes if "-> in_service" in line} == {
        "SVC-INTERNET-1",
        "SVC-ROUTER-1",
    }
    assert any("account ACC-7 is now active" in line for line in lines)
    assert any("fallout.raised" in line for line in lines)
    assert any("fallout.resolved" in line for line in lines)
    # O-1002's task stuck on hold: in jeopardy once, out of it once.
    jeopardy = [line.split()[1:4] for line in lines if "jeopardy." in line]
    assert jeopardy == [
        ["jeopardy.raised", "task", "T-4:"],
        ["jeopardy.cleared", "task", "T-4:"],
    ]
    assert any(line.startswith("order O-1002  completed  (profile") for line in lines)
    assert "order O-1001  completed  (profile standard, account ACC-7)" in lines
    assert not any("refused" in line for line in lines), result.stdout
    plan = re.compile(r"plan of the demo order: http://127\.0\.0\.1:\d+/orders/(O-100[12])")
    pages = [match[1] for line in lines[-2:] if (match := plan.fullmatch(line))]
    assert pages == ["O-1001", "O-1002"]  # the last lines: where to see each demo order
