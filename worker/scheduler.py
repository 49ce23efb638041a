"""The term-expiry scheduler: turns due term ends into `service.term.ended` events for the service
stage. Runs in every worker instance; the schedule's leases keep two from claiming one service at
the same time, and the event's deterministic id makes a repeat harmless."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from schemas.internal import TermEnded, TermEndedData
from worker.pipeline import CONTENT_TYPE, Sender
from worker.rules import output_id
from worker.store.expiry import ExpirySchedule

log = structlog.get_logger("worker.scheduler")
LEASE = timedelta(seconds=60)


def term_ended(service_id: str, term_end: datetime) -> TermEnded:
    cause = f"term-end:{service_id}:{term_end.isoformat()}"
    return TermEnded(
        id=output_id(cause, "service.term.ended", service_id),
        subject=service_id,
        time=term_end,
        data=TermEndedData(service_id=service_id, term_end=term_end),
    )


async def expire_due(schedule: ExpirySchedule, send: Sender, topic: str, now: datetime) -> int:
    """Send a term-ended event for every due service; answers how many were sent."""
    claimed = await schedule.claim(now, LEASE)
    acks: list[asyncio.Future[Any]] = []
    for service_id, term_end in claimed:
        event = term_ended(service_id, term_end)
        acks.append(
            await send(
                topic,
                service_id.encode(),
                event.model_dump_json().encode(),
                {"content-type": CONTENT_TYPE},
            )
        )
    await asyncio.gather(*acks)
    await schedule.done(claimed)
    if claimed:
        log.info("term ends sent", count=len(claimed))
    return len(claimed)


async def run_scheduler(
    schedule: ExpirySchedule,
    send: Sender,
    topic: str,
    clock: Callable[[], datetime],
    interval_s: float,
) -> None:
    """Check for due term ends every `interval_s` until cancelled; a fault waits for next time."""
    while True:
        try:
            await expire_due(schedule, send, topic, clock())
        except Exception:
            log.exception("term-end check failed; retrying next interval")
        await asyncio.sleep(interval_s)
