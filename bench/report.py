"""The benchmark's figures: the machine they were measured on, a table for people, a JSON file for
the record (`bench/results/<UTC timestamp>-<short commit>.json`)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def commit() -> str:
    return _git("rev-parse", "--short", "HEAD") or "unknown"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": models[0] if models else platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def describe(commit_id: str) -> dict[str, Any]:
    """The run's provenance: when, which commit (and whether the work tree had changes)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit_id,
        "worktree_dirty": bool(status) if status is not None else None,
        "machine": machine(),
    }


def write(results: dict[str, Any], directory: Path, suffix: str = "") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-{results['commit']}{suffix}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (printed, and pasted into BENCHMARKS.md)."""
    source = results["input"]
    base, one, two = results["baseline"], results["worker"], results["worker_two_processes"]
    ratios, memory, floor = results["ratios"], results["memory"], results["floor"]
    rows = [
        (
            "transport ceiling: aiokafka consume → json → produce → commit per getmany",
            _rate(base, "msg/s"),
        ),
        ("worker, 1 process, full speed (group join → last output)", _rate(one, "events/s")),
        ("**worker / transport ceiling**", f"**{ratios['worker_over_baseline']:.1%}**"),
        (
            "floor: worker code alone (simulate) per event; relay per record; ratio bound",
            f"{floor['code_us_per_event']:.0f} µs; {floor['relay_us_per_record']:.0f} µs; "
            f"at most {floor['ratio_bound']:.1%}",
        ),
        ("worker, 2 processes in one group", _rate(two, "events/s")),
        ("2 processes / 1 process", f"{ratios['two_over_one_process']:.2f}x"),
        (
            "process start → group joined; → first output (1 process)",
            f"{one['startup_seconds']:.1f} s; {one['first_output_seconds']:.1f} s",
        ),
        (
            "process start → group joined; → first output (2 processes)",
            f"{two['startup_seconds']:.1f} s; {two['first_output_seconds']:.1f} s",
        ),
    ]
    rows += [
        (
            f"latency at {lat['load']:.0%} load ({lat['rate_per_second']:,.0f} events/s, "
            f"{lat['seconds']:.0f} s): p50 / p95 / p99 / max",
            " / ".join(f"{lat[key]:,.0f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
            + " ms"
            + (f" ({lat['unmatched']} inputs without their output)" if lat["unmatched"] else ""),
        )
        for lat in results["latency"]
    ]
    paced_cpu = [lat.get("cpu_us_per_event") for lat in results["latency"]]
    if "cpu_us_per_event" in one and None not in paced_cpu:
        rows.append(
            (
                "worker CPU per event (1 process): full speed; paced at "
                + ", ".join(f"{lat['load']:.0%}" for lat in results["latency"]),
                "; ".join(f"{cpu:,.0f} µs" for cpu in [one["cpu_us_per_event"], *paced_cpu]),
            )
        )
    rows += [
        (
            "worker peak RSS (1 process; each of 2)",
            f"{memory['worker_peak_rss_mib']:.0f} MiB; "
            + ", ".join(f"{peak:.0f}" for peak in memory["two_process_peak_rss_mib"])
            + " MiB",
        ),
        (
            "Redis per order held (all its keys, services and activity included)",
            f"{memory['redis_bytes_per_order'] / 1024:.1f} KiB "
            f"({memory['redis_keys_per_order']:.1f} keys)",
        ),
    ]
    heading = (
        f"{source['orders']} orders, {source['events']:,} input events, "
        f"{source['expected_outputs']:,} outputs; medians of {results['rounds']} round(s); "
        f"commit {results['commit']}"
    )
    width = max(len(label) for label, _ in rows)
    lines = [heading, "", f"| {'measure':<{width}} | value |", f"|{'-' * (width + 2)}|---|"]
    lines += [f"| {label:<{width}} | {value} |" for label, value in rows]
    return "\n".join(lines)


def _rate(figures: dict[str, Any], unit: str) -> str:
    """The median rate, and the range over the rounds."""
    rounds = figures["rounds_per_second"]
    spread = f" ({min(rounds):,.0f} to {max(rounds):,.0f})" if len(rounds) > 1 else ""
    return f"{figures['per_second']:,.0f} {unit}{spread}"
