"""The one error policy of the batch path.

- A fault known to be transient (Redis unreachable, timing out, loading, read-only during a
  failover, busy, short of in-sync replicas, asking to try again; a Kafka error that says it is
  retriable) is retried with exponential backoff and jitter (stamina), for as long as the stage
  still owns its partitions.
- Losing the group membership (a rebalance while a batch was in hand: the commit is refused, or
  another instance wrote the partition's state) abandons the batch: the stage drops what it holds
  for those partitions and takes them up again from the state in Redis.
- Anything else is fatal: the worker stops with a non-zero exit and one clear log line, without
  committing, so the orchestrator restarts it and the input is read again.

Nothing here swallows an error: each is retried, turned into a rejoin, or raised.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina
import structlog
from aiokafka import errors as kafka_errors
from redis import exceptions as redis_errors

log = structlog.get_logger("worker.engine")
# Each retry is logged (with its step) and counted here; stamina's own hook would log it twice.
stamina.instrumentation.set_on_retry_hooks([])
T = TypeVar("T")

RETRY_WAIT_INITIAL_S = 0.1
RETRY_WAIT_MAX_S = 5.0
RETRY_JITTER_S = 0.5


class MembershipLost(Exception):
    """The stage no longer owns (some of) the partitions of the batch in hand."""


class Fatal(Exception):
    """A condition the worker must not continue past (state lost, topology broken)."""


_REDIS_TRANSIENT = (
    redis_errors.ConnectionError,  # also LOADING (BusyLoadingError) and too many clients
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica answering during a failover
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
)
_REDIS_PERMANENT = (redis_errors.AuthenticationError, redis_errors.AuthorizationError)
_MEMBERSHIP = (
    kafka_errors.CommitFailedError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
    kafka_errors.RebalanceInProgressError,
    # "No current assignment for partition": a rebalance took the partitions between the stage's
    # last look at its assignment and a seek or pause (aiokafka drops the assignment before it
    # tells the rebalance listener).
    kafka_errors.IllegalStateError,
)


def is_transient(error: BaseException) -> bool:
    """Whether waiting and trying again may succeed."""
    if isinstance(error, _REDIS_PERMANENT):
        return False
    if isinstance(error, _REDIS_TRANSIENT):
        return True
    if isinstance(error, redis_errors.ResponseError):
        # A long script (it ends); too few replicas in sync for `min-replicas-to-write` (they
        # catch up). redis-py has no class of its own for either.
        return _reply(error).startswith(("BUSY", "NOREPLICAS"))
    if isinstance(error, _MEMBERSHIP):
        return False
    if isinstance(error, kafka_errors.KafkaTimeoutError):
        return True  # a request the broker did not answer in time
    if isinstance(error, kafka_errors.KafkaError):
        return bool(error.retriable)
    return isinstance(error, ConnectionError | TimeoutError)


_IN_PIPELINE = re.compile(r"of pipeline caused error: \(['\"](.*)", re.DOTALL)


def _reply(error: redis_errors.ResponseError) -> str:
    """The error reply as Redis gave it: a pipeline puts the failed command before it."""
    text = str(error)
    annotated = _IN_PIPELINE.search(text)
    return annotated.group(1) if annotated else text


def is_membership_lost(error: BaseException) -> bool:
    return isinstance(error, (MembershipLost, *_MEMBERSHIP))


def _transient_retried(
    what: str, on_retry: Callable[[str], None] | None
) -> Callable[[Exception], bool]:
    """stamina's `on`: retry transient faults, each logged with its step and counted."""

    def retry(error: Exception) -> bool:
        if not is_transient(error):
            return False
        log.warning("transient fault, retrying", step=what, error=repr(error))
        if on_retry is not None:
            on_retry(what)
        return True

    return retry


async def retrying(
    step: Callable[[], Awaitable[T]],
    what: str,
    owner: Callable[[], bool],
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Run `step`, retrying transient faults for as long as `owner()` (the stage still owns the
    batch's partitions); anything else is raised at once."""
    async for attempt in stamina.retry_context(
        on=_transient_retried(what, on_retry),
        attempts=None,
        timeout=None,
        wait_initial=RETRY_WAIT_INITIAL_S,
        wait_max=RETRY_WAIT_MAX_S,
        wait_jitter=RETRY_JITTER_S,
    ):
        with attempt:
            if not owner():
                raise MembershipLost(f"{what}: the partitions were revoked")
            return await step()
    raise AssertionError("unreachable: retry_context without limits only ends by returning")


async def starting(step: Callable[[], Awaitable[T]], what: str, deadline_s: float) -> T:
    """Run a start-up step, retrying transient faults (the broker or Redis not up yet, as when
    they start beside the worker) for `deadline_s`; then stop, naming `what`."""
    try:
        async for attempt in stamina.retry_context(
            on=_transient_retried(f"start: {what}", None),
            attempts=None,
            timeout=deadline_s,
            wait_initial=RETRY_WAIT_INITIAL_S,
            wait_max=RETRY_WAIT_MAX_S,
            wait_jitter=RETRY_JITTER_S,
        ):
            with attempt:
                return await step()
    except Exception as error:
        if not is_transient(error):
            raise
        raise Fatal(f"{what} still unreachable after {deadline_s:g} s: {error!r}") from error
    raise AssertionError("unreachable: retry_context only ends by returning or raising")
