"""Fixtures of the fault matrix: a Redis of the test's own behind a TCP proxy the test controls,
and settings that make faults show within seconds (short Redis timeouts)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.integration.faults.servers import RedisServer, TcpProxy, redis_server
from worker.settings import Settings

REDIS_TIMEOUT_S = 1.0
"""The worker's Redis socket timeout in these tests: a blackhole longer than this is a fault."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def proxy(own_redis: RedisServer) -> AsyncIterator[TcpProxy]:
    tcp = TcpProxy(own_redis.port)
    await tcp.start()
    yield tcp
    await tcp.stop()


@pytest.fixture
def proxied(settings: Settings, proxy: TcpProxy) -> Settings:
    """The worker's settings, with Redis reached through the proxy."""
    return settings.model_copy(
        update={
            "redis_url": proxy.url,
            "redis_socket_timeout_s": REDIS_TIMEOUT_S,
            "redis_connect_timeout_s": REDIS_TIMEOUT_S,
        }
    )


@pytest.fixture
async def own_redis_client(own_redis: RedisServer) -> AsyncIterator[Redis]:
    """The test's own client of its Redis (not through the proxy)."""
    client = Redis.from_url(own_redis.url)
    yield client
    await client.aclose()
