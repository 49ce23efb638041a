"""When each service's term ends: a Redis sorted set scored by term end, claimed with leases."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files

from redis.asyncio import Redis

from worker.rules.service import ServiceRecord
from worker.rules.states import service_is_final

# One sorted set for all services: the schedule is global, so it cannot share a service's hash tag.
SCHEDULE_KEY = "order-status:term-ends"


def _member(service_id: str, term_end: datetime) -> str:
    return f"{term_end.astimezone(UTC).isoformat()}|{service_id}"


def parse_member(member: bytes | str) -> tuple[str, datetime]:
    text = member.decode() if isinstance(member, bytes) else member
    term_end, service_id = text.split("|", 1)
    return service_id, datetime.fromisoformat(term_end)


class ExpirySchedule:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(files("worker.store").joinpath("claim.lua").read_text())

    async def schedule(self, records: Iterable[ServiceRecord]) -> None:
        """Schedule every live service's current term end (NX: a claimed one keeps its lease)."""
        due = {
            _member(record.service_id, service.term.end): service.term.end.timestamp()
            for record in records
            if (service := record.service) is not None
            and service.term is not None
            and not service_is_final(service.state)
        }
        if due:
            await self._redis.zadd(SCHEDULE_KEY, due, nx=True)

    async def claim(
        self, now: datetime, lease: timedelta, limit: int = 500
    ) -> list[tuple[str, datetime]]:
        """Due (service id, term end) pairs, leased to the caller."""
        members: Sequence[bytes] = await self._claim(
            keys=[SCHEDULE_KEY], args=[now.timestamp(), (now + lease).timestamp(), limit]
        )
        return [parse_member(member) for member in members]

    async def done(self, claimed: Iterable[tuple[str, datetime]]) -> None:
        members = [_member(service_id, term_end) for service_id, term_end in claimed]
        if members:
            await self._redis.zrem(SCHEDULE_KEY, *members)
