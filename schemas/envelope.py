"""The CloudEvents 1.0 envelope (structured mode, JSON) that every topic carries, and the strict
field types every event is built from.

Strict where the wire is: an inbound record must say `specversion`, name a non-empty `id`, a
`source` that is a URI-reference and its `type`; `time` is an RFC 3339 string (a number is not a
time), `sequence` an integer within int64 (not a bool, a float or a string), and extension
attributes follow CloudEvents' naming rules. Events the worker produces are built in code and
fill in `specversion` and `source` themselves (`Produced`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

SOURCE: Final = "/order-status-worker"
"""The `source` of every event the worker produces."""

# RFC 3339 section 5.6 date-time: full date, "T" (RFC 3339 allows "t"), full time with seconds,
# optional fraction, and an offset. Python's parser alone accepts more (no seconds, "+0000", a
# number of seconds since the epoch), which CloudEvents does not.
_RFC3339: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]"  # full date
    r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"  # full time
)
# Every character RFC 3986 allows in a URI (one of them, or a well-formed percent-encoding). The
# grammar's finer structure, such as where "[" may appear, is not checked.
_URI_CHARACTER: Final = r"([A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})"
_URI_REFERENCE: Final = f"^{_URI_CHARACTER}+$"
_URI: Final = f"^[A-Za-z][A-Za-z0-9+.\\-]*:{_URI_CHARACTER}*$"
# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits.
_ATTRIBUTE_NAME: Final = r"^[a-z0-9]+$"

EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
"""Every time read from the wire lies in [EARLIEST, LATEST): far enough from the ends of Python's
calendar that adding any of the rules' durations (at most a century, see `worker.rules.Policy`)
can never overflow, and wide enough for any real order. Bounds against a clock (`time` not too far
in the future) are the worker's, at decode time."""


_NO_OFFSET: Final = timedelta(0)
# Compiled once: `re.fullmatch(pattern, text)` looks the pattern up in re's cache at every call.
_RFC3339_TIME: Final = re.compile(_RFC3339)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):  # a time the worker built, not one read from the wire
        return value
    if not isinstance(value, str) or not _RFC3339_TIME.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp string, such as 2026-11-21T10:15:00Z")
    return value


def _in_bounds(moment: datetime) -> datetime:
    if moment.utcoffset() == _NO_OFFSET:
        # Pydantic gives every time it parses a tzinfo of its own, and comparing two times whose
        # tzinfos differ asks both for their offsets: ten times the cost of comparing two UTC
        # times, and the rules compare times all the time. The time itself is the same.
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must lie between the years {EARLIEST.year} and {LATEST.year}")
    return moment


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_bounds),
    Field(json_schema_extra={"pattern": _RFC3339}),
]
"""An RFC 3339 time with an offset, within [EARLIEST, LATEST)."""

Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
Id = Annotated[str, Field(min_length=1)]
"""An identifier: never empty."""


def _matching(pattern: str, requirement: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.fullmatch(text):
            raise ValueError(f"must be {requirement}")
        return text

    return AfterValidator(check)


UriReference = Annotated[
    str,
    _matching(_URI_REFERENCE, "a non-empty URI-reference (RFC 3986)"),
    Field(json_schema_extra={"pattern": _URI_REFERENCE}),
]
Uri = Annotated[
    str,
    _matching(_URI, "an absolute URI (RFC 3986)"),
    Field(json_schema_extra={"pattern": _URI}),
]


class Strict(BaseModel):
    """Event data: unknown fields are errors, so a misspelt field is named instead of ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(BaseModel):
    """A CloudEvent as read from the wire. Extension attributes are kept (CloudEvents allows them):
    each must be named as CloudEvents requires and hold a string, an integer or a boolean."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        json_schema_extra={"propertyNames": {"pattern": _ATTRIBUTE_NAME}},
    )
    __pydantic_extra__: dict[
        Annotated[str, Field(pattern=_ATTRIBUTE_NAME)], StrictStr | StrictInt | StrictBool | None
    ]

    specversion: Literal["1.0"]
    id: Id = Field(description="Unique per event together with `source`.")
    source: UriReference = Field(description="A URI-reference naming the producer.")
    type: str = Field(min_length=1)
    subject: Id | None = None
    time: Timestamp | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Uri | None = None
    sequence: Int64 | None = Field(
        default=None,
        description="The source's version of the entity the event is about; lower than the "
        "version applied from the same source means stale.",
    )


class Produced(Envelope):
    """An event the worker produces: `specversion` and `source` are its own."""

    specversion: Literal["1.0"] = "1.0"
    source: str = SOURCE
    # Built from input times and timer moments, past the bounds of times read from the wire.
    time: AwareDatetime | None = None


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, the form every outbound time takes."""
    return moment.isoformat().replace("+00:00", "Z")
