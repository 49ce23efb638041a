"""The AsyncAPI 3.0 document of the wire contract, built from the pydantic models and the table of
channels below: no running broker, no worker code.

Inbound channels carry each only its own event types (an event type's first part names its topic,
`schemas.topics.INBOUND_FAMILIES`); every message is a CloudEvent in structured mode, with its
Kafka key and headers documented.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas import inbound, internal, outbound
from schemas.envelope import Envelope
from schemas.topics import DEFAULT_BOOTSTRAP_SERVERS, Topics, inbound_field

CONTENT_TYPE = "application/cloudevents+json"
KAFKA_BINDING = "0.5.0"
CONTRACT_VERSION = "1.0.0"

Direction = Literal["in", "out", "internal"]


class ActivityInput(Envelope):
    """Internal: what a service change did to its account, product or location, for the activity
    stage. Its `data` is the worker's own and may change between releases."""


@dataclass(frozen=True, slots=True)
class Channel:
    topic: str
    """The `Topics` field holding the topic name."""
    direction: Direction
    key: str
    """What the Kafka key is."""
    messages: tuple[type[BaseModel], ...]


def _members(union: Any) -> tuple[type[BaseModel], ...]:
    return tuple(typing.get_args(union)) or (union,)


def _event_types(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(typing.get_args(model.model_fields["type"].annotation))


_INBOUND: tuple[type[BaseModel], ...] = (*_members(inbound.OrderEvent), inbound.NonPayEvent)


def _inbound_on(topic: str) -> tuple[type[BaseModel], ...]:
    return tuple(m for m in _INBOUND if inbound_field(_event_types(m)[0]) == topic)


CHANNELS = (
    Channel("orders", "in", "order id", _inbound_on("orders")),
    Channel("work_orders", "in", "order id", _inbound_on("work_orders")),
    Channel("tasks", "in", "order id", _inbound_on("tasks")),
    Channel("billing", "in", "service id", _inbound_on("billing")),
    Channel("order_status", "out", "order id", _members(outbound.StatusEvent)),
    Channel(
        "service_status",
        "out",
        "service id; account, product and location events: that owner's id",
        _members(outbound.ServiceStatusEvent),
    ),
    Channel("ops", "out", "order id", _members(outbound.OpsEvent)),
    Channel("dead_letter", "out", "the consumed record's key, as consumed", ()),
    Channel(
        "service_actions",
        "internal",
        "service id",
        tuple(m for m in _members(internal.ServiceEvent) if m not in _INBOUND),
    ),
    Channel("activity_inputs", "internal", "`<kind>:<owner id>`", (ActivityInput,)),
)

DEAD_LETTER_HEADERS: dict[str, str] = {
    "dlq-error": "Why the record could not be processed (truncated to fit the broker's limit).",
    "dlq-source-topic": "The topic the record was consumed from.",
    "dlq-source-partition": "Its partition (decimal).",
    "dlq-source-offset": "Its offset (decimal): the dead letter is found by these three.",
    "dlq-payload-omitted": "Present (`true`) when the original value was too large for the "
    "broker and was left out: read it from the source topic, partition and offset.",
}


@dataclass(frozen=True, slots=True)
class Security:
    """How clients reach the broker (the worker's security settings)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None


_SASL_SCHEMES = {"PLAIN": "plain", "SCRAM-SHA-256": "scramSha256", "SCRAM-SHA-512": "scramSha512"}


def asyncapi_document(
    topics: Topics | None = None,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS,
    security: Security | None = None,
) -> dict[str, Any]:
    """The document for these topic names and servers (the defaults when not given)."""
    topics = topics or Topics()
    security = security or Security()
    models = {model for channel in CHANNELS for model in channel.messages}
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel in CHANNELS:
        channel_id = channel.topic.replace("_", "-")
        names = _channel_messages(channel, messages)
        field = Topics.model_fields[channel.topic]
        channels[channel_id] = {
            "address": getattr(topics, channel.topic),
            "title": channel_id,
            "description": field.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}},
        }
        for action in _actions(channel.direction):
            operations[f"{action}-{channel_id}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"The worker {'receives' if action == 'receive' else 'sends'} "
                f"{'these events' if names != ['DeadLetter'] else 'dead letters'}.",
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{n}"} for n in names],
            }
    servers, schemes = _servers(bootstrap_servers, security)
    components: dict[str, Any] = {
        "schemas": _asyncapi_schemas(schemas.get("$defs", {})),
        "messages": messages,
    }
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "order status worker",
            "version": CONTRACT_VERSION,
            "description": "Wire contract v1 of the order status worker: CloudEvents 1.0 in "
            "structured mode (JSON) on every topic. Outbound event ids are deterministic "
            "(deduplicate on `id`); each names its cause in `data.caused_by`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": components,
    }


def asyncapi_text(
    topics: Topics | None = None,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS,
    security: Security | None = None,
) -> str:
    document = asyncapi_document(topics, bootstrap_servers, security)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _actions(direction: Direction) -> tuple[str, ...]:
    return {"in": ("receive",), "out": ("send",), "internal": ("send", "receive")}[direction]


def _channel_messages(channel: Channel, messages: dict[str, Any]) -> list[str]:
    """Adds the channel's messages to `messages`; answers their names."""
    key = {"type": "string", "description": channel.key}
    if not channel.messages:
        messages["DeadLetter"] = _dead_letter(key)
        return ["DeadLetter"]
    for model in channel.messages:
        types = _event_types(model)
        messages[model.__name__] = {
            "name": model.__name__,
            "title": ", ".join(types),
            "summary": _summary(model, types),
            "contentType": CONTENT_TYPE,
            "headers": _content_type_header(required=channel.direction != "in"),
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
        }
    return [model.__name__ for model in channel.messages]


def _summary(model: type[BaseModel], types: Sequence[str]) -> str:
    if model.__doc__:  # a class's docstring is its own, never inherited
        return " ".join(model.__doc__.split())
    return f"CloudEvent of type {' or '.join(types)}."


def _content_type_header(required: bool) -> dict[str, Any]:
    header: dict[str, Any] = {
        "type": "string",
        "description": "The record's content type (the worker reads the value whatever it is).",
    }
    if required:
        header = {"const": CONTENT_TYPE, "description": "Set on every record the worker sends."}
    schema: dict[str, Any] = {"type": "object", "properties": {"content-type": header}}
    if required:
        schema["required"] = ["content-type"]
    return schema


def _dead_letter(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "dead letter",
        "summary": "A record the worker could not read, validate or apply (unknown type, "
        "invalid, an order or parent that never arrived, a rule failure), with its value, key "
        "and headers exactly as consumed and headers naming the error and the source.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": text}
                for name, text in DEAD_LETTER_HEADERS.items()
            },
            "required": [name for name in DEAD_LETTER_HEADERS if name != "dlq-payload-omitted"],
            "additionalProperties": {
                "description": "Every header of the consumed record, kept as it was."
            },
        },
        "payload": {
            "description": "The consumed record's value, bytes untouched (often not valid JSON, "
            "since that may be why it is here); empty when `dlq-payload-omitted` is set."
        },
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
    }


