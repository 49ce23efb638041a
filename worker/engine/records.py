"""Kafka records as the worker reads and writes them, and dead letters that are the record as
consumed: key, value and every header byte for byte (a null value stays null, a repeated header
name stays repeated), plus headers naming the error and the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Header = tuple[str, bytes | None]

DLQ_ERROR = "dlq-error"
DLQ_SOURCE_TOPIC = "dlq-source-topic"
DLQ_SOURCE_PARTITION = "dlq-source-partition"
DLQ_SOURCE_OFFSET = "dlq-source-offset"
DLQ_PAYLOAD_OMITTED = "dlq-payload-omitted"
CONTENT_TYPE = ("content-type", b"application/cloudevents+json")

MAX_ERROR_CHARS = 2000
"""A dead letter's error text is cut to this: a validation message can be longer than the record
(a 400 KB invalid record made a 2.2 MB error header)."""
RECORD_OVERHEAD = 512
"""Room for a record's framing in the broker's size limit (headers' and lengths' encoding)."""


class Record(Protocol):
    """What the worker reads of a consumed Kafka record (aiokafka's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[Header]: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to publish; `partition` None: the default partitioner's for its key."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]
    partition: int | None = None

    def size(self) -> int:
        headers = sum(len(name) + len(value or b"") for name, value in self.headers)
        return len(self.key or b"") + len(self.value or b"") + headers


def dead_letter(
    topic: str,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
    error: str,
    max_bytes: int,
) -> Outgoing:
    """The record as consumed, with its reason and source; cut down to fit `max_bytes` (the
    broker's limit) when it would not: the error text first, then the payload, which is then
    found by its source coordinates (a header says so). Never retried forever for its size."""
    if len(error) > MAX_ERROR_CHARS:
        error = f"{error[:MAX_ERROR_CHARS]}... ({len(error)} characters in all)"
    about: list[Header] = [
        (DLQ_ERROR, error.encode()),
        (DLQ_SOURCE_TOPIC, source_topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
    ]
    record = Outgoing(topic, key, value, [*headers, *about])
    if record.size() + RECORD_OVERHEAD <= max_bytes:
        return record
    omitted = (
        f"the record ({len(value or b'')} bytes of value, {len(headers)} headers) does not fit "
        f"the dead-letter topic's limit of {max_bytes} bytes: read it at {source_topic} "
        f"partition {partition} offset {offset}"
    )
    kept_key = key if len(key or b"") + RECORD_OVERHEAD + MAX_ERROR_CHARS * 2 < max_bytes else None
    return Outgoing(topic, kept_key, None, [*about, (DLQ_PAYLOAD_OMITTED, omitted.encode())])
