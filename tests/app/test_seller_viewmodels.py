"""The sign-in and void view-models without a window, over the app's PosClient policy
(``require_seller``, ``void_needs_supervisor``) against the real server app on SQLite and
PostgreSQL: roster by enrollment, wrong PIN and lockout sentences, the idle lock, a void with a
supervisor's PIN (last sale and found by number), the after-close refusal, the empty roster."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from queue import Queue

import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from pos_client import ManualClock, PosClient, RetryPolicy
from pos_client.app.seller_viewmodels import OTHER, SignInViewModel, VoidViewModel
from pos_client.app.viewmodels import Callback, PosViewModel
from server.app import create_app
from server.sellers import service as sellers
from tests.support.app import HOUR_MS, FakeClock, Seed, open_tombola, seed
from tests.support.postgres import DbUrls

NO_RETRY = RetryPolicy(attempts=1, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)
URL = "http://testserver"
ALICE_PIN, SUPER_PIN = "4821", "90210"


@pytest.fixture
def world(db_backend: DbUrls, tmp_path: Path) -> Iterator[tuple[object, TestClient, ManualClock, FakeClock]]:
    server_clock = FakeClock()
    app = open_tombola(tmp_path / "var", db_backend, server_clock, lease_s=24 * 3600)
    with TestClient(create_app(tombola=app)) as http:
        yield app, http, ManualClock(), server_clock
    app.close()


def enrolled_vm(
    tmp_path: Path, http: TestClient, clock: ManualClock, seeded: Seed
) -> tuple[PosViewModel, Queue[Callback]]:
    """An enrolled app view-model whose client has the app's policy; its first background sync done."""
    posted: Queue[Callback] = Queue()
    db = tmp_path / "pos.db"

    def worker() -> PosClient:
        return PosClient(db, clock=clock, http=http, retry=NO_RETRY)

    client = PosClient(db, clock=clock, http=http, retry=NO_RETRY, require_seller=True, void_needs_supervisor=True)
    vm = PosViewModel(db, post=posted.put, client=client, worker_client=worker, sync_interval_s=3600)
    vm.enroll(URL, seeded.code)
    for _ in range(3):  # enrolled; the background sync starts, runs, and waits an hour
        posted.get(timeout=30)()
    assert vm.enrolled
    return vm, posted


def type_pin(entry: SignInViewModel | VoidViewModel, pin: str) -> None:
    entry.clear_pin()
    for digit in pin:
        entry.press(digit)


def test_sign_in_lockout_idle_lock_and_sign_out(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app)
    alice = sellers.add_seller(app, seeded.venue_id, "Alice", ALICE_PIN)
    sellers.add_seller(app, seeded.venue_id, "Bob", "1111")
    vm, _posted = enrolled_vm(tmp_path, http, clock, seeded)
    svm = SignInViewModel(vm)
    try:
        assert [s["name"] for s in svm.roster] == ["Alice", "Bob"] and svm.empty_message == ""
        # Nobody signed in: selling is blocked with a sentence, and the SDK refuses too.
        assert vm.needs_seller and not vm.signed_in and "No seller is signed in" in vm.block
        vm.choose(1)
        assert not vm.confirm() and vm.error == vm.block and vm.pending == 0
        # OK before a name, a short PIN: sentences, nothing counted.
        assert not svm.sign_in() and "Tap your name" in svm.message
        svm.select(alice["id"])
        type_pin(svm, "12")
        assert svm.masked == "\u2022 \u2022 " and not svm.sign_in() and "4 to 8 digits" in svm.message
        # Wrong PINs: attempts left as a sentence, then the lock with its length.
        for left in (4, 3, 2, 1):
            type_pin(svm, "0000")
            assert not svm.sign_in() and svm.code == "pin_wrong"
            assert f"{left} tr" in svm.message and "60 s lock" in svm.message, svm.message
        type_pin(svm, "0000")
        assert not svm.sign_in() and "locked for 60 s" in svm.message
        type_pin(svm, ALICE_PIN)  # the right PIN while locked: refused, and says how long
        assert not svm.sign_in() and svm.code == "seller_locked" and "try again in 60 s" in svm.message
        assert svm.pin == "" and not vm.signed_in
        clock.advance(61_000)
        type_pin(svm, ALICE_PIN)
        assert svm.sign_in() and svm.code == "" and vm.signed_in and vm.seller_name == "Alice"
        assert vm.block == ""
        # The sale in progress survives the idle lock; activity keeps the session alive.
        vm.choose(5)
        vm.tendered = "20"
        clock.advance(4 * 60_000)
        vm.note_activity()
        clock.advance(4 * 60_000)
        vm.refresh()
        assert vm.signed_in
        clock.advance(5 * 60_000)
        vm.refresh()
        assert not vm.signed_in and vm.seller_name == "" and "No seller is signed in" in vm.block
        assert vm.quantity == 5 and vm.tendered == "20"  # nothing lost
        svm.select(alice["id"])
        type_pin(svm, ALICE_PIN)
        assert svm.sign_in() and vm.confirm() and vm.change_due == "" and len(vm.receipt["numbers"]) == 5
        sale = next(iter(vm.client.records()))
        assert sale.seller_id == alice["id"]
        vm.sign_out()
        assert not vm.signed_in and "No seller is signed in" in vm.block
    finally:
        vm.stop()


