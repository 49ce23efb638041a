"""SIGKILL at each step of the batch (`dying_worker.STEPS`): before its records are read, after
its state and outbox are written but nothing published, after the outputs were acknowledged by
the broker but not dropped from the outbox, after they were, after Kafka offsets were committed,
and while a group is recovered. Input keeps arriving between the kills; a clean worker then
finishes, and the end state is the simulator's, with no output lost or published with two
payloads."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from tests.integration.faults.dying_worker import STEPS
from tests.integration.faults.scenario import Sent, check, generated, send, settle
from tests.integration.harness import WorkerProcess, worker_env
from tests.integration.outputs import reading_outputs
from worker.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIE_AT_CALL = 3
"""Each worker dies the third time a stage reaches its step: past the start, mid-stream."""


async def test_a_worker_killed_at_each_step_of_the_batch_loses_nothing_and_doubles_nothing(
    settings: Settings, producer: AIOKafkaProducer, redis: Redis, tmp_path: Path
) -> None:
    records = generated(settings, seed=31, orders=16)
    chunk = len(records) // (len(STEPS) + 1) + 1
    chunks = [records[start : start + chunk] for start in range(0, len(records), chunk)]
    env = worker_env(settings, ORDER_STATUS_BATCH_MAX_RECORDS="50", ORDER_STATUS_LOG_LEVEL="INFO")
    log = str(tmp_path / "worker.log")
    sent: list[Sent] = []
    async with reading_outputs(settings) as outputs:
        for step, records_before in zip(STEPS, chunks, strict=False):
            sent += await send(producer, records_before)
            dying = WorkerProcess(
                {**env, "FAULTS_DIE_AT": f"{step}:{DIE_AT_CALL}"},
                log,
                "tests.integration.faults.dying_worker",
            )
            dying.start()
            assert dying.process is not None
            try:
                exit_code = await asyncio.wait_for(asyncio.to_thread(dying.process.wait), 60)
            except TimeoutError:
                dying.process.send_signal(signal.SIGUSR1)  # it prints what its tasks wait for
                await asyncio.sleep(2)
                dying.kill()  # no orphan left behind (its waiting thread would hold the session)
                tail = dying.log_tail(300)
                pytest.fail(f"{step}: alive after 60 s, its step never reached\n{tail}")
            assert exit_code == -9, f"{step}: exited {exit_code}, not killed\n{dying.log_tail()}"
        sent += await send(producer, chunks[-1])
        finishing = WorkerProcess(env, log)
        finishing.start()
        try:
            expected = await settle(settings, outputs, sent)
            assert finishing.terminate() == 0
        finally:
            if finishing.process is not None and finishing.process.poll() is None:
                finishing.kill()
    await check(settings, redis, outputs, sent, expected)
