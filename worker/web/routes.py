"""The plan's routes, read-only: the overview, order and service pages, their JSON, the live
update of an order page and the static files.

    app = Starlette(routes=[*health_and_metrics, *plan_routes(reader, settings.web, ...)])
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from markupsafe import Markup
from sse_starlette import EventSourceResponse
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from worker.web.access import PlanAccess
from worker.web.ids import MAX_ID_LENGTH, is_valid_id
from worker.web.live import fragment_updates
from worker.web.pages import Links, order_fragments, render
from worker.web.reader import PlanReader
from worker.web.settings import WebSettings
from worker.web.views import OrderView, ServiceView, order_view, overview_view, service_view
from worker.web.vocabulary import Vocabulary

# Pages show live data: never from a cache.
_NO_STORE: Final = {"cache-control": "no-store"}


def plan_routes(
    reader: PlanReader,
    settings: WebSettings,
    default_vocabulary: Vocabulary = Vocabulary.SERVICENOW,
    *,
    poll_interval_s: float = 1.0,
    timeline_limit: int = 100,
    overview_limit: int = 20,
) -> list[BaseRoute]:
    """Every route of the plan, each behind the access settings. `default_vocabulary` names states
    until the viewer picks another; an order page shows its `timeline_limit` latest events, the
    overview `overview_limit` orders per list."""
    plan = _Plan(reader, default_vocabulary, poll_interval_s, timeline_limit, overview_limit)
    guarded = [Middleware(PlanAccess, settings=settings)]
    pages = [
        ("/", plan.overview_page, "plan_overview"),
        ("/search", plan.search, "plan_search"),
        ("/orders/{order_id}", plan.order_page, "plan_order"),
        ("/orders/{order_id}/live", plan.order_live, "plan_order_live"),
        ("/services/{service_id}", plan.service_page, "plan_service"),
        ("/api/overview", plan.overview_json, "plan_api_overview"),
        ("/api/orders/{order_id}", plan.order_json, "plan_api_order"),
        ("/api/services/{service_id}", plan.service_json, "plan_api_service"),
    ]
    return [
        *(Route(path, endpoint, name=name, middleware=guarded) for path, endpoint, name in pages),
        Mount(
            "/static",
            app=StaticFiles(packages=[("worker.web", "static")]),
            name="plan_static",
            middleware=guarded,
        ),
    ]


class _Refused(Exception):
    """An answer other than the page: an id the routes do not accept, or one not in the store."""

    def __init__(self, status: int, message: str, entity_id: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.entity_id = entity_id

    def as_json(self) -> JSONResponse:
        body = {"error": self.message, "id": self.entity_id}
        return JSONResponse(body, self.status, headers=_NO_STORE)


@dataclass(frozen=True, slots=True)
class _Plan:
    reader: PlanReader
    default_vocabulary: Vocabulary
    poll_interval_s: float
    timeline_limit: int
    overview_limit: int

    # --- pages ------------------------------------------------------------------------------------

    async def overview_page(self, request: Request) -> Response:
        view = overview_view(await self.reader.overview(self.overview_limit))
        return self._page(request, "overview.html", overview=view)

    async def search(self, request: Request) -> Response:
        links = self._links(request)
        wanted = request.query_params.get("q", "").strip()
        if not wanted:
            return RedirectResponse(links.overview(), status_code=303)
        try:
            _valid(wanted)
        except _Refused as refused:
            return self._refusal(request, refused)
        if await self.reader.order(wanted) is not None:
            return RedirectResponse(links.order(wanted) or links.overview(), status_code=303)
        if await self.reader.service(wanted) is not None:
            return RedirectResponse(links.service(wanted) or links.overview(), status_code=303)
        return self._refusal(request, _Refused(404, "No order or service has this id.", wanted))

    async def order_page(self, request: Request) -> Response:
        try:
            version, view = await self._order(request.path_params["order_id"])
        except _Refused as refused:
            return self._refusal(request, refused)
        links = self._links(request)
        fragments = {name: Markup(html) for name, html in order_fragments(view, links).items()}
        return self._page(
            request,
            "order.html",
            order=view,
            fragments=fragments,
            live_url=links.live(view.order_id, version),
        )

    async def order_live(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        try:
            _valid(order_id)
        except _Refused as refused:
            return refused.as_json()
        links = self._links(request)
        page_version = request.query_params.get("v", "")

        async def render() -> dict[str, str] | None:
            try:
                _, view = await self._order(order_id)
            except _Refused:
                return None
            return order_fragments(view, links)

        updates = fragment_updates(
            self.reader,
            order_id,
            int(page_version) if page_version.isdigit() else -1,
            render,
            self.poll_interval_s,
        )
        return EventSourceResponse(updates, headers=_NO_STORE, send_timeout=10)

    async def service_page(self, request: Request) -> Response:
        try:
            view = await self._service(request.path_params["service_id"])
        except _Refused as refused:
            return self._refusal(request, refused)
        return self._page(request, "service.html", service=view)

    # --- JSON -------------------------------------------------------------------------------------

    async def overview_json(self, request: Request) -> Response:
        view = overview_view(await self.reader.overview(self.overview_limit))
        return JSONResponse(view.model_dump(mode="json"), headers=_NO_STORE)

    async def order_json(self, request: Request) -> Response:
        try:
            version, view = await self._order(request.path_params["order_id"])
        except _Refused as refused:
            return refused.as_json()
        return JSONResponse({"version": version, **view.model_dump(mode="json")}, headers=_NO_STORE)

    async def service_json(self, request: Request) -> Response:
        try:
            view = await self._service(request.path_params["service_id"])
        except _Refused as refused:
            return refused.as_json()
        return JSONResponse(view.model_dump(mode="json"), headers=_NO_STORE)

    # --- reads ------------------------------------------------------------------------------------

    async def _order(self, order_id: str) -> tuple[int, OrderView]:
        """The order's version and view. The version is read first: a write landing between the
        reads makes the view newer than the version, never older, so the live update resends."""
        _valid(order_id)
        version = await self.reader.order_version(order_id)
        record = await self.reader.order(order_id)
        if record is None:
            raise _Refused(404, "No order has this id.", order_id)
        order = record.order
        service_ids = sorted(
            {item.service_id for item in order.line_items.values() if item.service_id}
            if order is not None
            else set()
        )
        timeline, *services = await asyncio.gather(
            self.reader.timeline(order_id, self.timeline_limit),
            *(self.reader.service(service_id) for service_id in service_ids),
        )
        by_id = dict(zip(service_ids, services, strict=True))
        return version, order_view(record, timeline, by_id, datetime.now(UTC))

    async def _service(self, service_id: str) -> ServiceView:
        _valid(service_id)
        record = await self.reader.service(service_id)
        if record is None:
            raise _Refused(404, "No service has this id.", service_id)
        return service_view(record)

    # --- answers ----------------------------------------------------------------------------------

    def _links(self, request: Request) -> Links:
        try:
            vocabulary = Vocabulary(request.query_params.get("labels", ""))
        except ValueError:  # none picked, or not one of ours
            vocabulary = self.default_vocabulary
        return Links(request.scope.get("root_path", ""), vocabulary, self.default_vocabulary)

    def _page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        html = render(template, self._links(request), **context)
        return HTMLResponse(html, status_code=status, headers=_NO_STORE)

    def _refusal(self, request: Request, refused: _Refused) -> Response:
        heading = "Not found" if refused.status == 404 else "Not accepted"
        return self._page(
            request,
            "refused.html",
            refused.status,
            heading=heading,
            message=refused.message,
            entity_id=refused.entity_id,
        )


def _valid(entity_id: str) -> None:
    if not is_valid_id(entity_id):
        raise _Refused(
            400,
            f"Not an id the plan accepts: ids are 1 to {MAX_ID_LENGTH} letters, digits and "
            "_ . : @ + - characters.",
            entity_id,
        )
