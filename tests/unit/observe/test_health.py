"""Liveness and readiness from what the engine reports, on a clock the test moves."""

from __future__ import annotations

import asyncio

from worker.observe import Health


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _health(clock: Clock) -> Health:
    return Health(["g", "g.services"], stall_after_s=60, check_timeout_s=0.2, clock=clock)


def test_live_fails_only_with_lag_and_no_progress_past_the_threshold() -> None:
    clock = Clock()
    health = _health(clock)
    health.assigned("g", [("t", 0)])
    clock.now += 3600
    assert health.live().healthy, "idle without lag is not wedged"

    health.lag("g", "t", 0, 25)
    clock.now += 59
    health.progressed("g")
    clock.now += 60
    assert health.live().healthy

    clock.now += 1
    health.progressed("g.services")  # another stage's progress does not unwedge this one
    verdict = health.live()
    assert not verdict.healthy
    assert verdict.detail["lag"] == 25
    assert (
        verdict.detail["reason"]
        == "group g is 25 records behind and finished no batch for 61s (more than 60s)"
    )

    health.progressed("g")
    assert health.live().healthy, "healthy again once a batch finishes"


def test_lag_of_revoked_or_reassigned_partitions_no_longer_counts() -> None:
    clock = Clock()
    health = _health(clock)
    health.assigned("g", [("t", 0), ("t", 1)])
    health.lag("g", "t", 1, 40)
    clock.now += 120
    assert not health.live().healthy
    health.assigned("g", [("t", 0)])
    clock.now += 120
    assert health.live().healthy
    health.lag("g", "t", 0, 5)
    health.revoked("g")
    clock.now += 120
    assert health.live().detail["lag"] == 0


async def test_ready_needs_an_assignment_in_every_group() -> None:
    health = _health(Clock())
    verdict = await health.ready()
    assert not verdict.healthy
    assert verdict.detail["groups"] == {"g": "rebalancing", "g.services": "rebalancing"}

    health.assigned("g", [("t", 0), ("t", 1)])
    health.assigned("g.services", [])
    verdict = await health.ready()
    assert verdict.healthy, "an empty assignment is an idle instance, not an unready one"
    assert verdict.detail["groups"] == {"g": "2 partitions", "g.services": "0 partitions"}

    health.revoked("g")
    verdict = await health.ready()
    assert not verdict.healthy
    assert verdict.detail["reason"] == "group g has no assignment yet"


async def test_ready_fails_while_a_dependency_does_not_answer() -> None:
    health = _health(Clock())
    health.assigned("g", [])
    health.assigned("g.services", [])
    blocked = asyncio.Event()

    async def redis() -> object:
        await blocked.wait()
        return True

    async def broker() -> object:
        raise ConnectionError("no broker at 127.0.0.1:1")

    health.add_check("redis", redis)
    health.add_check("broker", broker)
    verdict = await health.ready()
    assert not verdict.healthy
    assert verdict.detail["checks"] == {
        "redis": "no answer within 0.2s",
        "broker": "ConnectionError: no broker at 127.0.0.1:1",
    }

    blocked.set()

    async def answers() -> object:
        return None

    health.add_check("broker", answers)
    verdict = await health.ready()
    assert verdict.healthy
    assert verdict.detail["checks"] == {"redis": "ok", "broker": "ok"}
