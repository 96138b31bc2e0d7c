"""The core's ticket API (spec 1.3) and the interface-layer generate route (spec 2.1)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.context import Tombola
from tests.support.app import ADMIN_TOKEN, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_ticket_api_needs_the_admin_token(client: TestClient, seeded: Seed) -> None:
    resp = client.post("/core/tickets/generate", json={"raffle_id": seeded.raffle_id})
    assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")
    resp = client.post(f"/raffle/{seeded.raffle_id}/tickets/generate")
    assert resp.status_code == 401


def test_generate_validate_list_and_void(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    client.headers.update(ADMIN)
    resp = client.post("/core/tickets/generate", json={"raffle_id": seeded.raffle_id, "quantity": 3})
    assert resp.status_code == 200, resp.text
    tickets = resp.json()["tickets"]
    assert [t["number"] for t in tickets] == [1, 2, 3]  # sequential within the raffle
    more = client.post(f"/raffle/{seeded.raffle_id}/tickets/generate", params={"quantity": 2}).json()["tickets"]
    assert len(more) == 2 and len({*more, *(t["id"] for t in tickets)}) == 5  # unique ids
    t = tickets[0]
    ok = client.get(f"/core/tickets/{t['id']}/validate", params={"code": t["verification_code"].lower()}).json()
    assert ok["valid"] is True
    bad = client.get(f"/core/tickets/{t['id']}/validate", params={"code": "0000-0000"}).json()
    assert bad["valid"] is False
    listing = client.get(f"/core/tickets/raffle/{seeded.raffle_id}", params={"limit": 2}).json()
    assert [x["number"] for x in listing["tickets"]] == [1, 2] and listing["next_after"] == 2
    page2 = client.get(f"/core/tickets/raffle/{seeded.raffle_id}", params={"after": 2}).json()
    assert [x["number"] for x in page2["tickets"]] == [3, 4, 5]
    resp = client.put(f"/core/tickets/{t['id']}/status", json={"status": "voided", "reason": "refund"})
    assert resp.json()["ticket"]["status"] == "voided"
    assert client.get(f"/core/tickets/{t['id']}/validate").json()["valid"] is False
    resp = client.put(f"/core/tickets/{t['id']}/status", json={"status": "voided", "reason": "again"})
    assert (resp.status_code, resp.json()["error"]) == (409, "invalid_status_change")


def test_bad_requests_get_codes(client: TestClient, seeded: Seed) -> None:
    client.headers.update(ADMIN)
    resp = client.post(f"/raffle/{seeded.raffle_id}/tickets/generate", params={"quantity": 101})
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed")
    resp = client.post("/core/tickets/generate", json={"raffle_id": "rf-NONE"})
    assert (resp.status_code, resp.json()["error"]) == (404, "raffle_not_found")
    resp = client.get("/core/tickets/nope/validate")
    assert (resp.status_code, resp.json()["error"]) == (404, "ticket_not_found")


def test_rate_limit(client: TestClient, seeded: Seed) -> None:
    client.headers.update(ADMIN)
    from limits import parse

    client.app.state.ticket_rate = parse("5/minute")  # type: ignore[attr-defined]
    codes = [client.get("/core/tickets/x/validate").status_code for _ in range(7)]
    assert codes[:5] == [404] * 5 and codes[5:] == [429, 429]
    assert client.get("/core/tickets/x/validate").json()["error"] == "rate_limited"
