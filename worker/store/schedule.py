"""Due times in Redis sorted sets, claimed with leases so two worker instances never work on the
same member at once; a claimer that dies loses its lease and another instance takes over.

Two schedules: each live service's term end, and each order holding parked events (due when its
oldest parked event has waited too long). They are global, so they cannot share an entity's hash
tag: they only say when to look, and the work itself goes through the entity's atomic step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files

from redis.asyncio import Redis

from worker.rules import OrderRecord
from worker.rules.service import ServiceRecord
from worker.rules.states import service_is_final


def term_ends_key(group_id: str) -> str:
    """Per consumer group: deployments (and test runs) sharing a Redis keep their own schedules."""
    return f"order-status:{group_id}:term-ends"


def parked_key(group_id: str) -> str:
    return f"order-status:{group_id}:parked"


class Schedule:
    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self._key = key
        self._claim = redis.register_script(files("worker.store").joinpath("claim.lua").read_text())

    async def set(self, due: Mapping[str, datetime], keep_leases: bool) -> None:
        """Schedule members at their due times (`keep_leases`: a claimed one keeps its lease)."""
        if due:
            scores = {member: moment.timestamp() for member, moment in due.items()}
            await self._redis.zadd(self._key, scores, nx=keep_leases)

    async def claim(self, now: datetime, lease: timedelta, limit: int = 500) -> list[str]:
        """Members due at `now`, leased to the caller until `now + lease`."""
        members: Sequence[bytes] = await self._claim(
            keys=[self._key], args=[now.timestamp(), (now + lease).timestamp(), limit]
        )
        return [member.decode() for member in members]

    async def remove(self, members: Iterable[str]) -> None:
        names = list(members)
        if names:
            await self._redis.zrem(self._key, *names)


def term_end_member(service_id: str, term_end: datetime) -> str:
    return f"{term_end.astimezone(UTC).isoformat()}|{service_id}"


def parse_term_end_member(member: str) -> tuple[str, datetime]:
    term_end, service_id = member.split("|", 1)
    return service_id, datetime.fromisoformat(term_end)


def term_ends(records: Iterable[ServiceRecord]) -> dict[str, datetime]:
    """Every live service's current term end."""
    return {
        term_end_member(record.service_id, service.term.end): service.term.end
        for record in records
        if (service := record.service) is not None
        and service.term is not None
        and not service_is_final(service.state)
    }


def parked_due(
    records: Iterable[OrderRecord], timeout: timedelta
) -> tuple[dict[str, datetime], list[str]]:
    """Orders holding parked events, due when their oldest has waited `timeout`; and the orders
    that hold none (any schedule entry of theirs can go)."""
    due, clear = {}, []
    for record in records:
        if record.parked:
            due[record.order_id] = min(p.received_at for p in record.parked) + timeout
        else:
            clear.append(record.order_id)
    return due, clear
