"""Roles of accounts: scope rules, role changes acting at the next request, salespersons and sellers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.accounts import service
from server.context import Tombola
from server.errors import InvalidRequest, NotFound
from server.raffles import service as raffles
from server.sellers import service as sellers
from tests.server.accounts.helpers import bearer, events, login, organisation, user
from tests.support.app import ADMIN_TOKEN, Seed


def test_a_role_change_acts_at_the_next_request(client: TestClient, tombola: Tombola) -> None:
    org_id, venue_id = organisation(tombola, "North")
    made = user(tombola, "vm@example.org", "venue_manager", org_id, (venue_id,))
    headers = bearer(login(client, "vm@example.org").json()["access_token"])
    assert client.get("/v1/users", headers=headers).status_code == 403
    service.set_role(tombola, made["id"], role="business_admin", organisation_id=org_id, by="user:admin")
    assert client.get("/auth/me", headers=headers).json()["role"] == "business_admin"
    listed = client.get("/v1/users", headers=headers)
    assert listed.status_code == 200 and [u["email"] for u in listed.json()] == ["vm@example.org"]
    changed = [e for e in events(tombola, "auth.permission_changed") if e["payload"]["action"] == "role_changed"]
    assert changed[0]["payload"]["from_role"] == "venue_manager" and changed[0]["payload"]["role"] == "business_admin"
    assert changed[0]["tenant"] == org_id


def test_scopes_are_checked(tombola: Tombola) -> None:
    org_id, venue_id = organisation(tombola, "North")
    other_org, other_venue = organisation(tombola, "South")
    with pytest.raises(InvalidRequest):
        user(tombola, "a@example.org", "business_admin")  # needs an organisation
    with pytest.raises(InvalidRequest):
        user(tombola, "b@example.org", "venue_manager", org_id)  # needs venues
    with pytest.raises(NotFound):
        user(tombola, "c@example.org", "venue_manager", org_id, (other_venue,))  # a venue of another organisation
    with pytest.raises(InvalidRequest):
        user(tombola, "d@example.org", "customer", "", (venue_id,))
    with pytest.raises(NotFound):
        user(tombola, "e@example.org", "business_admin", "org-NOSUCH")
    assert other_org


def test_a_business_admin_manages_its_own_staff_only(client: TestClient, tombola: Tombola) -> None:
    org_id, venue_id = organisation(tombola, "North")
    other_org, _ = organisation(tombola, "South")
    user(tombola, "biz@example.org", "business_admin", org_id)
    headers = bearer(login(client, "biz@example.org").json()["access_token"])
    body = {"email": "new@example.org", "password": "Fresh-Start-1", "role": "venue_manager", "venue_ids": [venue_id]}
    made = client.post("/v1/users", json=body | {"organisation_id": org_id}, headers=headers)
    assert made.status_code == 201, made.text
    for refused in (body | {"organisation_id": other_org}, body | {"role": "admin", "venue_ids": []}):
        answer = client.post("/v1/users", json=refused, headers=headers)
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    foreign = user(tombola, "far@example.org", "business_admin", other_org)
    hidden = client.post(f"/v1/users/{foreign['id']}/disable", json={"reason": "x"}, headers=headers)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    created = made.json()
    assert created["created_by"].startswith("user:usr-")


def test_a_salesperson_is_linked_to_one_seller(tombola: Tombola, seeded: Seed) -> None:
    org_id = raffles.get_venue(tombola, seeded.venue_id)["organisation_id"]
    seller = sellers.add_seller(tombola, seeded.venue_id, "Ann", "4321")
    ann = user(tombola, "ann@example.org", "salesperson", org_id, (seeded.venue_id,))
    linked = service.link_seller(tombola, ann["id"], seller["id"], by="user:admin")
    assert linked["seller_id"] == seller["id"]
    bob = user(tombola, "bob@example.org", "salesperson", org_id, (seeded.venue_id,))
    with pytest.raises(InvalidRequest):
        service.link_seller(tombola, bob["id"], seller["id"], by="user:admin")  # one account per person
    _, far_venue = organisation(tombola, "South")
    far_seller = sellers.add_seller(tombola, far_venue, "Cy", "1111")
    with pytest.raises(NotFound):
        service.link_seller(tombola, bob["id"], far_seller["id"], by="user:admin")  # not a seller of its venue
    assert "pin" not in str(events(tombola, "auth.permission_changed")).lower().replace("pin_", "")


def test_the_installation_admin_token_manages_accounts(client: TestClient, tombola: Tombola) -> None:
    answer = client.post(
        "/v1/users",
        json={"email": "gli@example.org", "password": "Strong-Enough-1", "role": "admin"},
        headers=bearer(ADMIN_TOKEN),
    )
    assert answer.status_code == 201 and answer.json()["mfa"] is False
    assert login(client, "gli@example.org", "Strong-Enough-1").json()["error"] == "mfa_setup_required"


def test_a_promotion_to_a_role_that_needs_totp_needs_a_login_with_it(client: TestClient, tombola: Tombola) -> None:
    org_id, venue_id = organisation(tombola, "North")
    made = user(tombola, "vm@example.org", "venue_manager", org_id, (venue_id,))
    headers = bearer(login(client, "vm@example.org").json()["access_token"])
    service.set_role(tombola, made["id"], role="auditor", by="user:admin")
    refused = client.get("/auth/me", headers=headers)
    assert refused.status_code == 401 and "second factor" in refused.json()["detail"]
    assert login(client, "vm@example.org").json()["error"] == "mfa_setup_required"
