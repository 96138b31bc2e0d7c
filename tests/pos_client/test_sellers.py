"""Sellers on the device: the roster sync delivers, offline PIN sign-in, the lockout, the idle lock,
the seller on each sale, the supervisor PIN of a void, and the raffle setting ``offline_sales``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pos_client import ManualClock, PosClient
from pos_client.errors import (
    NetworkError,
    OfflineSalesNotAllowed,
    PinWrong,
    SellerLocked,
    SellerUnknown,
    SignInRequired,
    SupervisorRequired,
)
from pos_client.online import ONLINE_WINDOW_MS
from pos_client.sellers import IDLE_LOCK_MS, LOCK_BASE_MS, MAX_FAILURES, lock_ms
from sync_protocol.messages import SellerInfo
from sync_protocol.pins import hash_pin
from tests.pos_client.conftest import CODE, FAST_RETRY, reopen
from tests.pos_client.fake_server import BASE_URL, FakeServer


def seller(seller_id: str, name: str, pin: str, *, supervisor: bool = False) -> SellerInfo:
    stored = hash_pin(pin)
    return SellerInfo(
        seller_id=seller_id,
        name=name,
        supervisor=supervisor,
        pin_scheme=stored.pin_scheme,
        pin_salt=stored.pin_salt,
        pin_hash=stored.pin_hash,
    )


ANA = seller("sl-ANA", "Ana", "4821")
BOB = seller("sl-BOB", "Bob", "1357")
SUE = seller("sl-SUE", "Sue", "90210", supervisor=True)


@pytest.fixture
def staffed(server: FakeServer, pos: PosClient) -> PosClient:
    server.sellers = [ANA, BOB, SUE]
    pos.enroll(CODE, BASE_URL, device_name="till 1")
    return pos


def test_enrollment_and_sync_deliver_the_roster_and_a_disabled_seller_goes(
    server: FakeServer, staffed: PosClient
) -> None:
    assert [(s.seller_id, s.name, s.supervisor) for s in staffed.sellers()] == [
        ("sl-ANA", "Ana", False),
        ("sl-BOB", "Bob", False),
        ("sl-SUE", "Sue", True),
    ]
    server.sellers = [ANA, SUE]  # Bob disabled on the server
    staffed.sync()
    assert [s.seller_id for s in staffed.sellers()] == ["sl-ANA", "sl-SUE"]
    with pytest.raises(SellerUnknown):
        staffed.sign_in("sl-BOB", "1357")
    server.sellers = None  # an older server leaves the member out: the roster stays as it is
    staffed.sync()
    assert [s.seller_id for s in staffed.sellers()] == ["sl-ANA", "sl-SUE"]
    server.sellers = []  # everyone disabled: the roster empties
    staffed.sync()
    assert staffed.sellers() == []


def test_sign_in_is_offline_and_the_seller_goes_on_each_sale(
    staffed: PosClient, db_path: Path, clock: ManualClock
) -> None:
    staffed.close()
    # the server is gone: nothing listens where the device looks for it
    gone = PosClient(db_path, clock=clock, http=httpx.Client(), server_url="http://127.0.0.1:9", retry=FAST_RETRY)
    try:
        assert gone.check_server(timeout_s=0.5) is False
        who = gone.sign_in("sl-ANA", "4821")
        assert who.name == "Ana" and gone.current_seller() == who
        sale = gone.sell("R1", 1)
        void = gone.void(sale.sale_id, "wrong raffle")
        records = list(gone.records())
        assert [r.seller_id for r in records] == ["sl-ANA", "sl-ANA"] and records[1].sale_id == void.void_id
        assert gone.sell("R1", 1, seller_id="sl-OTHER").sale_id  # an explicit seller (the CLI's --seller) wins
        gone.sign_out()
        assert gone.current_seller() is None
        assert [r.seller_id for r in gone.records()][-1] == "sl-OTHER"
        assert gone.sell("R1", 1).sale_id and list(gone.records())[-1].seller_id == ""  # today's CLI behaviour
    finally:
        gone.close()


def test_wrong_pins_lock_the_seller_durably_and_a_right_pin_clears_the_count(
    staffed: PosClient, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    with pytest.raises(SellerUnknown) as unknown:
        staffed.sign_in("sl-NOBODY", "1234")
    assert unknown.value.code == "seller_unknown" and "sync" in unknown.value.detail
    for left in range(MAX_FAILURES - 1, 0, -1):
        with pytest.raises(PinWrong) as wrong:
            staffed.sign_in("sl-ANA", "0000")
        assert wrong.value.code == "pin_wrong" and wrong.value.extra["attempts_left"] == left
    staffed = reopen(staffed, db_path, clock, http)  # a restart does not reset the count
    with pytest.raises(PinWrong) as fifth:
        staffed.sign_in("sl-ANA", "0000")
    assert fifth.value.extra == {"seller_id": "sl-ANA", "attempts_left": 0, "locked_for_s": 60}
    with pytest.raises(SellerLocked) as locked:
        staffed.sign_in("sl-ANA", "4821")  # even the right PIN: locked
    assert locked.value.code == "seller_locked" and locked.value.extra["locked_for_s"] == 60
    assert "try again in 60 s" in locked.value.detail
    staffed.sign_in("sl-BOB", "1357")  # only Ana is locked
    clock.advance(LOCK_BASE_MS)
    with pytest.raises(PinWrong):
        staffed.sign_in("sl-ANA", "1111")  # a sixth failure in a row: locked twice as long
    clock.advance(LOCK_BASE_MS)
    with pytest.raises(SellerLocked):
        staffed.sign_in("sl-ANA", "4821")
    clock.advance(LOCK_BASE_MS)
    assert staffed.sign_in("sl-ANA", "4821").seller_id == "sl-ANA"
    with pytest.raises(PinWrong) as again:
        staffed.sign_in("sl-ANA", "0000")
    assert again.value.extra["attempts_left"] == MAX_FAILURES - 1  # the right PIN cleared the count
    for bad in ("482", "482100000", "48a1", "", "٤٨٢١"):  # not 4-8 ASCII digits: never a match, counted
        with pytest.raises((PinWrong, SellerLocked)):
            staffed.sign_in("sl-BOB", bad)
    staffed.close()


def test_lock_durations_double_and_stop_at_an_hour() -> None:
    assert [lock_ms(n) // 1000 for n in range(4, 9)] == [0, 60, 120, 240, 480]
    assert lock_ms(100) == 3_600_000


def test_sign_in_and_pin_failures_are_device_events(staffed: PosClient) -> None:
    with pytest.raises(PinWrong):
        staffed.sign_in("sl-ANA", "9999")
    staffed.sign_in("sl-ANA", "4821")
    events = [(e.type, e.seller_id) for e in staffed.events() if e.type.startswith("seller.")]
    assert events == [("seller.pin_failed", "sl-ANA"), ("seller.sign_in", "sl-ANA")]
    assert all("4821" not in str(e) and "9999" not in str(e) for e in staffed.events())


def test_the_app_policy_requires_a_seller_and_the_idle_lock_falls_after_five_minutes(
    server: FakeServer, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    server.sellers = [ANA]
    app = PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY, require_seller=True)
    try:
        app.enroll(CODE, BASE_URL)
        with pytest.raises(SignInRequired) as nobody:
            app.sell("R1", 1)
        assert nobody.value.code == "sign_in_required" and "sign in" in nobody.value.detail
        app.sign_in("sl-ANA", "4821")
        with pytest.raises(SignInRequired):
            app.sell("R1", 1, seller_id="sl-BOB")  # not the one signed in
        clock.advance(IDLE_LOCK_MS - 1000)
        assert not app.session_expired()
        app.sell("R1", 1)  # a sale is activity: the five minutes start again
        clock.advance(IDLE_LOCK_MS - 1000)
        app.note_activity()
        clock.advance(IDLE_LOCK_MS - 1)
        assert not app.session_expired() and app.current_seller() is not None
        clock.advance(1)
        assert app.session_expired() and app.current_seller() is None
        with pytest.raises(SignInRequired) as idle:
            app.sell("R1", 1)
        assert "5 idle minutes" in idle.value.detail
        app.sign_in("sl-ANA", "4821")
        assert not app.session_expired()
        assert [r.seller_id for r in app.records()] == ["sl-ANA"]
    finally:
        app.close()


def test_a_void_checks_a_supervisor_pin(
    server: FakeServer, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    server.sellers = [ANA, SUE]
    pos = PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY, void_needs_supervisor=True)
    try:
        pos.enroll(CODE, BASE_URL)
        sales = [pos.sell("R1", 1) for _ in range(3)]
        with pytest.raises(SupervisorRequired) as required:
            pos.void(sales[0].sale_id, "customer changed mind")
        assert required.value.code == "supervisor_required"
        with pytest.raises(PinWrong):
            pos.void(sales[0].sale_id, "customer changed mind", supervisor_pin="4821")  # Ana is no supervisor
        with pytest.raises(SellerUnknown):
            pos.void(sales[0].sale_id, "customer changed mind", supervisor_pin="4821", supervisor_id="sl-ANA")
        assert pos.void(sales[0].sale_id, "customer changed mind", supervisor_pin="90210").voids == sales[0].sale_id
        assert pos.void(sales[1].sale_id, "misprint", supervisor_pin="90210", supervisor_id="sl-SUE")
        for _ in range(MAX_FAILURES):
            with pytest.raises(PinWrong):
                pos.void(sales[2].sale_id, "guess", supervisor_pin="11111")
        with pytest.raises(SellerLocked):
            pos.void(sales[2].sale_id, "guess", supervisor_pin="90210")
        assert [r.kind for r in pos.records()] == ["sale", "sale", "sale", "void", "void"]  # nothing else written
        failed = [e for e in pos.events() if e.type == "seller.pin_failed"]
        assert failed and all(e.detail.get("purpose") == "void" for e in failed)
    finally:
        pos.close()
    # the CLI's policy: no supervisor needed, and none asked
    with PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY) as cli:
        clock.advance(LOCK_BASE_MS)
        assert cli.void(sales[2].sale_id, "cli void").voids == sales[2].sale_id


def test_a_raffle_without_offline_sales_sells_only_while_the_server_answers(
    server: FakeServer, staffed: PosClient, clock: ManualClock
) -> None:
    staffed.sell("R1", 1)  # offline sales allowed (the member is absent): no check
    server.update_raffle("R1", offline_sales=False)
    staffed.sync()
    assert staffed.sell("R1", 1)  # the server answered just now
    clock.advance(ONLINE_WINDOW_MS + 1)
    with pytest.raises(OfflineSalesNotAllowed) as stale:
        staffed.sell("R1", 1)
    assert stale.value.code == "offline_sales_not_allowed" and "restore the connection" in stale.value.detail
    assert staffed.check_server() is True  # a ping counts as the server's answer
    staffed.sell("R1", 1)
    staffed.note_online(False)  # the app lost the server: selling stops at once
    with pytest.raises(OfflineSalesNotAllowed):
        staffed.sell("R1", 1)
    staffed.note_online(True)
    staffed.sell("R1", 1)
    server.fail_next(*["drop_before"] * 8)
    with pytest.raises(NetworkError):
        staffed.sync()
    with pytest.raises(OfflineSalesNotAllowed):
        staffed.sell("R1", 1)
    assert [r.kind for r in staffed.records()] == ["sale"] * 4  # the refusals wrote nothing