def test_void_last_and_by_number_with_supervisor_pin(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, server_clock = world
    seeded = seed(app, close_in_ms=2 * HOUR_MS)
    alice = sellers.add_seller(app, seeded.venue_id, "Alice", ALICE_PIN)
    sellers.add_seller(app, seeded.venue_id, "Sam", SUPER_PIN, supervisor=True)
    vm, _posted = enrolled_vm(tmp_path, http, clock, seeded)
    svm, vvm = SignInViewModel(vm), VoidViewModel(vm)
    try:
        svm.select(alice["id"])
        type_pin(svm, ALICE_PIN)
        assert svm.sign_in()
        vm.choose(5)
        assert vm.confirm()
        first = list(vm.receipt["numbers"])
        vm.choose(1)
        vm.set_payment("card")
        vm.reference = "T-9"
        assert vm.confirm()
        second = list(vm.receipt["numbers"])
        # The last sale by default; not ready without a reason and a PIN.
        vvm.reset()
        assert vvm.sale["numbers"] == second and vvm.sale["seller"] == "Alice" and not vvm.ready
        assert not vvm.confirm() and vvm.message == "Pick a reason for the void."
        vvm.choose_reason(OTHER)
        assert not vvm.confirm() and "Type the reason" in vvm.message
        vvm.reason_text = "customer left"
        assert not vvm.confirm() and "supervisor types their PIN" in vvm.message
        # A wrong supervisor PIN: a sentence with the tries left; nothing voided.
        type_pin(vvm, "11111")
        assert vvm.ready and not vvm.confirm() and vvm.code == "pin_wrong" and "4 tries left" in vvm.message
        assert not any(r.kind == "void" for r in vm.client.records())
        # The seller's own PIN is not a supervisor's.
        type_pin(vvm, ALICE_PIN)
        assert not vvm.confirm() and vvm.code == "pin_wrong"
        type_pin(vvm, SUPER_PIN)
        assert vvm.confirm(), vvm.message
        assert vvm.voided["numbers"] == second and str(second[0]) in vvm.message
        assert "Refund 5.00 USD on the card terminal" in vvm.message and vvm.sale["voided"]
        voids = [r for r in vm.client.records() if r.kind == "void"]
        assert len(voids) == 1 and voids[0].reason == "customer left" and voids[0].seller_id == alice["id"]
        # The SDK recorded sale.voided once; the view-model recorded nothing more.
        assert [e.type for e in vm.client.events(type="sale.voided")] == ["sale.voided"]
        # Already voided: the screen says so before asking anything.
        type_pin(vvm, SUPER_PIN)
        assert not vvm.confirm() and vvm.code == "already_voided"
        # Found by ticket number; the last not voided is now the first sale.
        assert not vvm.find("999999") and "No sale of this device holds number 999999" in vvm.message
        assert not vvm.find("x") and "digits only" in vvm.message
        assert vvm.find(str(first[2])) and vvm.sale["numbers"] == first
        vvm.reset()
        assert vvm.sale["numbers"] == first
        # After sales close a sale stays in the draw: the shared rule refuses, as a sentence.
        clock.advance(3 * HOUR_MS)
        server_clock.advance(3 * HOUR_MS)  # a background sync may re-anchor the device's time
        svm.select(alice["id"])
        type_pin(svm, ALICE_PIN)
        assert svm.sign_in()
        vvm.choose_reason("Wrong payment")
        type_pin(vvm, SUPER_PIN)
        assert vvm.reason() == "Wrong payment" and not vvm.confirm() and vvm.code == "raffle_closed"
        assert "can no longer be voided" in vvm.message and "stay in the draw" in vvm.message
        assert len([r for r in vm.client.records() if r.kind == "void"]) == 1
    finally:
        vm.stop()


def test_empty_roster_and_no_supervisor_say_what_to_do(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app)
    vm, posted = enrolled_vm(tmp_path, http, clock, seeded)
    svm, vvm = SignInViewModel(vm), VoidViewModel(vm)
    try:
        assert svm.roster == [] and f"tombola seller add --venue {seeded.venue_id}" in svm.empty_message
        assert "--pin-stdin" in svm.empty_message and not vm.signed_in
        # The administrator adds a seller (no supervisor); the next sync brings them.
        alice = sellers.add_seller(app, seeded.venue_id, "Alice", ALICE_PIN)
        vm.sync_now()
        while vm.syncing or not svm.roster:
            posted.get(timeout=30)()
        assert [s["name"] for s in svm.roster] == ["Alice"] and svm.empty_message == ""
        svm.select(alice["id"])
        type_pin(svm, ALICE_PIN)
        assert svm.sign_in()
        vm.choose(1)
        assert vm.confirm()
        vvm.reset()
        vvm.choose_reason("Wrong quantity or raffle")
        type_pin(vvm, "1234")
        assert not vvm.confirm() and vvm.code == "supervisor_required"
        assert "knows no supervisor" in vvm.message and "--supervisor --pin-stdin" in vvm.message
    finally:
        vm.stop()
