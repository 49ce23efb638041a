"""How each stage's records are stored: in one place, for the stages and for the readers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from worker.rules import OrderRecord
from worker.rules.service import ActivityRecord, ServiceRecord

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Codec(Generic[M]):
    model: type[M]

    def encode(self, record: M) -> bytes:
        return record.model_dump_json().encode()

    def decode(self, raw: bytes) -> M:
        return self.model.model_validate_json(raw)


ORDERS = Codec(OrderRecord)
SERVICES = Codec(ServiceRecord)
ACTIVITY = Codec(ActivityRecord)
