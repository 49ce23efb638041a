"""Writes the contract's JSON Schema files and AsyncAPI document from the models (nothing in
`worker` is needed: the document describes the default topic names and servers).

`order-status schemas` writes them; `order-status schemas --check` (and a test) fails when the
committed files differ from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas import inbound, outbound
from schemas.asyncapi import asyncapi_text

SCHEMAS_DIR = Path(__file__).parent
JSON_DIR = SCHEMAS_DIR / "json"

_DOCUMENTS: dict[str, Any] = {
    "inbound-event": inbound.InboundEvent,
    "order-status-event": outbound.StatusEvent,
    "ops-event": outbound.OpsEvent,
    "service-status-event": outbound.ServiceStatusEvent,
}


def _schema(model: Any) -> dict[str, Any]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_json_schema()
    schema: dict[str, Any] = TypeAdapter(model).json_schema()
    return schema


def documents() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {
        JSON_DIR / f"{name}.schema.json": json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": name,
                **_schema(model),
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
        for name, model in _DOCUMENTS.items()
    }
    files[SCHEMAS_DIR / "asyncapi.json"] = asyncapi_text()
    return files


def write_documents(check: bool = False) -> list[str]:
    """Write (or with `check`, only compare) every document; answers the names that differed."""
    stale = []
    for path, text in documents().items():
        if not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(SCHEMAS_DIR.parent)))
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return [] if not check else stale
