"""Liveness and readiness, as the engine reports them.

Live: a worker with lag that finished no batch for `stall_after_s` is wedged (a consumer that
left its group, a Redis outage it cannot get past): Kubernetes restarts it. A worker without lag
that finishes no batch is idle, not wedged.

Ready: every consumer group has an assignment (between a revocation and the next assignment
it has none: a rebalance is under way) and every dependency answers within the timeout. An
instance whose assignment is empty (more instances than partitions) is ready and idle: were it
unready, a rolling update at full scale would wait forever for its surge pod, which the group has
no partition for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

REBALANCING = "rebalancing"

Check = Callable[[], Awaitable[object]]
"""A dependency check: returns when the dependency answered, raises when it did not."""


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    detail: dict[str, Any] = field(default_factory=dict)
    """Why, for the probe's JSON body."""


class Health:
    def __init__(
        self,
        groups: Iterable[str],
        stall_after_s: float,
        check_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._stall_after_s = stall_after_s
        self._check_timeout_s = check_timeout_s
        self._last_progress: dict[str, float] = {}  # per group
        self._lag: dict[tuple[str, str, int], int] = {}
        self._assigned: dict[str, set[tuple[str, int]] | None] = dict.fromkeys(groups)
        self._checks: dict[str, Check] = {}

    # --- fed by the engine --------------------------------------------------------------------

    def progressed(self, group: str) -> None:
        """A batch of the group finished (committed), even an empty one."""
        self._last_progress[group] = self._clock()

    def lag(self, group: str, topic: str, partition: int, records: int) -> None:
        self._lag[(group, topic, partition)] = records

    def assigned(self, group: str, partitions: Iterable[tuple[str, int]]) -> None:
        """The group's assignment after a rebalance (possibly empty): (topic, partition) pairs."""
        owned = set(partitions)
        self._assigned[group] = owned
        for key in [key for key in self._lag if key[0] == group and key[1:] not in owned]:
            del self._lag[key]
        # The new partitions' lag is not known yet; the stall clock starts at the assignment.
        self._last_progress[group] = self._clock()

    def revoked(self, group: str) -> None:
        """The group gave up its partitions: not ready until the rebalance assigns again."""
        self._assigned[group] = None
        for key in [key for key in self._lag if key[0] == group]:
            del self._lag[key]

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    # --- the probes ---------------------------------------------------------------------------

    def live(self) -> Verdict:
        """Fails when a group has lag and finished no batch for the stall threshold: one wedged
        stage fails the whole worker, however busy the others are."""
        now = self._clock()
        lag = sum(self._lag.values())
        behind: dict[str, int] = {}
        for (group, _, _), records in self._lag.items():
            behind[group] = behind.get(group, 0) + records
        stalled = {
            group: now - self._last_progress.get(group, now)
            for group, records in behind.items()
            if records > 0
        }
        detail: dict[str, Any] = {
            "lag": lag,
            "seconds_since_progress": {g: round(s, 3) for g, s in stalled.items()},
            "stall_after_s": self._stall_after_s,
        }
        wedged = {g: s for g, s in stalled.items() if s > self._stall_after_s}
        if wedged:
            detail["reason"] = "; ".join(
                f"group {group} is {behind[group]} records behind and finished no batch for "
                f"{seconds:.0f}s (more than {self._stall_after_s:g}s)"
                for group, seconds in wedged.items()
            )
            return Verdict(False, detail)
        return Verdict(True, detail)

    async def ready(self) -> Verdict:
        groups = {
            group: REBALANCING if owned is None else f"{len(owned)} partitions"
            for group, owned in self._assigned.items()
        }
        names = list(self._checks)
        answers = await asyncio.gather(*(self._run(self._checks[name]) for name in names))
        checks = dict(zip(names, answers, strict=True))
        reasons = [
            f"group {g} has no assignment yet"
            for g, owned in groups.items()
            if owned == REBALANCING
        ]
        reasons += [f"{name}: {answer}" for name, answer in checks.items() if answer != "ok"]
        detail: dict[str, Any] = {"groups": groups, "checks": checks}
        if reasons:
            detail["reason"] = "; ".join(reasons)
        return Verdict(not reasons, detail)

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self._check_timeout_s)
        except TimeoutError:
            return f"no answer within {self._check_timeout_s:g}s"
        except Exception as error:  # any failure means not ready; the probe says which
            return f"{type(error).__name__}: {error}"
        return "ok"


class Pingable(Protocol):
    def ping(self) -> Awaitable[object]: ...


class HasTopics(Protocol):
    async def topics(self) -> set[str]: ...


def redis_check(redis: Pingable) -> Check:
    """PING: Redis answers."""

    async def ping() -> object:
        return await redis.ping()

    return ping


def broker_check(consumer: HasTopics) -> Check:
    """A metadata request through the consumer's client (aiokafka's `topics()`): a broker
    answers."""

    async def metadata() -> object:
        return await consumer.topics()

    return metadata
