"""What operators see of a running worker: Prometheus metrics, liveness and readiness, and the
HTTP server that serves them."""

from worker.observe.health import Check, Health, Verdict, broker_check, redis_check
from worker.observe.metrics import DeadLetterReason, Metrics, Stage, Totals
from worker.observe.server import ObservabilityServer, observability_app

__all__ = [
    "Check",
    "DeadLetterReason",
    "Health",
    "Metrics",
    "ObservabilityServer",
    "Stage",
    "Totals",
    "Verdict",
    "broker_check",
    "observability_app",
    "redis_check",
]
