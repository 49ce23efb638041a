"""Redis refusing the worker's credentials, or not there at all: the worker stops with a clear
error (an authorization failure is never retried forever), and the password in REDIS_URL is never
printed, by `order-status run` or `order-status show`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.faults.servers import redis_server
from tests.integration.harness import worker_env
from worker.embedded import free_port
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "s3cret-Pa55word"


def _order_status(settings: Settings, redis_url: str, *command: str) -> tuple[int, str]:
    env = worker_env(settings, REDIS_URL=redis_url, ORDER_STATUS_LOG_LEVEL="INFO")
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", *command],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.mark.parametrize("command", [("run",), ("show", "O-1")])
def test_a_refused_password_stops_the_command_without_printing_it(
    settings: Settings, tmp_path: Path, command: tuple[str, ...]
) -> None:
    with redis_server(tmp_path, "--requirepass", "another-password") as server:
        url = f"redis://default:{PASSWORD}@127.0.0.1:{server.port}/0"
        code, output = _order_status(settings, url, *command)
    assert code == 1, output
    assert "AuthenticationError" in output or "invalid username-password" in output, output
    assert PASSWORD not in output


def test_an_unreachable_redis_stops_the_worker_naming_it_without_its_password(
    settings: Settings,
) -> None:
    port = free_port()  # nothing listens there
    code, output = _order_status(settings, f"redis://user:{PASSWORD}@127.0.0.1:{port}/0", "run")
    assert code == 1, output
    assert f"127.0.0.1:{port}" in output, output
    assert PASSWORD not in output
