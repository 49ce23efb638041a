"""The wire contract: strict models with errors that name the field, and committed documents."""

from __future__ import annotations

import json

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
        (_with(time="yesterday"), "task.updated.time: Input should be a valid datetime"),
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


def test_committed_json_schema_and_asyncapi_documents_match_the_models() -> None:
    assert write_documents(check=True) == [], "run `order-status schemas` and commit the result"
