"""Redis refusing the worker's credentials, or Redis or the broker not there at start: the worker
waits for them until the start-up deadline, then stops with a clear error naming the address (an
authorization failure is never retried), and the password in REDIS_URL is never printed, by
`order-status run` or `order-status show`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.faults.servers import RedisServer, redis_server
from tests.integration.harness import worker_env
from worker.app import Worker
from worker.config import redis_client
from worker.embedded import free_port
from worker.engine.errors import Fatal
from worker.settings import Settings
from worker.store.reader import topology_key

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
    settings = settings.model_copy(update={"startup_deadline_s": 2.0})
    code, output = _order_status(settings, f"redis://user:{PASSWORD}@127.0.0.1:{port}/0", "run")
    assert code == 1, output
    assert f"Redis at redis://user:****@127.0.0.1:{port}/0 still unreachable after 2 s" in output
    assert PASSWORD not in output


async def test_an_unreachable_broker_stops_the_worker_at_the_start_up_deadline(
    settings: Settings,
) -> None:
    port = free_port()
    settings = settings.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{port}", "startup_deadline_s": 1.5}
    )
    worker = Worker(settings, redis_client(settings))
    started = time.monotonic()
    try:
        with pytest.raises(Fatal, match=rf"the broker at 127.0.0.1:{port} still unreachable"):
            await worker.start()
    finally:
        await worker.redis.aclose()
    assert 1.5 <= time.monotonic() - started < 15


async def test_a_redis_that_comes_up_after_the_worker_is_waited_for(
    settings: Settings, tmp_path: Path
) -> None:
    """Redis started beside the worker, a little later (as in docker-compose): start-up retries
    it until the deadline instead of failing at once."""
    late = RedisServer(tmp_path)
    settings = settings.model_copy(update={"redis_url": late.url, "startup_deadline_s": 30.0})
    worker = Worker(settings, redis_client(settings))
    starting = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(1.5)
        assert not starting.done()
        late.start()
        await asyncio.wait_for(starting, 30)
        with late.client() as client:
            assert client.exists(topology_key(settings.group_id))  # the partition counts
    finally:
        await worker.stop()
        await worker.redis.aclose()
        late.stop()
