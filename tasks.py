#!/usr/bin/env python3
"""Project tasks on a fresh machine with only Python 3.11+ (standard library only).

    python3 tasks.py dev [--once]   install into .venv, then run `order-status dev`
    python3 tasks.py test [ARGS]    install, then ruff, mypy and the whole pytest suite (with the
                                    rules package's 100% branch coverage gate)
    python3 tasks.py bench [ARGS]   install, then the benchmark (bench/run.py)
    python3 tasks.py lock           regenerate the hashed lock files from pyproject.toml

Installs come only from the lock files (hash-checked), and are skipped when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".installed"


def run(*command: str | Path) -> None:
    result = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def install() -> None:
    """Create .venv and install the locked dependencies and the project, once per lock change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 is
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    digest = hashlib.sha256(DEV_LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if STAMP.exists() and STAMP.read_text() == digest.hexdigest():
        return
    if not (BIN / "python").exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("installing locked dependencies into .venv", flush=True)
    pip = (BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q")
    run(*pip, "install", "--require-hashes", "--no-deps", "-r", DEV_LOCK)
    run(*pip, "install", "--no-deps", "-e", ".")
    STAMP.write_text(digest.hexdigest())


# Every status decision lives in worker/rules: every line and branch of it is tested.
RULES_COVERAGE = (
    "--cov=worker.rules",
    "--cov-branch",
    "--cov-report=term-missing:skip-covered",
    "--cov-fail-under=100",
)


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(BIN / "python", "-m", "pytest", *RULES_COVERAGE, *args)


def lock() -> None:
    for target, extra in ((LOCK, ()), (DEV_LOCK, ("--extra", "dev"))):
        run(
            BIN / "uv",
            "pip",
            "compile",
            "pyproject.toml",
            *extra,
            "--generate-hashes",
            "--universal",
            "--python-version",
            "3.11",
            "-q",
            "-o",
            target,
        )


def main() -> None:
    task, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if task not in ("dev", "test", "bench", "lock"):
        sys.exit(__doc__)
    install()
    if task == "dev":
        run(BIN / "order-status", "dev", *args)
    elif task == "test":
        test(args)
    elif task == "bench":
        run(BIN / "python", "bench/run.py", *args)
    else:
        lock()


if __name__ == "__main__":
    main()
