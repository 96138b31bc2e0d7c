"""OWASP security headers on every response (success, client error, server-rendered page) and CORS
from settings only."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.context import Tombola
from server.security import CSP
from tests.support.app import ADMIN_TOKEN, FakeClock, open_tombola
from tests.support.postgres import DbUrls

REQUIRED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/check", 200),  # the HTML page a receipt's QR code opens
        ("GET", "/no/such/url", 404),
        ("POST", "/v1/sync", 422),  # a client error: no body
        ("GET", "/v1/admin/devices", 401),
    ],
)
def test_every_response_carries_the_headers(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, name
    # the server's policy, or a stricter one the page set itself (/check: default-src 'none')
    csp = response.headers["content-security-policy"]
    assert csp == CSP or csp.startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert "strict-transport-security" not in response.headers  # plain HTTP: HSTS would be wrong


def test_csp_forbids_inline_script_and_framing() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_api_docs_alone_may_run_their_inline_bootstrap(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]
    assert "'unsafe-inline'" not in client.get("/healthz").headers["content-security-policy"]


def test_hsts_over_tls_only(tombola: Tombola) -> None:
    with TestClient(create_app(tombola=tombola), base_url="https://tombola.example") as tls:
        assert tls.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_cors_is_off_unless_origins_are_configured(client: TestClient) -> None:
    preflight = client.options(
        "/healthz", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert (
        "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": "https://evil.example"}).headers
    )


def test_cors_admits_exactly_the_configured_origins(db_backend: DbUrls, tmp_path: Path, clock: FakeClock) -> None:
    app = open_tombola(tmp_path / "var", db_backend, clock, cors_origins="https://portal.example, https://b.example")
    try:
        with TestClient(create_app(tombola=app)) as c:
            ok = c.get("/healthz", headers={"Origin": "https://portal.example"})
            assert ok.headers["access-control-allow-origin"] == "https://portal.example"
            other = c.get("/healthz", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers
            preflight = c.options(
                "/v1/admin/devices",
                headers={
                    "Origin": "https://b.example",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://b.example"
            assert "access-control-allow-credentials" not in preflight.headers
            assert c.get("/v1/admin/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    finally:
        app.close()
