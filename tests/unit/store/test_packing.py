"""Commands packed by hiredis are the bytes redis-py's own packer writes."""

from __future__ import annotations

import pytest
from redis.asyncio import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.typing import EncodableT

from worker.config import HiredisPacking, redis_client
from worker.settings import Settings


def connection(settings: Settings) -> AbstractConnection:
    """A connection as the worker's client makes them (not connected)."""
    client = redis_client(settings)
    if isinstance(client, RedisCluster):  # a node's, as each node makes them
        node = client.startup_nodes[0]
        return node.connection_class(**node.connection_kwargs)
    pool = client.connection_pool
    return pool.connection_class(**pool.connection_kwargs)


COMMANDS: list[tuple[EncodableT, ...]] = [
    ("SET", "k", "v"),
    ("CONFIG GET", "maxmemory"),  # a command of two words is split, as redis-py does
    (b"CLIENT SETNAME", b"worker"),
    ("EVALSHA", "f" * 40, 2, "{g:orders:0}:meta", "{g:orders:0}:out", 1.5, b"\x00\xff", "é"),
    ("SET", "big", b"x" * 100_000, memoryview(b"payload")),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_hiredis_packs_what_redis_py_packs(command: tuple[EncodableT, ...]) -> None:
    python, hiredis = Connection(), connection(Settings())
    assert isinstance(hiredis, HiredisPacking)
    assert b"".join(hiredis.pack_command(*command)) == b"".join(python.pack_command(*command))


def test_a_cluster_client_packs_with_hiredis_on_every_node_found_later_too() -> None:
    client = redis_client(Settings(redis_cluster=True))
    assert isinstance(client, RedisCluster)
    assert isinstance(connection(Settings(redis_cluster=True)), HiredisPacking)
    # The nodes the client learns from the slot map are made with the client's options.
    assert issubclass(client.connection_kwargs["connection_class"], HiredisPacking)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///run/redis.sock", UnixDomainSocketConnection),
    ],
)
def test_the_url_still_chooses_the_connection(url: str, kind: type[Connection]) -> None:
    made = connection(Settings(redis_url=url))
    assert isinstance(made, kind)
    assert isinstance(made, HiredisPacking)
