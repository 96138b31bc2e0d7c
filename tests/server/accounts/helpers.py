"""Builders of the accounts tests: users of each role, logins, TOTP codes on the app's clock."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from server import audit
from server.accounts import mfa, service
from server.context import Tombola, new_id
from server.models import Organisation, Venue

PASSWORD = "Correct-Horse-9"
ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def organisation(app: Tombola, name: str) -> tuple[str, str]:
    """A new organisation (tenant) with one venue: (organisation id, venue id)."""
    org_id, venue_id = new_id("org"), new_id("vn")
    with app.engine.begin() as conn:
        conn.execute(insert(ORG).values(id=org_id, name=name, licence_number=""))
        conn.execute(insert(VENUE).values(id=venue_id, organisation_id=org_id, name=f"{name} Hall", created_at_ms=0))
    return org_id, venue_id


def user(app: Tombola, email: str, role: str, org: str = "", venues: tuple[str, ...] = (), **kw: Any) -> dict[str, Any]:
    return service.create_user(
        app,
        email=email,
        password=PASSWORD,
        role=role,
        organisation_id=org,
        venue_ids=venues,
        created_by="user:admin",
        **kw,
    )


def with_mfa(app: Tombola, user_id: str) -> str:
    """Turn TOTP on for the user (set-up and confirm on the app's clock); its secret."""
    secret = str(service.mfa_setup(app, user_id)["secret"])
    service.mfa_confirm(app, user_id, mfa.code_at(secret, app.now_ms()), start_session=False)
    return secret


def login(client: TestClient, email: str, password: str = PASSWORD, totp: str | None = None) -> Any:
    body: dict[str, Any] = {"email": email, "password": password}
    if totp is not None:
        body["totp"] = totp
    return client.post("/auth/login", json=body)


def events(app: Tombola, type_: str) -> list[dict[str, Any]]:
    audit.drain(app)
    return [json.loads(d) for _, d in app.core.audit.entries(type_prefix=type_, limit=100_000)]
