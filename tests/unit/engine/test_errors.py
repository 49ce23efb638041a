"""Which faults the batch path waits out: Redis replies that say waiting helps, however redis-py
hands them over (alone, or annotated by the pipeline that sent the command)."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from worker.engine.errors import is_transient


def _in_pipeline(error: redis_errors.ResponseError) -> redis_errors.ResponseError:
    """As redis-py's pipeline raises it: the failed command named before the reply."""
    Redis().pipeline().annotate_exception(error, 1, ("EVALSHA", "0a1b", 2, "{g:orders:0}:meta"))
    return error


@pytest.mark.parametrize(
    ("reply", "transient"),
    [
        ("BUSY Redis is busy running a script.", True),
        ("NOREPLICAS Not enough good replicas to write.", True),
        ("OOM command not allowed when used memory > 'maxmemory'.", False),
        ("ERR Error running script: attempt to compare nil with number", False),
    ],
)
@pytest.mark.parametrize("sent", ["alone", "in a pipeline"])
def test_a_reply_is_transient_when_waiting_helps(reply: str, transient: bool, sent: str) -> None:
    error = redis_errors.ResponseError(reply)
    assert is_transient(error if sent == "alone" else _in_pipeline(error)) is transient
