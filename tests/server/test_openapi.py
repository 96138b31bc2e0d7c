"""The OpenAPI document: committed and current, a response model on every JSON route, the error
body on every operation, and the 422 ``malformed`` body for every kind of invalid request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.openapi import REGENERATE, document, render
from tests.support.app import ADMIN_TOKEN, Seed

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: routes that answer something other than a JSON document (each says what instead)
NOT_JSON = {
    ("GET", "/check"): "the HTML page a receipt's QR code opens",
    ("GET", "/draws/{raffle_id}/proof"): "the published proof file, byte for byte",
    ("GET", "/docs"): "Swagger UI (HTML)",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI's OAuth2 redirect (HTML)",
    ("GET", "/redoc"): "ReDoc (HTML)",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document(create_app(Settings()))


def test_committed_document_is_current(doc: dict[str, Any]) -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == render(doc), f"docs/openapi.json is stale; regenerate it with: {REGENERATE}"


def test_rendering_is_deterministic(doc: dict[str, Any]) -> None:
    again = document(create_app(Settings()))
    assert render(again) == render(doc)
    assert doc["openapi"].startswith("3.1")


def _schema_2xx(op: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        media.get("schema", {})
        for code, answer in op.get("responses", {}).items()
        if code.startswith("2")
        for media in answer.get("content", {}).values()
    ]


def _named(schema: dict[str, Any]) -> bool:
    """A response model: a component, or an array of one (not a free-form object)."""
    return "$ref" in schema or "$ref" in schema.get("items", {})


def test_every_json_route_declares_its_response_model(doc: dict[str, Any]) -> None:
    app = create_app(Settings())
    missing = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue  # /docs, /redoc, /openapi.json and static files: the framework's own
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            if (method, route.path) in NOT_JSON:
                continue
            op = doc["paths"].get(route.path, {}).get(method.lower())
            if op is None:
                missing.append(f"{method} {route.path}: not in the document (include_in_schema=False?)")
            elif not any(_named(s) for s in _schema_2xx(op)):
                missing.append(f"{method} {route.path}: no 2xx response model (give it response_model=...)")
    assert not missing, "routes without a documented answer:\n" + "\n".join(missing)


def test_every_operation_declares_the_error_body(doc: dict[str, Any]) -> None:
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for code in ("404", "422"):
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
    assert "HTTPValidationError" not in json.dumps(doc)
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "detail"}


def test_served_document_is_the_committed_one(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert render(served.json()) == COMMITTED.read_text(encoding="utf-8")


# --- 422 malformed: a code, the field and a sentence for every kind of invalid request ---------

CASES: dict[str, tuple[str, str, dict[str, Any], str, str]] = {
    # name: (method, url, request kwargs, field, words of the sentence)
    "json that does not parse": (
        "POST",
        "/v1/admin/venues",
        {"content": b'{"name": ', "headers": {"content-type": "application/json"}},
        "body",
        "not valid JSON",
    ),
    "a form instead of JSON": (
        "POST",
        "/v1/admin/venues",
        {"content": b"name=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        "body",
        "Content-Type: application/json",
    ),
    "no content type": ("POST", "/v1/admin/venues", {"content": b'{"name": "x"}'}, "body", "no Content-Type"),
    "text/plain": (
        "POST",
        "/v1/admin/venues",
        {"content": b'{"name": "x"}', "headers": {"content-type": "text/plain"}},
        "body",
        "'text/plain'",
    ),
    "a missing member": ("POST", "/v1/admin/venues", {"json": {}}, "body.name", "body.name is required"),
    "a member of the wrong type": ("POST", "/v1/admin/venues", {"json": {"name": 5}}, "body.name", "valid string"),
    "an array for an object": ("POST", "/v1/admin/venues", {"json": [1]}, "body", "must be a JSON object"),
    "an unknown enum value": (
        "PUT",
        "/core/tickets/t-1/status",
        {"json": {"status": "eaten", "reason": "x"}},
        "body.status",
        "voided",
    ),
    "a query out of bounds": ("GET", "/v1/admin/devices", {"params": {"venue_id": "v" * 65}}, "query.venue_id", "64"),
    "a query of the wrong type": (
        "GET",
        "/core/tickets/raffle/r-1",
        {"params": {"limit": "many"}},
        "query.limit",
        "valid integer",
    ),
    "a path with U+0000": (
        "POST",
        "/v1/admin/devices/dv%00x/void-remainder",
        {"json": {"raffle_id": "r", "reason": "x"}},
        "path.device_id",
        "pattern",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_request_is_malformed_with_field_and_sentence(client: TestClient, name: str) -> None:
    method, url, kwargs, field, words = CASES[name]
    kwargs = {**kwargs, "headers": {**ADMIN, **kwargs.get("headers", {})}}
    resp = client.request(method, url, **kwargs)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "malformed" and body["field"] == field, body
    assert words in body["detail"] and len(body["detail"].split()) >= 3, body
    assert body["errors"][0] == {"field": field, "detail": body["detail"]}


def test_reason_with_nul_is_malformed_not_a_database_error(client: TestClient, seeded: Seed) -> None:
    """Regression: PostgreSQL refuses U+0000 in a text parameter; the models refuse it first."""
    resp = client.post(f"/v1/admin/raffles/{seeded.raffle_id}/cancel", json={"reason": "lost\x00"}, headers=ADMIN)
    assert resp.status_code == 422 and resp.json()["field"] == "body.reason", resp.text
