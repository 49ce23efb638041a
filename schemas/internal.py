"""Events the worker sends itself: the order stage tells the service stage what a line item did to
its service, keyed by service id (the Kafka Streams repartition pattern), so every update of one
service is applied by one consumer in order, whichever instance handled the order."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from schemas.envelope import Envelope, Strict
from schemas.inbound import Action, Id, NonPayEvent, Term, validate
from schemas.outbound import SOURCE


class ServiceActionData(Strict):
    service_id: Id
    action: Action
    outcome: Literal["created", "completed", "canceled"]
    order_id: str
    line_item_id: str
    account_id: str | None = None
    product_id: str | None = None
    location_id: str | None = None
    term: Term | None = None
    caused_by: str
    at: AwareDatetime


class ServiceAction(Envelope):
    source: str = SOURCE
    type: Literal["service.action"] = "service.action"
    data: ServiceActionData


class TermEndedData(Strict):
    service_id: Id
    term_end: AwareDatetime = Field(description="The end of the term that is ending.")


class TermEnded(Envelope):
    """Sent by the expiry scheduler when a service's term end has passed."""

    source: str = SOURCE
    type: Literal["service.term.ended"] = "service.term.ended"
    data: TermEndedData


ServiceEvent = ServiceAction | NonPayEvent | TermEnded
"""What the service stage consumes: line item actions, billing's non-pay events, term ends."""

service_event = TypeAdapter[ServiceEvent](Annotated[ServiceEvent, Field(discriminator="type")])


def parse_service_event(raw: bytes | str) -> ServiceEvent:
    return validate(service_event, raw)
