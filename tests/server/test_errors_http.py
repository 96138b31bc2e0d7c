"""Every error answers in the documented body ``{"error": code, "detail": ...}`` (docs/errors.md):
unknown URLs, wrong methods, duplicate member names, and the database's refusals of input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from server.context import Tombola
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_an_unknown_url_answers_not_found_in_the_error_body(client: TestClient) -> None:
    resp = client.get("/v1/nowhere")
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found" and "/v1/nowhere" in resp.json()["detail"]


def test_a_wrong_method_answers_method_not_allowed(client: TestClient) -> None:
    resp = client.get("/v1/sync")
    assert resp.status_code == 405
    assert resp.json()["error"] == "method_not_allowed" and resp.json()["detail"]
    assert "POST" in resp.headers["allow"]


def _with_duplicate(body: dict[str, Any], member: str, value: Any) -> bytes:
    """``body`` as JSON with ``member`` given a second time (first ``value``, then the real one)."""
    raw = orjson.dumps(body)
    return b'{"' + member.encode() + b'":' + orjson.dumps(value) + b"," + raw[1:]


def test_a_sync_batch_with_a_duplicate_member_is_malformed(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    """I-JSON (RFC 7493 section 2.3): the last member no longer silently wins."""
    device.sale(seeded.raffle_id, 1)
    body = device.batch(1).to_dict()
    resp = client.post(
        "/v1/sync",
        content=_with_duplicate(body, "device_id", "dv-SOMEONEELS"),
        headers={"content-type": "application/json"},
    )
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", "device_id")
    assert device.sync(client, 1).applied == 1


def test_a_duplicate_member_inside_a_record_is_malformed(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    device.sale(seeded.raffle_id, 1)
    body = device.batch(1).to_dict()
    record = body["records"][0]
    body["records"][0] = orjson.loads(_with_duplicate(record, "amount_cents", 1))
    raw = orjson.dumps(body).replace(b'"records":[{', b'"records":[{"amount_cents":1,', 1)
    resp = client.post("/v1/sync", content=raw, headers={"content-type": "application/json"})
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", "amount_cents")


def test_an_enrollment_with_a_duplicate_member_is_malformed(client: TestClient, seeded: Seed) -> None:
    from sync_protocol.messages import EnrollmentRequest
    from sync_protocol.signing import b64u_encode

    dev = RawDevice()
    req = EnrollmentRequest(code=seeded.code, public_key=b64u_encode(dev.signer.public_key)).signed_by(dev.signer)
    resp = client.post(
        "/v1/devices/enroll",
        content=_with_duplicate(req.to_dict(), "code", "XXXX-XXXX"),
        headers={"content-type": "application/json"},
    )
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", "code")


def test_a_body_that_is_not_json_is_malformed(client: TestClient) -> None:
    resp = client.post("/v1/sync", content=b'{"device_id": NaN}', headers={"content-type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed")


def test_the_database_refusing_input_is_a_coded_4xx(tombola: Tombola, seeded: Seed) -> None:
    """The safety net under the models' bounds: a database error caused by input is never a 500."""
    app = create_app(tombola=tombola)

    @app.post("/test/duplicate-venue")
    def duplicate_venue() -> None:
        with tombola.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO venue (id, organisation_id, name, created_at_ms) VALUES (:id, 'x', 'x', 0)"),
                {"id": seeded.venue_id},
            )

    @app.post("/test/overflow")
    def overflow() -> None:
        with tombola.engine.begin() as conn:
            conn.execute(text("UPDATE device SET acked_seq = :n"), {"n": 3_000_000_000})

    with TestClient(app) as client:
        resp = client.post("/test/duplicate-venue")
        assert (resp.status_code, resp.json()["error"]) == (409, "conflict"), resp.text
        if tombola.engine.dialect.name == "postgresql":  # SQLite stores any integer
            resp = client.post("/test/overflow")
            assert (resp.status_code, resp.json()["error"]) == (422, "value_out_of_range"), resp.text


BIG = str(2**63)
NUL = "%00"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", f"/core/tickets/x{NUL}y/validate", None),
        ("get", f"/core/tickets/{'t' * 65}/validate", None),
        ("get", f"/core/tickets/tk-1/validate?code=a{NUL}", None),
        ("get", f"/core/tickets/raffle/r{NUL}", None),
        ("put", f"/core/tickets/t{NUL}/status", {"status": "voided", "reason": "x"}),
        ("post", "/core/tickets/generate", {"raffle_id": "r\u0000"}),
        ("post", "/core/draw/initiate", {"raffle_id": "r" * 65}),
        ("get", f"/core/draw/r{NUL}/status", None),
        ("get", f"/core/draw/r{NUL}/proof", None),
        ("post", f"/core/draw/r{NUL}/cancel", {"reason": "x"}),
        ("get", f"/core/audit/entries/{BIG}", None),
        ("get", "/core/audit/entries/-1", None),
        ("get", f"/core/audit/entries?after={BIG}", None),
        ("get", f"/core/audit/entries?type=a{NUL}", None),
        ("get", f"/core/audit/proof/inclusion?index={BIG}", None),
        ("get", f"/core/audit/proof/consistency?first=1&second={BIG}", None),
    ],
)
def test_the_cores_routes_bound_their_input_alike_on_both_backends(
    client: TestClient, method: str, url: str, body: dict[str, Any] | None
) -> None:
    """An id with U+0000 or longer than its column, an integer past I-JSON: ``malformed`` on both
    backends (PostgreSQL refused them with a database error, SQLite looked them up and found nothing)."""
    resp = client.request(method, url, json=body, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
