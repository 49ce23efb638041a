"""The CloudEvents 1.0 envelope (structured mode, JSON) that every topic carries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Event data: unknown fields are errors, so a misspelt field is named instead of ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(BaseModel):
    # CloudEvents allows extension attributes on the envelope, so unknown envelope keys are kept.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, description="Unique per event from its producer.")
    source: str = Field(min_length=1)
    type: str
    subject: str | None = None
    time: AwareDatetime | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    sequence: int | None = Field(
        default=None,
        description="The source's version of the entity the event is about; lower than the "
        "applied one means stale.",
    )


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, the form every outbound time takes."""
    return moment.isoformat().replace("+00:00", "Z")
