"""Logging: JSON lines in production, a readable console for people; the lines the engine writes
at start, on every rebalance, periodically while it works, and at shutdown.

Every line on stderr goes through one renderer: structlog's own loggers, and the standard library's
(aiokafka, uvicorn, asyncio, warnings, an uncaught exception) through structlog's
`ProcessorFormatter`, so in JSON mode every line parses as JSON.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from types import TracebackType
from typing import Literal, TextIO, cast

import structlog

from worker.config import effective_configuration
from worker.observe.metrics import Metrics, Totals
from worker.settings import Settings

log = structlog.get_logger("worker")

# Their INFO lines repeat what the worker says itself (a rebalance is 8 lines per group from
# aiokafka): warnings and errors only, unless DEBUG is asked for.
CHATTY_LIBRARIES = ("aiokafka", "uvicorn")


def configure_logging(log_format: Literal["json", "console"], level: str = "INFO") -> None:
    level = level.upper()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if log_format == "json":
        # Tracebacks as one string field: a multi-line traceback would break the line format.
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(_STDERR),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(_STDERR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written: a stream taken at configuration time may be
    closed by then (a test harness swaps stderr per test; an embedding program may too)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR: TextIO = cast("TextIO", _CurrentStderr())


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    log.critical("uncaught exception", exc_info=(kind, error, trace))


def log_startup(settings: Settings, http_url: str | None = None) -> None:
    """One line with the version, the effective configuration (secrets masked) and where the
    metrics and health endpoints are."""
    log.info(
        "worker starting",
        version=version("order-status-worker"),
        http=http_url,
        configuration=effective_configuration(settings),
    )


def log_assigned(group: str, partitions: Iterable[tuple[str, int]]) -> None:
    log.info("partitions assigned", group=group, partitions=_partitions(partitions))


def log_revoked(group: str, partitions: Iterable[tuple[str, int]]) -> None:
    log.info("partitions revoked", group=group, partitions=_partitions(partitions))


def log_shutdown(batch_finished: bool, reason: str) -> None:
    """The last line: why the worker stops, and whether the batch in hand finished (and was
    committed) or was left for the partitions' next owner to process again."""
    if batch_finished:
        log.info("worker stopped", reason=reason, batch_finished=True)
    else:
        log.warning("worker stopped", reason=reason, batch_finished=False, replayed_by="next owner")


def _partitions(partitions: Iterable[tuple[str, int]]) -> list[str]:
    return sorted(f"{topic}:{partition}" for topic, partition in partitions)


class ProgressReporter:
    """An INFO line every `interval_s` while the worker runs: events/s, lag, dead letters and
    refusals since the previous line, read from the worker's counters."""

    def __init__(
        self,
        metrics: Metrics,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._interval_s = interval_s
        self._clock = clock
        self._since = clock()
        self._last: Totals = metrics.totals()

    def report(self) -> None:
        now, totals = self._clock(), self._metrics.totals()
        elapsed = max(now - self._since, 1e-9)
        applied = totals.events_applied - self._last.events_applied
        log.info(
            "progress",
            events=int(applied),
            events_per_s=round(applied / elapsed, 1),
            lag=int(totals.lag),
            dead_letters=int(totals.dead_letters - self._last.dead_letters),
            refusals=int(totals.refusals - self._last.refusals),
            seconds=round(elapsed, 1),
        )
        self._since, self._last = now, totals

    async def run(self) -> None:
        """Reports until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            self.report()
