"""/admin/raffles: role and tenant rules, edit after the first sale, audit with the person's id;
the public GET /raffles and its 50/50 jackpot after voids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from server import audit
from server.auth import Principal, create_token
from server.context import Tombola, new_id
from server.errors import NotFound
from server.models import Organisation, Venue
from server.raffles import service as raffles
from server.raffles.endpoints import PUBLIC_TTL_S
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]


def headers(app: Tombola, role: str, tenant: str) -> tuple[dict[str, str], str]:
    t = create_token(app, name=f"{role} test", role=role, tenant=tenant, created_by="user:admin")
    return {"Authorization": f"Bearer {t['token']}"}, f"user:{t['id']}"


def other_org_venue(app: Tombola) -> str:
    org_id, venue_id = new_id("org"), new_id("vn")
    with app.engine.begin() as conn:
        conn.execute(insert(ORG).values(id=org_id, name="Other club", licence_number="X-2"))
        conn.execute(insert(VENUE).values(id=venue_id, organisation_id=org_id, name="Other", created_at_ms=0))
    return venue_id


def body(app: Tombola, venue_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "venue_id": venue_id,
        "name": "Gala",
        "price_cents": 500,
        "numbers": 5000,
        "closes_at_ms": app.now_ms() + 12 * HOUR_MS,
    } | kw


def org_of(app: Tombola, venue_id: str) -> str:
    return str(raffles.get_venue(app, venue_id)["organisation_id"])


def test_roles_and_tenants_of_the_raffle_routes(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    org = org_of(tombola, seeded.venue_id)
    biz, biz_id = headers(tombola, "business_admin", org)
    manager, _ = headers(tombola, "venue_manager", org)
    seller, _ = headers(tombola, "salesperson", org)
    customer, _ = headers(tombola, "customer", org)
    foreign_venue = other_org_venue(tombola)
    foreign = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=foreign_venue,
            name="Theirs",
            price_cents=100,
            number_space=100,
            sales_close_at_ms=tombola.now_ms() + HOUR_MS,
        ),
    )["id"]

    # create: the system admin and the business admin; the venue manager and others 403
    made = client.post("/admin/raffles", json=body(tombola, seeded.venue_id), headers=biz)
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert client.post("/admin/raffles", json=body(tombola, seeded.venue_id), headers=ADMIN).status_code == 201
    for who in (manager, seller, customer):
        resp = client.post("/admin/raffles", json=body(tombola, seeded.venue_id), headers=who)
        assert (resp.status_code, resp.json()["error"]) == (403, "forbidden")
    assert client.post("/admin/raffles", json=body(tombola, seeded.venue_id)).status_code == 401
    # another tenant's venue and raffle: 404, as if they did not exist
    resp = client.post("/admin/raffles", json=body(tombola, foreign_venue), headers=biz)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_found")
    for method, path, payload in (
        ("GET", "/admin/raffles/{}", None),
        ("PATCH", "/admin/raffles/{}", {"name": "Mine now"}),
        ("POST", "/admin/raffles/{}/close", None),
        ("POST", "/admin/raffles/{}/cancel", {"reason": "x"}),
    ):
        resp = client.request(method, path.format(foreign), json=payload, headers=biz)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found"), path
    assert foreign not in {r["id"] for r in client.get("/admin/raffles", headers=biz).json()}
    assert foreign in {r["id"] for r in client.get("/admin/raffles", headers=ADMIN).json()}

    # edit and cancel: managers of the licence only; open/close and reading: the venue manager too
    assert client.patch(f"/admin/raffles/{rid}", json={"name": "x"}, headers=manager).status_code == 403
    assert client.post(f"/admin/raffles/{rid}/cancel", json={"reason": "x"}, headers=manager).status_code == 403
    assert client.get(f"/admin/raffles/{rid}", headers=manager).status_code == 200
    assert client.get(f"/admin/raffles/{rid}", headers=seller).status_code == 403
    edited = client.patch(f"/admin/raffles/{rid}", json={"name": "Gala night", "purchase_limit": 20}, headers=biz)
    assert edited.status_code == 200 and edited.json()["purchase_limit"] == 20
    closed = client.post(f"/admin/raffles/{rid}/close", headers=manager)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = client.patch(f"/admin/raffles/{rid}", json={"name": "late"}, headers=biz)
    assert (again.status_code, again.json()["error"]) == (409, "raffle_field_fixed")

    # every change audited with the person's id
    audit.drain(tombola)
    changes = [json.loads(d) for _, d in tombola.core.audit.entries(type_prefix="raffle.", limit=10_000)]
    mine = [e for e in changes if e["payload"].get("raffle_id") == rid and e["actor"] == biz_id]
    assert {e["payload"].get("action") for e in mine} >= {None, "edited"}  # created, then edited
    assert any(e["payload"].get("action") == "closed" and e["actor"] != biz_id for e in changes)


def test_a_venue_manager_sees_only_its_venues(tombola: Tombola, seeded: Seed) -> None:
    org = org_of(tombola, seeded.venue_id)
    other = raffles.create_venue(tombola, "Annex")["id"]
    theirs = Principal(id="user:vm", role="venue_manager", tenant=org, via="login", venues=frozenset({other}))
    with pytest.raises(NotFound):
        raffles.require_visible_raffle(tombola, theirs, seeded.raffle_id)
    assert raffles.list_visible_raffles(tombola, theirs) == []
    mine = Principal(id="user:vm", role="venue_manager", tenant=org, via="login", venues=frozenset({seeded.venue_id}))
    raffles.require_visible_raffle(tombola, mine, seeded.raffle_id)


def test_price_and_prizes_are_fixed_after_the_first_sale(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    rid = seeded.raffle_id
    assert client.patch(f"/admin/raffles/{rid}", json={"price_cents": 600}, headers=ADMIN).status_code == 200
    tombola.core.generate_tickets(rid, 1, amount_cents=600)  # the first sale
    for change, field in (
        ({"price_cents": 700}, "price_points"),
        ({"bundles": [[10, 4000]]}, "price_points"),
        ({"prize_table": [{"tier": "car", "count": 1, "kind": "fixed", "amount_cents": 9}]}, "prize_table"),
        ({"draw_method": "barrel"}, "draw_method"),
    ):
        resp = client.patch(f"/admin/raffles/{rid}", json=change, headers=ADMIN)
        assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (409, "terms_fixed_after_sale", field)
        assert "WAC 230-11-320" in resp.json()["detail"]
    assert next(p["amount_cents"] for p in raffles.get_raffle(tombola, rid)["price_points"]) == 600
    # what is not a term still changes
    later = tombola.now_ms() + 20 * HOUR_MS
    resp = client.patch(f"/admin/raffles/{rid}", json={"closes_at_ms": later, "rules_text": "18+"}, headers=ADMIN)
    assert resp.status_code == 200 and resp.json()["sales_close_at_ms"] == later
    assert tombola.core.raffle(rid).sales_close_at_ms == later  # the core's window follows


def test_open_a_scheduled_raffle_now(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    made = client.post(
        "/admin/raffles", json=body(tombola, seeded.venue_id, opens_at_ms=tombola.now_ms() + HOUR_MS), headers=ADMIN
    ).json()
    assert made["status"] == "scheduled"
    opened = client.post(f"/admin/raffles/{made['id']}/open", headers=ADMIN).json()
    assert opened["status"] == "open" and tombola.core.raffle(made["id"]).sales_open_at_ms == tombola.now_ms()
    tombola.core.generate_tickets(made["id"], 1, amount_cents=500)  # the core sells now
    client.post(f"/admin/raffles/{made['id']}/close", headers=ADMIN)
    resp = client.post(f"/admin/raffles/{made['id']}/open", headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (409, "raffle_field_fixed")


def test_public_list_jackpot_is_the_share_of_valid_sales_after_voids(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    fixed = client.post(
        "/admin/raffles",
        json=body(
            tombola,
            seeded.venue_id,
            name="Car",
            prize_table=[{"tier": "car", "count": 1, "kind": "fixed", "amount_cents": 10_000}],
        ),
        headers=ADMIN,
    ).json()
    a = device.sale(seeded.raffle_id, 5)  # 1000 (bundle of 5)
    device.sale(seeded.raffle_id, 1)  # 500
    device.sale(seeded.raffle_id, 30)  # 2000
    device.sync(client, 1)
    device.void(a)
    device.sync(client, 4)
    tombola.clock.advance(int(PUBLIC_TTL_S * 1000))  # type: ignore[attr-defined]
    resp = client.get("/raffles")  # no login
    assert resp.status_code == 200 and "max-age" in resp.headers["cache-control"]
    listed = {r["id"]: r for r in resp.json()}
    assert listed[seeded.raffle_id]["jackpot_cents"] == (500 + 2000) * 50 // 100
    assert listed[seeded.raffle_id]["fifty_fifty"] is True
    assert listed[fixed["id"]]["jackpot_cents"] is None
    text = resp.text
    assert device.device_id not in text and "s1" not in text  # no device, seller or sale
    raffles.close_raffle(tombola, fixed["id"])
    assert fixed["id"] not in {r["id"] for r in raffles.public_raffles(tombola)}
