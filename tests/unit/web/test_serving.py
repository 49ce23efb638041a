"""Whether the worker serves the plan beside its metrics: always on a loopback address, elsewhere
only with credentials (an open plan on 0.0.0.0 would show every order to the network)."""

from __future__ import annotations

import pytest
import structlog
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.unit.web.client import TestClient
from worker.app import Worker
from worker.settings import Settings
from worker.web import WebSettings


def plan_of(host: str, web: WebSettings | None = None) -> tuple[TestClient | None, list[str]]:
    """A client of the plan routes the worker would serve (None: none), and what it logged."""
    settings = Settings(http_host=host, web=web or WebSettings())
    worker = Worker(settings, Redis.from_url("redis://127.0.0.1:1"))  # never connected
    with structlog.testing.capture_logs() as logs:
        routes = worker._plan_routes()
    events = [str(entry["event"]) for entry in logs]
    return (TestClient(Starlette(routes=routes)) if routes else None), events


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_on_a_loopback_address_the_plan_is_served_open(host: str) -> None:
    client, logged = plan_of(host)

    assert client is not None
    assert client.get("/static/plan.css").status_code == 200
    assert logged == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "worker.example"])
def test_open_to_the_network_the_plan_needs_credentials(host: str) -> None:
    client, logged = plan_of(host)
    assert client is None
    assert logged == ["plan view not served: it would be open to the network without credentials"]

    client, logged = plan_of(host, WebSettings(bearer_token="t0ken"))
    assert client is not None
    assert client.get("/static/plan.css").status_code == 401
    assert client.get("/static/plan.css", headers={"authorization": "Bearer t0ken"}).is_success
    assert logged == []
