"""Venue isolation over HTTP (SQLite and PostgreSQL): a venue manager logged in with a password
(``POST /auth/login``, a JWT access token) sees only their venue's rows in every report, and 404
``not_found`` for a raffle or device of another venue of the same organisation; the business
admin of that organisation sees both venues."""

from __future__ import annotations

import json
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import insert

from server.context import Tombola
from server.enrollment import service as enrollment
from server.events.models import DeviceEvent
from server.raffles import service as raffles
from server.reports import service
from tests.server.accounts.helpers import bearer, login, user
from tests.server.reports.test_exception_report import _org
from tests.simulators.device import RawDevice
from tests.support.app import HOUR_MS, Seed

EVENT = DeviceEvent.__table__  # type: ignore[attr-defined]


def _venue_with_sales(client: TestClient, app: Tombola, venue_id: str, raffle_id: str) -> str:
    """A device of the venue that sold, voided, logged an event and a sold online order; its id."""
    device = RawDevice()
    device.enroll(client, enrollment.create_enrollment_code(app, venue_id)["code"])
    device.sale(raffle_id, 1)
    device.void(device.sale(raffle_id, 1))
    device.sync(client, 1)
    now, tenant = app.now_ms(), _org(app, venue_id)
    with app.engine.begin() as conn:
        conn.execute(
            insert(EVENT).values(
                device_id=device.device_id,
                seq=1,
                event_id=str(uuid.uuid4()),
                type="app_started",
                detail="{}",
                seller_id="",
                device_time_ms=now,
                anchor_ms=now,
                elapsed_ms=0,
                occurred_at_ms=now,
                prev_hash="0" * 64,
                hash="1" * 64,
                received_at_ms=now,
            )
        )
        conn.execute(
            insert(service.ORDER).values(
                id=uuid.uuid4().hex,
                customer="user:buyer",
                request_id=uuid.uuid4().hex,
                raffle_id=raffle_id,
                tenant=tenant,
                quantity=1,
                amount_cents=500,
                currency="USD",
                state="ticketed",
                tickets=json.dumps([{"number": 999_000, "code": "ABC"}]),
                created_at_ms=now,
                updated_at_ms=now,
            )
        )
    return device.device_id


def test_a_venue_manager_sees_only_their_venue(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    org = _org(tombola, seeded.venue_id)
    other = raffles.create_venue(tombola, "Second Hall")  # the same organisation, another venue
    assert other["organisation_id"] == org
    other_raffle = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=other["id"],
            name="Second 50/50",
            price_cents=500,
            number_space=10_000,
            sales_close_at_ms=tombola.now_ms() + 12 * HOUR_MS,
        ),
    )["id"]
    mine = _venue_with_sales(client, tombola, seeded.venue_id, seeded.raffle_id)
    theirs = _venue_with_sales(client, tombola, other["id"], other_raffle)
    enrollment.revoke_device(tombola, theirs, "lost")  # an exception at the other venue

    user(tombola, "vm@a.example", "venue_manager", org, (seeded.venue_id,))
    user(tombola, "biz@a.example", "business_admin", org)
    answer = login(client, "vm@a.example")
    assert answer.status_code == 200, answer.text
    manager = bearer(answer.json()["access_token"])
    boss = bearer(login(client, "biz@a.example").json()["access_token"])

    def get(headers: dict[str, str], name: str, **params: str) -> dict[str, object]:
        resp = client.get(f"/reports/{name}", params=params, headers=headers)
        assert resp.status_code == 200, (name, resp.text)
        body: dict[str, object] = resp.json()
        return body

    def rows(headers: dict[str, str], name: str, **params: str) -> list[dict[str, object]]:
        found = get(headers, name, **params)["rows"]
        assert isinstance(found, list)
        return found

    # sales, by every grouping: only the manager's venue (its device and its online order)
    assert [r["group"] for r in rows(manager, "sales", group_by="venue")] == [seeded.venue_id]
    assert [r["group"] for r in rows(manager, "sales", group_by="raffle")] == [seeded.raffle_id]
    assert {r["group"] for r in rows(manager, "sales", group_by="device")} == {mine, service.ONLINE}
    assert sum(int(str(r["sales"])) for r in rows(manager, "sales", group_by="payment_method")) == 3
    assert {r["group"] for r in rows(boss, "sales", group_by="venue")} == {seeded.venue_id, other["id"]}
    # exceptions: the void at their venue; not the other venue's void or revocation
    seen = rows(manager, "exceptions")
    assert seen and {r["venue_id"] for r in seen} == {seeded.venue_id}
    assert {r["venue_id"] for r in rows(boss, "exceptions")} == {seeded.venue_id, other["id"]}
    # device events: their device only
    assert {r["device_id"] for r in rows(manager, "device-events")} == {mine}
    assert {r["device_id"] for r in rows(boss, "device-events")} == {mine, theirs}
    # per raffle and per device: theirs is 200, the other venue's 404 as if it did not exist
    for name in ("voided-numbers", "drawing"):
        assert get(manager, name, raffle=seeded.raffle_id)["raffle"] == seeded.raffle_id
    assert len(rows(manager, "voided-numbers", raffle=seeded.raffle_id)) == 1
    for name, params in (
        ("sales", {"raffle": other_raffle}),
        ("exceptions", {"raffle": other_raffle}),
        ("voided-numbers", {"raffle": other_raffle}),
        ("drawing", {"raffle": other_raffle}),
        ("device-events", {"device": theirs}),
    ):
        resp = client.get(f"/reports/{name}", params=params, headers=manager)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found"), name
        assert client.get(f"/reports/{name}", params=params, headers=boss).status_code == 200, name
