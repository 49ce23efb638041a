"""Events the worker sends itself between its stages, on internal topics (the Kafka Streams
repartition pattern): the orders stage tells the services stage what a line item did to its
service, keyed by service id, and the services stage tells the activity stage which services
started or stopped counting for an account, product or location, keyed by the owner."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from schemas.envelope import Id, Produced, Strict
from schemas.inbound import Action, NonPayEvent, Term, validate


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


class ServiceAction(Produced):
    type: Literal["service.action"] = "service.action"
    data: ServiceActionData


ServiceEvent = ServiceAction | NonPayEvent
"""What the service stage consumes: line item actions and billing's non-pay events. Term ends are
timers of the service record (`worker.rules.service.advance_service`), not events."""

service_event = TypeAdapter[ServiceEvent](Annotated[ServiceEvent, Field(discriminator="type")])


def parse_service_event(raw: bytes | str) -> ServiceEvent:
    return validate(service_event, raw)


class ActivityInputData(Strict):
    kind: Literal["account", "product", "location"]
    owner_id: Id
    service_id: Id
    active: bool = Field(description="Whether the service became active (else it stopped being).")
    caused_by: str = Field(description="The id of the service change that did it.")
    at: AwareDatetime


class ActivityInput(Produced):
    """The services stage tells the activity stage that a service started or stopped counting for
    an account, product or location, keyed by `<kind>:<owner id>`."""

    type: Literal["activity.input"] = "activity.input"
    data: ActivityInputData


activity_input = TypeAdapter(ActivityInput)


def parse_activity_input(raw: bytes | str) -> ActivityInput:
    return validate(activity_input, raw)
