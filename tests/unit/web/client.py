"""The plan's routes behind Starlette's TestClient, over a FakeReader."""

from __future__ import annotations

import warnings
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from tests.web.fake_reader import FakeReader
from worker.web import WebSettings, plan_routes

__all__ = ["TestClient", "plan_client"]

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 under its TestClient; the locked httpx still serves.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def plan_client(
    reader: FakeReader, settings: WebSettings | None = None, **options: Any
) -> TestClient:
    app = Starlette(routes=plan_routes(reader, settings or WebSettings(), **options))
    return TestClient(app, follow_redirects=False)
