"""Reports (SQLite and PostgreSQL): totals equal what was sold (a hypothesis property over random
sales and voids), CSV and JSON agree, tenant and venue isolation, role rules, formula-safe CSV,
and ``tombola report`` prints what the API answers."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from server import auth
from server.auth import INSTALLATION_ADMIN, Principal
from server.context import Tombola
from server.errors import Forbidden, NotFound
from server.models import Sale
from server.raffles import service as raffles
from server.reports import service
from tests.support.app import ADMIN_TOKEN, HOUR_MS, Seed

SALE = Sale.__table__  # type: ignore[attr-defined]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
METHODS = ("cash", "card", "online")


def _sale(
    raffle_id: str,
    device: str,
    seq: int,
    qty: int,
    amount: int,
    *,
    method: str = "cash",
    at: int = 0,
    voided: bool = False,
    status: str = "accepted",
    seller: str = "s1",
) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "device_id": device,
        "seq": seq,
        "kind": "sale",
        "raffle_id": raffle_id,
        "numbers": "[]",
        "quantity": qty,
        "amount_cents": amount,
        "currency": "USD",
        "payment_method": method,
        "seller_id": seller,
        "device_time_ms": at,
        "anchor_ms": at,
        "elapsed_ms": 0,
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
        "status": status,
        "voided": voided,
        "received_at_ms": at,
        "reject_code": "bad" if status == "rejected" else "",
    }


def _insert(app: Tombola, rows: list[dict[str, object]]) -> None:
    with app.engine.begin() as conn:
        conn.execute(insert(SALE), rows)


def _raffle(app: Tombola, venue_id: str, name: str = "R") -> str:
    return str(
        raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=venue_id,
                name=name,
                price_cents=500,
                number_space=1000,
                sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
            ),
        )["id"]
    )


sale_lists = st.lists(
    st.tuples(
        st.integers(1, 30),
        st.integers(0, 50_000),
        st.sampled_from(METHODS),
        st.integers(0, 72),
        st.booleans(),
        st.sampled_from(["accepted", "accepted", "rejected"]),
        st.sampled_from(["d1", "d2"]),
    ),
    max_size=25,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=sale_lists, group_by=st.sampled_from(service.GROUP_BY))
def test_totals_equal_what_was_sold(
    tombola: Tombola, seeded: Seed, sales: list[tuple[int, int, str, int, bool, str, str]], group_by: str
) -> None:
    raffle_id = _raffle(tombola, seeded.venue_id)
    base = 1_767_225_600_000  # 2026-01-01T00:00Z
    rows = [
        _sale(
            raffle_id,
            f"{dev}-{raffle_id}",
            i + 1,
            q,
            a,
            method=m,
            at=base + h * HOUR_MS + 1,
            voided=v and s == "accepted",
            status=s,
        )
        for i, (q, a, m, h, v, s, dev) in enumerate(sales)
    ]
    if rows:
        _insert(tombola, rows)
    rep = service.sales(tombola, INSTALLATION_ADMIN, group_by=group_by, raffle=raffle_id)
    ok = [r for r in rows if r["status"] == "accepted"]
    gross = sum(int(r["amount_cents"]) for r in ok)  # type: ignore[call-overload]
    voided = sum(int(r["amount_cents"]) for r in ok if r["voided"])  # type: ignore[call-overload]
    assert rep["totals"]["sales"] == len(ok)
    assert rep["totals"]["tickets"] == sum(int(r["quantity"]) for r in ok)  # type: ignore[call-overload]
    assert (rep["totals"]["gross_cents"], rep["totals"]["voided_cents"]) == (gross, voided)
    assert rep["totals"]["net_cents"] == gross - voided
    assert len({r["group"] for r in rep["rows"]}) == len(rep["rows"])
    # CSV and JSON agree, cell for cell.
    parsed = list(csv.reader(io.StringIO(service.to_csv(rep))))
    assert parsed[0] == rep["columns"]
    assert parsed[1:] == [[str(r[c]) for c in rep["columns"]] for r in rep["rows"]]


def test_tenants_and_venues_are_isolated(tombola: Tombola, seeded: Seed) -> None:
    org = raffles.get_venue(tombola, seeded.venue_id)["organisation_id"]
    other_venue = raffles.create_venue(tombola, "Other Hall")
    mine, theirs = seeded.raffle_id, _raffle(tombola, other_venue["id"], "Theirs")
    _insert(tombola, [_sale(mine, "d1", 1, 1, 500), _sale(theirs, "d2", 1, 5, 1000)])
    manager = Principal("user:vm", "venue_manager", org, "api_token", venues=frozenset({seeded.venue_id}))
    rep = service.sales(tombola, manager, group_by="raffle")
    assert [r["group"] for r in rep["rows"]] == [mine]
    with pytest.raises(NotFound):
        service.sales(tombola, manager, raffle=theirs)
    everyone = service.sales(tombola, INSTALLATION_ADMIN, group_by="venue")
    assert {r["group"] for r in everyone["rows"]} == {seeded.venue_id, other_venue["id"]}
    stranger = Principal("user:x", "business_admin", "org-of-someone-else", "api_token")
    assert service.sales(tombola, stranger)["rows"] == []
    with pytest.raises(NotFound):
        service.voided_numbers(tombola, stranger, raffle=mine)
    for role in ("salesperson", "customer"):
        with pytest.raises(Forbidden):
            service.sales(tombola, Principal("user:y", role, None, "api_token"))


def test_http_roles_formats_and_formula_safe_csv(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    _insert(
        tombola,
        [
            _sale(seeded.raffle_id, "d1", 1, 1, 500, seller='=HYPERLINK("x")'),
            _sale(seeded.raffle_id, "d1", 2, 5, 1000, seller="+1", method="card"),
        ],
    )
    as_json = client.get("/reports/sales", params={"group_by": "seller"}, headers=ADMIN)
    assert as_json.status_code == 200, as_json.text
    as_csv = client.get("/reports/sales", params={"group_by": "seller", "format": "csv"}, headers=ADMIN)
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert {row[0] for row in lines[1:]} == {"'+1", '\'=HYPERLINK("x")'}
    assert [r["group"] for r in as_json.json()["rows"]] == ["+1", '=HYPERLINK("x")']
    for role in ("salesperson", "customer"):
        token = auth.create_token(tombola, name=role, role=role, created_by="user:test")["token"]
        resp = client.get("/reports/sales", headers={"Authorization": f"Bearer {token}"})
        assert (resp.status_code, resp.json()["error"]) == (403, "forbidden")
    assert client.get("/reports/sales").status_code == 401
    bad = client.get("/reports/sales", params={"group_by": "colour"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["error"]) == (422, "malformed")
    for name, params in (
        ("exceptions", {}),
        ("voided-numbers", {"raffle": seeded.raffle_id}),
        ("drawing", {"raffle": seeded.raffle_id}),
        ("device-events", {}),
    ):
        resp = client.get(f"/reports/{name}", params=params, headers=ADMIN)
        assert resp.status_code == 200, (name, resp.text)


def test_the_cli_prints_what_the_api_answers(
    client: TestClient, tombola: Tombola, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import _common as cli_module
    from server.cli import cli

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    monkeypatch.setattr(cli_module, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    _insert(tombola, [_sale(seeded.raffle_id, "d1", 1, 1, 500), _sale(seeded.raffle_id, "d1", 2, 5, 1000, voided=True)])
    runner = CliRunner()
    for args, path, params in (
        (["sales", "--group-by", "payment_method"], "/reports/sales", {"group_by": "payment_method"}),
        (["exceptions"], "/reports/exceptions", {}),
        (["voided-numbers", "--raffle", seeded.raffle_id], "/reports/voided-numbers", {"raffle": seeded.raffle_id}),
    ):
        out = runner.invoke(cli, ["report", *args, "--json"], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        assert json.loads(out.output) == client.get(path, params=params, headers=ADMIN).json()
        text = runner.invoke(cli, ["report", *args], catch_exceptions=False).stdout_bytes.decode()
        assert text == client.get(path, params=params | {"format": "csv"}, headers=ADMIN).text