def _servers(bootstrap_servers: str, security: Security) -> tuple[dict[str, Any], dict[str, Any]]:
    secure = security.protocol.endswith("SSL")
    schemes: dict[str, Any] = {}
    if security.protocol.startswith("SASL") and security.sasl_mechanism is not None:
        schemes["sasl"] = {
            "type": _SASL_SCHEMES[security.sasl_mechanism],
            "description": f"SASL {security.sasl_mechanism}",
        }
    hosts = [host.strip() for host in bootstrap_servers.split(",") if host.strip()]
    servers = {}
    for number, host in enumerate(hosts, start=1):
        server: dict[str, Any] = {
            "host": host,
            "protocol": "kafka-secure" if secure else "kafka",
            "description": f"Bootstrap server {number} of {len(hosts)} ({security.protocol}).",
        }
        if schemes:
            server["security"] = [{"$ref": "#/components/securitySchemes/sasl"}]
        servers[f"kafka-{number}"] = server
    return servers, schemes


def _asyncapi_schemas(definitions: dict[str, Any]) -> dict[str, Any]:
    """Pydantic writes JSON Schema 2020-12; an AsyncAPI schema's `discriminator` is the property
    name alone (OpenAPI's mapping object is not allowed)."""
    return {name: _without_mappings(schema) for name, schema in definitions.items()}


def _without_mappings(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value["propertyName"]
            if key == "discriminator" and isinstance(value, dict)
            else _without_mappings(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_without_mappings(item) for item in node]
    return node
