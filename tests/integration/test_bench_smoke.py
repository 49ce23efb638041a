"""The benchmark still runs: `bench/run.py --quick` on a tiny load, start to finish. The figures
themselves are not checked (BENCHMARKS.md has them), only that they were measured and written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_writes_positive_figures(tmp_path: Path) -> None:
    # Its own broker and Redis keys, like any run: nothing shared with the other tests.
    finished = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr

    (written,) = tmp_path.glob("*.json")
    results = json.loads(written.read_text())
    assert written.name.endswith(f"-{results['commit']}.json")
    assert {"nproc", "cpu_model", "python"} <= results["machine"].keys()
    throughputs = [
        results[name]["per_second"] for name in ("baseline", "worker", "worker_two_processes")
    ]
    assert all(rate > 0 for rate in throughputs)
    assert results["ratios"]["worker_over_baseline"] > 0
    assert results["ratios"]["two_over_one_process"] > 0
    floor = results["floor"]
    assert floor["code_us_per_event"] > 0
    assert floor["relay_us_per_record"] > 0
    assert 0 < floor["ratio_bound"] < 1
    assert [latency["load"] for latency in results["latency"]] == [0.25, 0.5]
    assert all(0 <= lat["p50_ms"] <= lat["max_ms"] for lat in results["latency"])
    assert results["worker"]["cpu_us_per_event"] > 0
    assert all(lat["cpu_us_per_event"] > 0 for lat in results["latency"])
    assert "| worker CPU per event (1 process): full speed; paced at 25%, 50%" in finished.stdout
    assert results["memory"]["worker_peak_rss_mib"] > 0
    assert results["memory"]["redis_bytes_per_order"] > 0
    assert "| worker / transport ceiling" in finished.stdout.replace("**", "")
