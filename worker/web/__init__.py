"""The orchestration plan (seed 002, issue 15): read-only web pages and JSON of every order's
hierarchy, state, progress, fallout and services, updated live, from the worker's snapshots.

The worker's store implements `PlanReader` and calls `order_lists` on every order write; the
worker's HTTP server mounts `plan_routes(reader, settings.web, ...)`."""

from worker.web.indexes import PlanList, order_lists
from worker.web.reader import ListedOrder, Overview, PlanReader
from worker.web.routes import plan_routes
from worker.web.settings import WebSettings
from worker.web.vocabulary import Vocabulary

__all__ = [
    "ListedOrder",
    "Overview",
    "PlanList",
    "PlanReader",
    "Vocabulary",
    "WebSettings",
    "order_lists",
    "plan_routes",
]
