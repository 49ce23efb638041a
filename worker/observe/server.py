"""The worker's HTTP server: `/metrics`, `/health/live`, `/health/ready`, and whatever routes the
caller adds (the web plan view), served by uvicorn inside the worker's own event loop.

    server = ObservabilityServer(metrics, health, host, port)
    await server.start()        # listening once this returns; server.port is the bound port
    ...
    await server.stop()         # finishes the responses in flight, then closes

The worker owns SIGTERM and SIGINT: the server installs no signal handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence

import uvicorn
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.observe.health import Health, Verdict
from worker.observe.metrics import Metrics

# A probe is answered in milliseconds; a stop waits no longer than this for one in flight.
GRACEFUL_STOP_S = 5


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would replace the worker's SIGTERM handler with its own while serving.
        yield


def observability_app(
    metrics: Metrics, health: Health, routes: Sequence[BaseRoute] = ()
) -> Starlette:
    async def scrape(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), headers={"Content-Type": content_type})

    async def live(_: Request) -> JSONResponse:
        return _verdict(health.live())

    async def ready(_: Request) -> JSONResponse:
        return _verdict(await health.ready())

    return Starlette(
        routes=[
            Route("/metrics", scrape),
            Route("/health/live", live),
            Route("/health/ready", ready),
            *routes,
        ]
    )


def _verdict(verdict: Verdict) -> JSONResponse:
    body = {"status": "ok" if verdict.healthy else "failing", **verdict.detail}
    return JSONResponse(body, status_code=200 if verdict.healthy else 503)


class ObservabilityServer:
    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        host: str,
        port: int,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._server = _Server(
            uvicorn.Config(
                observability_app(metrics, health, routes),
                lifespan="off",
                log_config=None,  # uvicorn's loggers go through the worker's logging setup
                access_log=False,  # probes every few seconds would drown the log
                timeout_graceful_shutdown=GRACEFUL_STOP_S,
            )
        )

    @property
    def port(self) -> int:
        """The bound port (the one the system chose when asked for 0)."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind (an address in use fails here, with the address) and serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            self._socket = socket.create_server((self.host, self._requested_port), family=family)
        except OSError as error:
            raise OSError(
                error.errno, f"cannot listen on {self.host}:{self._requested_port}: {error}"
            ) from error
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
