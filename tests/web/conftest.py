"""Browser tests: the plan served by the real worker (`order-status run` as a child process, on the
suite's broker and Redis), opened in a real headless Chromium (Debian's `chromium` and
`chromium-driver`) driven by Selenium.

Without Chromium they skip, which fails a CI run (`CI=true`): CI installs it (`.ci/run`)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.integration.harness import WorkerProcess, eventually, new_settings, publish, worker_env
from tests.web.fake_reader import FakeReader, Feed, Json
from worker.rules import OrderRecord
from worker.rules.states import ServiceState
from worker.settings import Settings
from worker.store.plan import PlanStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Screenshots, unless TEST_ARTIFACTS names another folder (CI uploads it); git ignores it.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: opens pages in Debian's headless Chromium (chromium, chromium-driver)"
    )


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or ARTIFACTS) / "web"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class PlanWorker:
    """`order-status run` serving the plan; what the tests publish to it is also run through the
    rules in memory (`Feed`), so a test knows when the worker has applied it."""

    settings: Settings
    url: str
    producer: AIOKafkaProducer
    store: PlanStore
    expected: FakeReader = field(default_factory=FakeReader)

    def __post_init__(self) -> None:
        self._feed = Feed(self.expected)

    async def send(self, *events: Json) -> None:
        """Publish the events (of one order) and wait until the worker's snapshot of it is what
        the rules make of every event sent so far."""
        order_id = events[0]["data"]["order_id"]
        self._feed.send(*events)
        await publish(self.producer, self.settings, list(events))
        expected: dict[str, object] | None = _without_reception(self.expected.records[order_id])
        await eventually(lambda: self._snapshot(order_id), expected)

    async def service_state(self, service_id: str) -> ServiceState | None:
        record = await self.store.service(service_id)
        return record.service.state if record is not None and record.service else None

    async def snapshot(self, order_id: str) -> OrderRecord:
        record = await self.store.order(order_id)
        assert record is not None, order_id
        return record

    async def _snapshot(self, order_id: str) -> dict[str, object] | None:
        record = await self.store.order(order_id)
        return None if record is None else _without_reception(record)


def _without_reception(record: OrderRecord) -> dict[str, object]:
    """The record but where and when its parked events were received (the rules run in memory
    have no broker)."""
    return record.model_dump(exclude={"parked": {"__all__": {"origin", "received_at"}}})


@pytest.fixture(scope="module")
async def plan_worker(
    bootstrap_servers: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PlanWorker]:
    """One worker for a module's tests (each uses order and service ids of its own)."""
    settings = await new_settings(bootstrap_servers, redis_url)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    # The whole timeline of the tests' orders (the refused command of `order_in_fallout` is older
    # than the latest 20 events kept by default).
    env = worker_env(
        settings, ORDER_STATUS_LOG_LEVEL="INFO", ORDER_STATUS_WEB__TIMELINE_EVENTS="100"
    )
    process = WorkerProcess(env, str(log))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    redis = Redis.from_url(redis_url)
    process.start()
    try:
        url = await _served_at(log, process)
        await producer.start()
        yield PlanWorker(settings, url, producer, PlanStore(redis, settings.group_id))
    finally:
        await producer.stop()
        await redis.aclose()
        assert process.terminate() == 0, log.read_text()


async def _served_at(log: Path, process: WorkerProcess) -> str:
    """The address of the worker's HTTP server, from its start-up line."""
    async with asyncio.timeout(30):
        while True:
            text = await asyncio.to_thread(log.read_text)
            for line in text.splitlines():
                if '"worker starting"' in line:
                    return str(json.loads(line)["http"])
            assert process.process is not None
            assert process.process.poll() is None, text
            await asyncio.sleep(0.05)
