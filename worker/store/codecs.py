"""How each stage's records are stored: in one place, for the stages and for the readers.

A record is its JSON, compressed with LZ4 (a block with its size, behind a one-byte tag): an
order's JSON repeats the same field names for every line item, work order and task, and LZ4 stores
it in about a quarter of the bytes for a tenth of what serialising it costs (BENCHMARKS.md, "Redis
per order"). A value that starts with `{` is plain JSON, as records were stored before, and is read
as such: an upgrade needs no migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import cramjam
from pydantic import BaseModel

from worker.rules import OrderRecord
from worker.rules.service import ActivityRecord, ServiceRecord

M = TypeVar("M", bound=BaseModel)

LZ4_JSON = b"\x04"
"""The tag of a record stored as an LZ4 block of its JSON."""
PLAIN_JSON = b"{"


class UnreadableRecord(ValueError):
    """A stored value in no format this worker writes: not one of its records."""


@dataclass(frozen=True, slots=True)
class Codec(Generic[M]):
    model: type[M]

    def encode(self, record: M) -> bytes:
        return LZ4_JSON + bytes(cramjam.lz4.compress_block(record.model_dump_json().encode()))

    def decode(self, raw: bytes) -> M:
        return self.model.model_validate_json(json_of(raw))


def json_of(raw: bytes) -> bytes:
    """A stored record's JSON, whichever way it was stored."""
    tag = raw[:1]
    if tag == LZ4_JSON:
        return bytes(cramjam.lz4.decompress_block(raw[1:]))
    if tag == PLAIN_JSON:
        return raw
    raise UnreadableRecord(f"a stored record starts with {tag!r}: neither {LZ4_JSON!r} nor JSON")


ORDERS = Codec(OrderRecord)
SERVICES = Codec(ServiceRecord)
ACTIVITY = Codec(ActivityRecord)
