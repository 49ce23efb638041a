"""The generated documents are valid by their specifications' own schemas: the AsyncAPI document
against the AsyncAPI 3.0.0 JSON Schema (from the `@asyncapi/specs` npm package, fetched with npm
and checked against its pinned digest), every JSON Schema file against its metaschema."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas.asyncapi import (
    CHANNELS,
    CONTENT_TYPE,
    DEAD_LETTER_HEADERS,
    Security,
    asyncapi_document,
)
from schemas.generate import JSON_DIR, SCHEMAS_DIR
from schemas.topics import Topics
from worker.cli import main

SPECS_PACKAGE = "@asyncapi/specs@6.11.1"
# The registry's `dist.integrity` of that version: the schema the document is judged by is exactly
# the one AsyncAPI published.
SPECS_INTEGRITY = (
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/"
    "klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
SPEC_IN_PACKAGE = "package/schemas/3.0.0.json"


@pytest.fixture(scope="session")
def asyncapi_validator(tmp_path_factory: pytest.TempPathFactory) -> jsonschema.Draft7Validator:
    npm = shutil.which("npm")
    assert npm, "npm is needed to fetch the AsyncAPI specification's schema (Debian: nodejs npm)"
    folder = tmp_path_factory.mktemp("asyncapi-specs")
    packed = subprocess.run(
        [npm, "pack", SPECS_PACKAGE, "--json", "--pack-destination", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    (tarball,) = (folder / entry["filename"] for entry in json.loads(packed.stdout))
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    assert f"sha512-{digest}" == SPECS_INTEGRITY, f"{SPECS_PACKAGE} is not the published package"
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(SPEC_IN_PACKAGE)
        assert member is not None
        spec = json.load(member)
    # Every definition the schema refers to is bundled in it under its $id: nothing is fetched.
    return jsonschema.Draft7Validator(spec)


def _errors(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator.iter_errors(document)
    ]


def _committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS_DIR / "asyncapi.json").read_text())
    return document


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_committed_asyncapi_document_is_valid_asyncapi_3(
    asyncapi_validator: jsonschema.Draft7Validator,
) -> None:
    assert _errors(asyncapi_validator, _committed()) == []


def test_a_configured_document_with_sasl_and_two_servers_is_valid(
    asyncapi_validator: jsonschema.Draft7Validator,
) -> None:
    document = asyncapi_document(
        Topics(orders="acme.orders"),
        "kafka-0.example:9093, kafka-1.example:9093",
        Security("SASL_SSL", "SCRAM-SHA-512"),
    )
    assert _errors(asyncapi_validator, document) == []
    assert [server["host"] for server in document["servers"].values()] == [
        "kafka-0.example:9093",
        "kafka-1.example:9093",
    ]
    assert {server["protocol"] for server in document["servers"].values()} == {"kafka-secure"}
    assert document["components"]["securitySchemes"]["sasl"]["type"] == "scramSha512"
    assert document["channels"]["orders"]["address"] == "acme.orders"


def test_the_cli_prints_the_document_for_the_configured_servers_and_topics(
    asyncapi_validator: jsonschema.Draft7Validator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ORDER_STATUS_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9092")
    monkeypatch.setenv("ORDER_STATUS_TOPICS__TASKS", "acme.tasks")
    assert main(["schemas", "--configured"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert _errors(asyncapi_validator, document) == []
    hosts = [server["host"] for server in document["servers"].values()]
    assert hosts == ["kafka-a:9092", "kafka-b:9092"]
    assert document["channels"]["tasks"]["address"] == "acme.tasks"
    assert document != _committed(), "the committed document keeps the defaults"


def test_the_validation_finds_a_broken_document(
    asyncapi_validator: jsonschema.Draft7Validator,
) -> None:
    document = _committed()
    document["operations"]["receive-orders"]["action"] = "consume"
    document["channels"]["orders"]["partitions"] = 4
    assert len(_errors(asyncapi_validator, document)) == 2


def test_every_reference_in_the_document_resolves() -> None:
    document = _committed()
    refs = _refs(document)
    assert len(refs) > 100
    for ref in refs:
        assert _resolve(document, ref) is not None, ref


def test_each_inbound_channel_carries_only_its_own_event_types() -> None:
    document = _committed()
    families = {"orders": "order", "work-orders": "workorder", "tasks": "task"}
    families["billing"] = "service"
    for channel_id, family in families.items():
        channel = document["channels"][channel_id]
        assert channel["messages"], channel_id
        for ref in channel["messages"].values():
            message = _resolve(document, ref["$ref"])
            payload = _resolve(document, message["payload"]["$ref"])
            type_schema = payload["properties"]["type"]
            types = type_schema.get("enum") or [type_schema["const"]]
            assert all(t.split(".")[0] == family for t in types), (channel_id, types)
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert payload["properties"]["data"], "the payload schema is the real one"


def test_messages_are_cloudevents_and_dead_letters_document_their_headers() -> None:
    document = _committed()
    assert document["defaultContentType"] == CONTENT_TYPE
    assert "correlationId" not in json.dumps(document)
    messages = document["components"]["messages"]
    assert {m["contentType"] for n, m in messages.items() if n != "DeadLetter"} == {CONTENT_TYPE}
    dead_letter = messages["DeadLetter"]["headers"]["properties"]
    assert set(dead_letter) == set(DEAD_LETTER_HEADERS)
    assert "dlq-payload-omitted" in dead_letter
    internal = {c.topic.replace("_", "-") for c in CHANNELS if c.direction == "internal"}
    assert internal == {"service-actions", "activity-inputs"}
    for channel_id in internal:
        actions = {
            op["action"]
            for op in document["operations"].values()
            if op["channel"]["$ref"] == f"#/channels/{channel_id}"
        }
        assert actions == {"send", "receive"}, channel_id


JSON_SCHEMAS = sorted(JSON_DIR.glob("*.schema.json"))


@pytest.mark.parametrize("path", JSON_SCHEMAS, ids=lambda path: path.name)
def test_every_json_schema_is_valid_by_its_metaschema(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_the_metaschema_check_finds_a_broken_schema() -> None:
    schema = json.loads(JSON_SCHEMAS[0].read_text())
    schema["properties"] = {"id": {"type": "identifier"}}
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema(schema)
