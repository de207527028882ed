"""Building blocks of the services' OpenAPI 3.0 documents (services/ingest/openapi.py,
services/query/openapi.py): schema shorthands, the error body, the API key scheme and
the document's frame. Each service writes its own paths and schemas with them."""

from __future__ import annotations

from typing import Any

OPENAPI_VERSION = "3.0.3"
DOCUMENT_PATH = "/api/v1/openapi.json"

#: The tenant API key every operation needs (but the document's own).
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A tenant API key: psk_<prefix>_<secret>."}
}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    properties: dict[str, Any], required: list[str] | None = None, description: str | None = None
) -> dict[str, Any]:
    """A closed object (no undocumented fields); every property required unless ``required`` says."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def string(nullable: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"nullable": True} if nullable else {}), **extra}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response (or body) whose content is JSON of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def path_parameter(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A path segment; by default any non-empty string."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1} if schema is None else schema,
        "description": description,
    }


def error_schema(detail_description: str | None = None) -> dict[str, Any]:
    """The body of every error answer (shared.web.error_body): ``{"error": ..., "detail": ...}``."""
    detail: dict[str, Any] = {"nullable": True}
    if detail_description:
        detail["description"] = detail_description
    return {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": detail},
        "additionalProperties": False,
    }


#: The document's own path: served without an API key.
DOCUMENT_OPERATION = {
    "get": {
        "operationId": "openapi",
        "summary": "This document (no API key needed)",
        "security": [],
        "responses": {"200": json_body({"type": "object"}, "The OpenAPI document.")},
    }
}


def document(title: str, description: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The whole document: every operation needs the API key, the document's own path added."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1.0.0", "description": description},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {**paths, DOCUMENT_PATH: DOCUMENT_OPERATION},
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": schemas},
    }
