"""The wire contract: strict models with errors that name the field, and committed documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.generate import write_documents
from schemas.inbound import InvalidEvent, OrderCreated, TaskUpdated, parse_order_event
from schemas.states import OrderState

TASK_UPDATED = {
    "specversion": "1.0",
    "id": "evt-7f3a",
    "source": "/wfm/field-service",
    "type": "task.updated",
    "subject": "T-17",
    "time": "2026-11-21T10:15:00Z",
    "datacontenttype": "application/json",
    "sequence": 12,
    "data": {"order_id": "O-1", "task_id": "T-17", "state": "in_progress"},
}


def _with(**changes: object) -> bytes:
    return json.dumps({**TASK_UPDATED, **changes}).encode()


def test_the_contract_example_parses_into_its_event() -> None:
    event = parse_order_event(json.dumps(TASK_UPDATED))
    assert isinstance(event, TaskUpdated)
    assert event.sequence == 12
    assert event.data.state == "in_progress"


def test_order_created_takes_defaults_for_optional_fields() -> None:
    event = parse_order_event(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "e1",
                "source": "/capture",
                "type": "order.created",
                "data": {"order_id": "O-1", "line_items": [{"line_item_id": "L-1"}]},
            }
        )
    )
    assert isinstance(event, OrderCreated)
    assert event.data.state is OrderState.DRAFT
    assert event.data.profile is None
    assert event.data.line_items[0].action == "add"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty record"),
        (b"{not json", "record: Invalid JSON"),
        (_with(type="task.exploded"), "type: unknown event type 'task.exploded'"),
        (
            _with(data={"order_id": "O-1", "task_id": "T-1", "state": "done"}),
            "task.updated.data.state: Input should be",
        ),
        (
            _with(data={"order_id": "O-1", "task_id": "T-1"}),
            "task.updated.data.state: Field required",
        ),
        (
            _with(data={"order_id": "O-1", "task_id": "T-1", "state": "open", "stat": "x"}),
            "task.updated.data.stat: Extra inputs are not permitted",
        ),
        (_with(specversion="0.3"), "task.updated.specversion: Input should be '1.0'"),
        (_with(time="yesterday"), "task.updated.time: Value error, must be an RFC 3339"),
        (
            _with(type="service.nonpay.suspended", data={"service_id": "S-1"}),
            "service.nonpay.suspended is a service event",
        ),
    ],
)
def test_invalid_records_are_refused_with_a_reason_that_names_the_field(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_order_event(raw)
    assert str(refused.value).startswith(reason)


# --- the envelope: what CloudEvents 1.0 and CONTRACT.md require (issue 11 items 5 and 10) -------

ORDER_CREATED = {
    "specversion": "1.0",
    "id": "e1",
    "source": "/capture",
    "type": "order.created",
    "data": {
        "order_id": "O-1",
        "account_id": "A-1",
        "line_items": [
            {
                "line_item_id": "L-1",
                "service_id": "S-1",
                "product_id": "P-1",
                "location_id": "LOC-1",
                "term": {"end": "2027-11-21T00:00:00Z", "renewal": "auto_renew"},
                "work_orders": [{"work_order_id": "W-1", "tasks": [{"task_id": "T-1"}]}],
            }
        ],
    },
}


def _without(document: dict[str, object], key: str) -> bytes:
    return json.dumps({k: v for k, v in document.items() if k != key}).encode()


ENVELOPE_REFUSALS = [
    (
        "no-specversion",
        _without(TASK_UPDATED, "specversion"),
        "task.updated.specversion: Field required",
    ),
    ("no-id", _without(TASK_UPDATED, "id"), "task.updated.id: Field required"),
    ("empty-id", _with(id=""), "task.updated.id: String should have at least 1 character"),
    ("no-source", _without(TASK_UPDATED, "source"), "task.updated.source: Field required"),
    ("empty-source", _with(source=""), "task.updated.source: Value error, must be a non-empty URI"),
    (
        "source-not-a-uri-reference",
        _with(source="wfm field service"),
        "task.updated.source: Value error",
    ),
    ("source-bad-percent-encoding", _with(source="/wfm%zz"), "task.updated.source: Value error"),
    ("no-data", _without(TASK_UPDATED, "data"), "task.updated.data: Field required"),
    ("data-as-base64", _with(data_base64="e30="), "task.updated.data_base64: String should match"),
    ("empty-subject", _with(subject=""), "task.updated.subject: String should have at least 1"),
    (
        "dataschema-not-a-uri",
        _with(dataschema="schemas/task"),
        "task.updated.dataschema: Value error",
    ),
    (
        "time-as-number",
        _with(time=1795000000),
        "task.updated.time: Value error, must be an RFC 3339",
    ),
    ("time-without-seconds", _with(time="2026-11-21T10:15Z"), "task.updated.time: Value error"),
    ("time-without-offset", _with(time="2026-11-21T10:15:00"), "task.updated.time: Value error"),
    (
        "time-offset-without-colon",
        _with(time="2026-11-21T10:15:00+0100"),
        "task.updated.time: Value",
    ),
    (
        "time-a-placeholder",
        _with(time="0001-01-01T00:00:00Z"),
        "task.updated.time: Value error, must lie",
    ),
    (
        "time-past-the-calendar",
        _with(time="9999-12-31T23:59:59Z"),
        "task.updated.time: Value error, must lie",
    ),
    (
        "sequence-a-bool",
        _with(sequence=True),
        "task.updated.sequence: Input should be a valid integer",
    ),
    (
        "sequence-a-float",
        _with(sequence=12.0),
        "task.updated.sequence: Input should be a valid integer",
    ),
    (
        "sequence-a-string",
        _with(sequence="12"),
        "task.updated.sequence: Input should be a valid integer",
    ),
    (
        "sequence-over-int64",
        _with(sequence=2**63),
        "task.updated.sequence: Input should be less than",
    ),
    (
        "sequence-under-int64",
        _with(sequence=-(2**63) - 1),
        "task.updated.sequence: Input should be greater",
    ),
    (
        "extension-name-upper-case",
        _with(traceParent="x"),
        "task.updated.traceParent: String should match",
    ),
    ("extension-an-object", _with(trace={"a": 1}), "task.updated.trace.str: Input should be"),
    ("extension-a-float", _with(weight=1.5), "task.updated.weight.str: Input should be"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [c[1:] for c in ENVELOPE_REFUSALS], ids=[c[0] for c in ENVELOPE_REFUSALS]
)
def test_an_envelope_cloudevents_does_not_allow_is_refused_naming_the_attribute(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_order_event(raw)
    assert str(refused.value).startswith(reason)


@pytest.mark.parametrize(
    "extensions",
    [
        {},
        {"traceparent": "00-4bf92f-00f067-01"},
        {"partitionkey": "O-1", "retries": 2, "test": True},
    ],
    ids=["none", "a-string", "string-integer-boolean"],
)
def test_extension_attributes_named_as_cloudevents_requires_are_kept(
    extensions: dict[str, object],
) -> None:
    event = parse_order_event(_with(**extensions))
    assert event.model_extra == extensions


@pytest.mark.parametrize(
    "time", ["2026-11-21T10:15:00Z", "2026-11-21t10:15:00.123456+01:00", "1900-01-01T00:00:00Z"]
)
def test_rfc_3339_times_are_read(time: str) -> None:
    assert parse_order_event(_with(time=time)).time is not None


@pytest.mark.parametrize("offset", ["Z", "+00:00", "-00:00"])
def test_utc_times_share_one_tzinfo_so_they_compare_fast(offset: str) -> None:
    time = parse_order_event(_with(time=f"2026-11-21T10:15:00{offset}")).time
    assert time == datetime(2026, 11, 21, 10, 15, tzinfo=UTC)
    assert time is not None
    assert time.tzinfo is UTC


def test_a_time_with_an_offset_keeps_it() -> None:
    time = parse_order_event(_with(time="2026-11-21T11:15:00+01:00")).time
    assert time is not None
    assert time.utcoffset() == timedelta(hours=1)
    assert time == datetime(2026, 11, 21, 10, 15, tzinfo=UTC)


def _set(document: object, path: str, value: object) -> bytes:
    """The document with the field at `path` (dotted; a number indexes a list) set to `value`."""
    copy = json.loads(json.dumps(document))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return json.dumps(copy).encode()


EMPTY_IDS = [
    "data.order_id",
    "data.account_id",
    "data.line_items.0.line_item_id",
    "data.line_items.0.service_id",
    "data.line_items.0.product_id",
    "data.line_items.0.location_id",
    "data.line_items.0.work_orders.0.work_order_id",
    "data.line_items.0.work_orders.0.tasks.0.task_id",
]


@pytest.mark.parametrize("path", EMPTY_IDS)
def test_an_empty_id_is_refused_everywhere(path: str) -> None:
    """Issue 11 item 10: a line item with `service_id: ""` passed the schema and failed inside
    the rules; every id is non-empty."""
    assert isinstance(parse_order_event(json.dumps(ORDER_CREATED)), OrderCreated)
    with pytest.raises(InvalidEvent) as refused:
        parse_order_event(_set(ORDER_CREATED, path, ""))
    assert "String should have at least 1 character" in str(refused.value)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("data.line_items.0.term.period_days", 30.0, "Input should be a valid integer"),
        ("data.line_items.0.term.period_days", 36526, "less than or equal to 36525"),
        ("data.line_items.0.term.end", 1795000000, "must be an RFC 3339 timestamp"),
        ("data.enrichment", "yes", "Input should be a valid boolean"),
    ],
    ids=["period-a-float", "period-over-a-century", "term-end-a-number", "enrichment-not-a-bool"],
)
def test_order_fields_are_as_strict_as_the_envelope(path: str, value: object, reason: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_order_event(_set(ORDER_CREATED, path, value))
    assert reason in str(refused.value)


def test_committed_json_schema_and_asyncapi_documents_match_the_models() -> None:
    assert write_documents(check=True) == [], "run `order-status schemas` and commit the result"
