"""The quix-streams application of bench/quix_baseline.py: the simplified rollup
(bench/quix_rollup.py) over the three inbound topics, its state in quix's RocksDB store.

Runs with the Python of bench/.venv-quix (quix-streams is no dependency of the worker), configured
like `order-status run` from the worker's ORDER_STATUS_* variables (broker, consumer group, topics,
session timeout), plus QUIX_BENCH_CONFIG (`defaults` or `tuned`, see CONFIGS) and
QUIX_BENCH_STATE_DIR (where RocksDB keeps its files). SIGTERM stops it after a checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # `python bench/quix_app.py` puts bench/ on the path, not the project
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from quixstreams import Application  # type: ignore[import-not-found]

from bench.quix_rollup import Event, apply
from worker.settings import Settings

STATE_KEY = "order"

# What `tuned` changes from quix-streams' and librdkafka's defaults (BENCHMARKS.md has what it was
# worth here). With several input topics quix merges them by timestamp through a buffer, which it
# feeds with `consume(max_partition_buffer_size, consumer_poll_timeout)`: that call returns only
# when 10,000 records are ready or after the timeout, 1 s by default, and the buffer is fed again
# whenever one topic-partition runs dry. A 10 ms timeout (and broker fetches that wait at most
# 10 ms, not 500) cut those waits; at 1 ms it was no faster and burned 24% of a core when idle
# (10 ms: 8%; the defaults: 0.2%).
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tuned": {
        "consumer_poll_timeout": 0.01,
        "consumer_extra_config": {"fetch.wait.max.ms": 10},
    },
}


def roll_up(event: Event, state: Any) -> list[Event]:
    order, changes = apply(state.get(STATE_KEY), event)
    state.set(STATE_KEY, order)
    return changes


def published_now(value: Event, key: Any, timestamp: int, headers: Any) -> int:
    """An output's timestamp: when it is published, as the worker's outputs carry (quix gives an
    output its input's timestamp, which would make every latency zero)."""
    return time.time_ns() // 1_000_000


def application(settings: Settings, config: str, state_dir: str) -> Any:
    """The application for one of CONFIGS, on this broker: earliest offsets for a new group,
    the benchmark's session timeout (a group join on Tansu waits half of it)."""
    tuning = CONFIGS[config]
    consumer_config = {
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        **tuning.get("consumer_extra_config", {}),
    }
    app = Application(
        **(tuning | {"consumer_extra_config": consumer_config}),
        broker_address=settings.bootstrap_servers,
        consumer_group=settings.group_id,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    topics = settings.topics
    inputs = [app.dataframe(app.topic(name, value_deserializer="json")) for name in topics.inbound]
    merged = inputs[0].concat(inputs[1]).concat(inputs[2])
    outputs = merged.apply(roll_up, stateful=True, expand=True).set_timestamp(published_now)
    outputs.to_topic(app.topic(topics.order_status, value_serializer="json"))
    return app


def main() -> None:
    app = application(
        Settings(), os.environ["QUIX_BENCH_CONFIG"], os.environ["QUIX_BENCH_STATE_DIR"]
    )
    app.run()


if __name__ == "__main__":
    main()
