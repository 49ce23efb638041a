"""`order-status run` that kills itself with SIGKILL at one step of the batch: `FAULTS_DIE_AT` is
`<step>:<n>`, dying at the n-th time any stage reaches the step. A real SIGKILL at a known point
(the process gets no chance to clean up), where a random kill only sometimes hits a narrow step.

Run as `python -m tests.integration.faults.dying_worker run` with the worker's environment."""

from __future__ import annotations

import asyncio
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


def _print_tasks() -> None:
    """Each task's chain of awaits, outermost first (a task's own stack shows only its top)."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}")
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            else:
                print(f"  {awaited!r}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    sys.stdout.flush()


def tasks_on_sigusr1() -> None:
    """SIGUSR1 prints every asyncio task's stack: what a worker that never reached its step
    waits for (the test sends it before giving up)."""
    real_run = cli._run

    async def run(settings: Any) -> int:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _print_tasks)
        return await real_run(settings)

    cli._run = run


if __name__ == "__main__":
    where, _, count = os.environ["FAULTS_DIE_AT"].rpartition(":")
    die_at(where, int(count))
    tasks_on_sigusr1()
    sys.exit(cli.main())
