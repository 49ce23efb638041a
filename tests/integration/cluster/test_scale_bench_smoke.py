"""`bench/run.py --scale --quick` still runs start to finish on a tiny load: its own broker and
local Redis Cluster, 1 process on standalone Redis and 1, 2, 3 on the cluster. The figures are not
checked (BENCHMARKS.md has them), only that every setup was measured, whole, and written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def test_the_quick_scale_benchmark_measures_every_setup(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "bench/run.py", "--scale", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr

    (written,) = tmp_path.glob("*-scale.json")
    results = json.loads(written.read_text())
    setups = {(row["cluster"], row["processes"]): row for row in results["setups"]}
    assert setups.keys() == {(False, 1), (True, 1), (True, 2), (True, 3)}
    for row in setups.values():
        assert row["per_second"] > 0
        assert row["missing_outputs_per_round"] == [0]
        # Every process took a share: the stream went through all of them.
        assert len(row["applied_per_process_last_round"]) == row["processes"]
        assert all(applied > 0 for applied in row["applied_per_process_last_round"])
    assert results["ratios"]["cluster_2_over_1_process"] > 0
    assert "| cluster (3 primaries), 3 processes |" in finished.stdout
