"""The HTTP server over real HTTP: uvicorn on a free port inside the test's event loop, httpx."""

from __future__ import annotations

import signal
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from worker.observe import Health, Metrics, ObservabilityServer


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def _plan(_: Request) -> PlainTextResponse:
    return PlainTextResponse("the plan view")


@pytest.fixture
async def served() -> AsyncIterator[tuple[ObservabilityServer, Metrics, Health, Clock]]:
    metrics, clock = Metrics(), Clock()
    health = Health(["g"], stall_after_s=30, check_timeout_s=0.5, clock=clock)
    server = ObservabilityServer(metrics, health, "127.0.0.1", 0, [Route("/plan", _plan)])
    await server.start()
    yield server, metrics, health, clock
    await server.stop()


async def test_metrics_are_scraped_from_the_workers_registry(
    served: tuple[ObservabilityServer, Metrics, Health, Clock],
) -> None:
    server, metrics, _, _ = served
    assert server.port > 0
    metrics.consumed("orders", "fulfillment.orders.v1", 3)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/metrics")
        openmetrics = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    sample = 'order_status_records_consumed_total{stage="orders",topic="fulfillment.orders.v1"} 3.0'
    assert sample in response.text
    assert "process_resident_memory_bytes" in response.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_probes_answer_with_their_reasons(
    served: tuple[ObservabilityServer, Metrics, Health, Clock],
) -> None:
    server, _, health, clock = served
    async with httpx.AsyncClient(base_url=server.url) as client:
        unready = await client.get("/health/ready")
        health.assigned("g", [("t", 0)])
        ready = await client.get("/health/ready")
        health.lag("g", "t", 0, 7)
        clock.now += 31
        dead = await client.get("/health/live")
        health.progressed("g")
        alive = await client.get("/health/live")
        extra = await client.get("/plan")
    assert unready.status_code == 503
    assert unready.json()["reason"] == "group g has no assignment yet"
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "groups": {"g": "1 partitions"}, "checks": {}}
    assert dead.status_code == 503
    assert dead.json()["status"] == "failing"
    assert dead.json()["lag"] == 7
    assert alive.status_code == 200
    assert extra.text == "the plan view"


async def test_the_server_leaves_signals_to_the_worker_and_stops_cleanly() -> None:
    before = signal.getsignal(signal.SIGTERM)
    server = ObservabilityServer(Metrics(), Health([], 30, 1), "127.0.0.1", 0)
    await server.start()
    assert signal.getsignal(signal.SIGTERM) is before
    url = server.url
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/health/live")


async def test_a_port_in_use_fails_at_start_naming_the_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = ObservabilityServer(Metrics(), Health([], 30, 1), "127.0.0.1", port)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start()
