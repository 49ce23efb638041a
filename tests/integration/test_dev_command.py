"""`order-status dev --once` as a new user runs it: the demo ends with the order completed."""

from __future__ import annotations

import os
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
    timeline = [line for line in lines if " -> " in line]
    assert "order      O-1001" in timeline[-1]
    assert timeline[-1].split(" -> ")[1].split()[0] == "completed"
    assert any("fallout.raised" in line for line in lines)
    assert any("fallout.resolved" in line for line in lines)
    assert "order O-1001  completed  (profile standard, account ACC-7)" in lines
    assert not any("refused" in line for line in lines), result.stdout
