"""Suite-wide rules: on CI, a skipped test is a failure (CI starts every service it needs)."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if os.environ.get("CI") and skipped:
        print(f"\n{skipped} test(s) skipped on CI: every service must be started, none skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
