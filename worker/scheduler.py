"""Housekeeping every worker instance runs on a timer: term ends become `service.term.ended`
events for the service stage, and events parked too long go to the dead-letter topic. The
schedules' leases keep two instances from claiming the same member at once, and deterministic ids
make a repeat harmless. The clock is injected, so tests control time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import structlog

from schemas.internal import TermEnded, TermEndedData
from worker.pipeline import DEFAULT_HEADERS
from worker.publish import Outgoing, Publish
from worker.rules import output_id
from worker.store.schedule import Schedule, parse_term_end_member

log = structlog.get_logger("worker.scheduler")
LEASE = timedelta(seconds=60)

Job = Callable[[datetime], Awaitable[int]]


def term_ended(service_id: str, term_end: datetime) -> TermEnded:
    cause = f"term-end:{service_id}:{term_end.isoformat()}"
    return TermEnded(
        id=output_id(cause, "service.term.ended", service_id),
        subject=service_id,
        time=term_end,
        data=TermEndedData(service_id=service_id, term_end=term_end),
    )


async def expire_due(schedule: Schedule, publish: Publish, topic: str, now: datetime) -> int:
    """Send a term-ended event for every service whose term has ended; how many were sent."""
    claimed = await schedule.claim(now, LEASE)
    await publish(
        [
            Outgoing(
                topic,
                service_id.encode(),
                term_ended(service_id, term_end).model_dump_json().encode(),
                DEFAULT_HEADERS,
            )
            for service_id, term_end in map(parse_term_end_member, claimed)
        ]
    )
    await schedule.remove(claimed)
    if claimed:
        log.info("term ends sent", count=len(claimed))
    return len(claimed)


async def run_periodically(
    jobs: Sequence[Job], clock: Callable[[], datetime], interval_s: float
) -> None:
    """Run every job each `interval_s` until cancelled; a failed run is retried next time."""
    while True:
        for job in jobs:
            try:
                await job(clock())
            except Exception:
                log.exception("housekeeping failed; retrying next interval", job=repr(job))
        await asyncio.sleep(interval_s)
