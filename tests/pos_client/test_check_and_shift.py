"""Ticket check and end of shift in the SDK.

Offline checks answer from the device's own records (sold here, voided, rejected, unknown; a
tampered code is refused) against the fake server; online checks ask the real server
(``GET /v1/tickets/check``, SQLite and PostgreSQL) and fall back with a note when it is down.
The shift report's arithmetic: cash and card, voids (one of an older sale), two sellers, the
float, unsynced counts, the window; its text and ESC/POS print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pos_client import ManualClock, PosClient, RetryPolicy
from pos_client.errors import BadInput, PrinterNotSet
from server.app import create_app
from sync_protocol.codes import ticket_code
from tests.pos_client.conftest import CODE
from tests.pos_client.fake_server import BASE_URL, FakeServer
from tests.pos_client.test_sellers import ANA, BOB
from tests.support.app import FakeClock, open_tombola, seed
from tests.support.postgres import DbUrls

NO_RETRY = RetryPolicy(attempts=1, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)


def tampered(code: str) -> str:
    return code[:-1] + ("0" if code[-1] != "0" else "1")


# --------------------------------------------------------------------------- offline: the device's records


def test_offline_check_answers_from_the_devices_records(enrolled: PosClient, server: FakeServer) -> None:
    sale = enrolled.sell("R1", 3)
    n, code = sale.numbers[0], sale.codes[0]
    got = enrolled.check_ticket("R1", n, code.lower().replace("-", ""), online=False)
    assert (got.result, got.source, got.synced, got.headline) == ("valid", "device", False, "VALID")
    assert "waiting to sync" in got.note
    # A tampered code is refused, though the number was sold here.
    wrong = enrolled.check_ticket("R1", n, tampered(code), online=False)
    assert wrong.result == "unknown" and "another code" in wrong.note
    # A number this device did not sell.
    assert enrolled.check_ticket("R1", 999_999, code, online=False).result == "unknown"
    assert enrolled.check_ticket("R9", n, code, online=False).result == "unknown"
    # Voided: void, with the right code only.
    enrolled.void(sale.sale_id, "wrong raffle")
    assert enrolled.check_ticket("R1", sale.numbers[1], sale.codes[1], online=False).result == "void"
    assert enrolled.check_ticket("R1", sale.numbers[1], tampered(sale.codes[1]), online=False).result == "unknown"


def test_offline_check_of_a_rejected_sale_says_refund(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 1)
    with enrolled.store.write() as conn:  # as the sync engine marks a record the server rejected
        conn.execute("UPDATE records SET rejected_code = 'outside_grant' WHERE sale_id = ?", (sale.sale_id,))
    got = enrolled.check_ticket("R1", sale.numbers[0], sale.codes[0], online=False)
    assert got.result == "rejected" and "refund" in got.note and "outside_grant" in got.note


def test_a_server_without_the_check_route_falls_back_with_a_note(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 1)  # the fake server is an older one: no GET /v1/tickets/check (404)
    got = enrolled.check_ticket("R1", sale.numbers[0], sale.codes[0])
    assert got.result == "valid" and got.source == "device"
    assert "server did not answer (HTTP 404)" in got.note and "own records answered" in got.note


def test_bad_input_is_refused_before_anything_is_asked(enrolled: PosClient) -> None:
    bad = [("", 1, "AAAA-AAAA"), ("R1", 0, "AAAA-AAAA"), ("R1", 2**31, "AAAA-AAAA"), ("R1", 1, ""), ("R1", 1, "A" * 33)]
    for raffle_id, number, code in bad:
        with pytest.raises(BadInput):
            enrolled.check_ticket(raffle_id, number, code)


# --------------------------------------------------------------------------- online: the real server


@pytest.fixture
def real(db_backend: DbUrls, tmp_path: Path) -> Iterator[tuple[object, TestClient, ManualClock]]:
    app = open_tombola(tmp_path / "var", db_backend, FakeClock(), lease_s=24 * 3600)
    with TestClient(create_app(tombola=app)) as http:
        yield app, http, ManualClock()
    app.close()


def test_online_check_asks_the_server_and_prefers_the_device_for_an_unsynced_sale(  # type: ignore[no-untyped-def]
    real, tmp_path: Path
) -> None:
    app, http, clock = real
    seeded = seed(app)
    pos = PosClient(tmp_path / "pos.db", clock=clock, http=http, retry=NO_RETRY)
    pos.enroll(seeded.code, "http://testserver")
    sale = pos.sell(seeded.raffle_id, 2)
    # Not synced yet: the server does not know it; the device's records answer, and say so.
    got = pos.check_ticket(seeded.raffle_id, sale.numbers[0], sale.codes[0])
    assert (got.result, got.source, got.raffle_state) == ("valid", "device", "selling")
    assert "server does not have this sale yet" in got.note
    assert f"Ticket {sale.numbers[0]} of Test 50/50 was sold by this device" in got.note  # the name as it is
    pos.sync()
    got = pos.check_ticket(seeded.raffle_id, sale.numbers[0], sale.codes[0])
    assert (got.result, got.source, got.raffle_name) == ("valid", "server", "Test 50/50")
    assert "in the draw" in got.note
    # Tampered: refused by the server, and the device does not overrule it.
    got = pos.check_ticket(seeded.raffle_id, sale.numbers[0], tampered(sale.codes[0]))
    assert (got.result, got.source) == ("unknown", "server")
    # Voided and synced: void from the server.
    pos.void(sale.sale_id, "customer changed their mind")
    pos.sync()
    got = pos.check_ticket(seeded.raffle_id, sale.numbers[1], sale.codes[1])
    assert (got.result, got.source) == ("void", "server")
    # A ticket another device sold: the server knows it, this device does not.
    other = app.core.generate_tickets(seeded.raffle_id, 1)[0]  # type: ignore[attr-defined]
    got = pos.check_ticket(seeded.raffle_id, other.number, other.verification_code)
    assert (got.result, got.source) == ("valid", "server")
    assert pos.check_ticket(seeded.raffle_id, other.number, other.verification_code, online=False).result == "unknown"
    pos.close()


def test_online_check_through_a_dead_server_url_falls_back(tmp_path: Path, enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 1)
    dead = PosClient(enrolled.db_path, server_url="http://127.0.0.1:9", http=httpx.Client(), retry=NO_RETRY)
    got = dead.check_ticket("R1", sale.numbers[0], sale.codes[0], timeout_s=1)
    assert got.source == "device" and got.result == "valid" and "cannot be reached" in got.note
    dead.close()
    assert ticket_code("R1", sale.numbers[0], sale.hash) == sale.codes[0]


# --------------------------------------------------------------------------- end of shift


@pytest.fixture
def shift_pos(server: FakeServer, pos: PosClient) -> PosClient:
    server.sellers = [ANA, BOB]
    pos.enroll(CODE, BASE_URL, device_name="till 1")
    return pos


def test_shift_report_arithmetic_across_two_sellers(shift_pos: PosClient, clock: ManualClock, tmp_path: Path) -> None:
    pos = shift_pos
    old = pos.sell("R1", 1, "cash", seller_id=ANA.seller_id)  # before the shift: 5.00 cash
    pos.sync()
    clock.advance(60_000)
    shift = pos.start_shift(10_000)  # 100.00 in the drawer
    assert pos.current_shift() == shift
    clock.advance(1_000)
    a1 = pos.sell("R1", 3, "cash", seller_id=ANA.seller_id)  # 12.00 cash
    pos.sell("R1", 5, "card", reference="T-1", seller_id=ANA.seller_id)  # 20.00 card
    b1 = pos.sell("R1", 5, "card", reference="T-2", seller_id=BOB.seller_id)  # 20.00 card
    pos.sell("R1", 1, "cash", seller_id=BOB.seller_id)  # 5.00 cash
    pos.void(a1.sale_id, "wrong quantity", seller_id=ANA.seller_id)  # -12.00 cash (Ana)
    pos.void(b1.sale_id, "card declined", seller_id=BOB.seller_id)  # -20.00 card (Bob)
    pos.void(old.sale_id, "duplicate", seller_id=BOB.seller_id)  # -5.00 cash, a sale of before the shift
    report = pos.shift_report()
    d = report.device
    assert (report.currency, report.opening_float_cents, report.since_ms) == ("EUR", 10_000, shift.started_at_ms)
    assert (d.sales, d.sales_cents, d.voids, d.voids_cents) == (4, 5700, 3, 3700)
    assert (d.cash_sales_cents, d.cash_voids_cents, d.card_sales_cents, d.card_voids_cents) == (1700, 1700, 4000, 2000)
    assert report.cash_expected_cents == 10_000 + 1700 - 1700
    assert d.card_total_cents == 2000 and d.net_cents == 2000
    assert d.unsynced == 7  # every record of the shift; the old sale was synced
    ana, bob = report.sellers
    assert (ana.name, ana.sales, ana.sales_cents, ana.voids, ana.voids_cents) == ("Ana", 2, 3200, 1, 1200)
    assert (ana.cash_cents, ana.card_total_cents) == (0, 2000)
    assert (bob.name, bob.sales, bob.sales_cents, bob.voids, bob.voids_cents) == ("Bob", 2, 2500, 2, 2500)
    assert (bob.cash_cents, bob.card_total_cents) == (0, 0)
    # The sellers add up to the device.
    for key in ("sales", "sales_cents", "voids", "voids_cents", "cash_sales_cents", "card_sales_cents", "unsynced"):
        assert getattr(ana, key) + getattr(bob, key) == getattr(d, key)
    pos.sync()
    assert pos.shift_report().device.unsynced == 0
    # Explicit float and start: from the beginning, the old sale counts too.
    everything = pos.shift_report(opening_float_cents=0, since_ms=0)
    assert everything.device.sales == 5 and everything.cash_expected_cents == 2200 - 1700
    text = report.text()
    for part in ("END OF SHIFT", "Cash expected:", "100.00 EUR", "Seller Ana (sl-ANA)", "Seller Bob", "Unsynced:"):
        assert part in text, text
    assert all(len(line) <= 42 for line in text.splitlines()), text
    assert report.to_dict()["cash_expected_cents"] == 10_000
    # Printed through the receipt printer as ESC/POS.
    with pytest.raises(PrinterNotSet):
        pos.print_shift_report(report)
    out = tmp_path / "printer.bin"
    pos.set_printer(f"file:{out}")
    assert pos.print_shift_report(report) == f"file:{out}"
    data = out.read_bytes()
    assert data.startswith(b"\x1b@") and b"END OF SHIFT" in data and b"Cash expected" in data and b"\x1dV" in data


def test_shift_survives_a_restart_and_bad_floats_are_refused(
    shift_pos: PosClient, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    shift_pos.start_shift(2500)
    shift_pos.close()
    again = PosClient(db_path, clock=clock, http=http)
    assert again.current_shift() is not None and again.shift_report().opening_float_cents == 2500
    for bad in (-1, 2**60):
        with pytest.raises(BadInput):
            again.start_shift(bad)
    with pytest.raises(BadInput):
        again.shift_report(opening_float_cents=-5)
    again.close()


def test_a_shift_in_two_currencies_asks_for_one(server: FakeServer, shift_pos: PosClient) -> None:
    server.add_raffle("R2", currency="USD")
    assert shift_pos.device_id is not None
    server.issue_grant(shift_pos.device_id, "R2")
    shift_pos.sync()
    shift_pos.sell("R1", 1)
    shift_pos.sell("R2", 1)
    with pytest.raises(BadInput, match="EUR, USD"):
        shift_pos.shift_report()
    usd = shift_pos.shift_report(currency="USD")
    assert (usd.currency, usd.device.sales, usd.device.sales_cents) == ("USD", 1, 500)


# --------------------------------------------------------------------------- tombola-pos check / shift


def test_cli_check_by_url_and_shift(shift_pos: PosClient, db_path: Path, clock: ManualClock, http: TestClient) -> None:
    from click.testing import CliRunner, Result

    from pos_client.cli import cli as pos_cli
    from sync_protocol.codes import ticket_check_url
    from tests.pos_client.conftest import FAST_RETRY

    def cli(*args: str) -> Result:
        obj = {"http": http, "clock": clock, "retry": FAST_RETRY}
        return CliRunner().invoke(pos_cli, ["--db", str(db_path), *args], obj=obj)

    sale = shift_pos.sell("R1", 1, "cash", seller_id=ANA.seller_id)
    shift_pos.close()
    url = ticket_check_url("https://t.example/check", "R1", sale.numbers[0], sale.codes[0])
    out = cli("check", "--url", url, "--offline", "--json")
    assert out.exit_code == 0, out.output
    assert '"result": "valid"' in out.output and '"source": "device"' in out.output
    out = cli("check", "--url", "https://t.example/check?number=1")
    assert out.exit_code == 1 and "bad_check_url" in out.output
    out = cli("check", "--raffle", "R1")
    assert out.exit_code == 2
    out = cli("shift", "--float", "5000", "--since", "2000-01-01T00:00:00+00:00")
    assert out.exit_code == 0 and "Cash expected:" in out.output and "55.00 EUR" in out.output, out.output
    assert cli("shift", "--since", "yesterday").exit_code == 2
    clock.advance(1_000)
    assert cli("shift", "--float", "2000", "--start").exit_code == 0
    out = cli("shift", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["opening_float_cents"], data["cash_expected_cents"], data["device"]["sales"]) == (2000, 2000, 0)
    out = cli("shift", "--print")
    assert out.exit_code == 1 and "printer_not_set" in out.output
