"""`order-status run` that kills itself with SIGKILL at one step of the batch: `FAULTS_DIE_AT` is
`<step>:<n>`, dying at the n-th time any stage reaches the step. A real SIGKILL at a known point
(the process gets no chance to clean up), where a random kill only sometimes hits a narrow step.

Run as `python -m tests.integration.faults.dying_worker run` with the worker's environment."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from worker import cli
from worker.publish import Publisher
from worker.store.groups import StageStore

STEPS: dict[str, tuple[type, str, bool]] = {
    # step: (class, method, whether the process dies after the call returned, else before it)
    "recovering": (StageStore, "recover", False),
    "reading": (StageStore, "load", False),
    "written": (StageStore, "commit", True),
    "published": (Publisher, "publish", True),
    "acknowledged": (StageStore, "acknowledge", True),
    "offsets committed": (AIOKafkaConsumer, "commit", True),
}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_at(step: str, calls: int) -> None:
    owner, name, after = STEPS[step]
    real: Callable[..., Awaitable[Any]] = getattr(owner, name)
    reached = 0

    @functools.wraps(real)
    async def dying(*args: Any, **kwargs: Any) -> Any:
        nonlocal reached
        reached += 1
        if reached == calls and not after:
            _die()
        result = await real(*args, **kwargs)
        if reached == calls and after:
            _die()
        return result

    setattr(owner, name, dying)


if __name__ == "__main__":
    where, _, count = os.environ["FAULTS_DIE_AT"].rpartition(":")
    die_at(where, int(count))
    sys.exit(cli.main())
