"""The app's view-models without a window, over a PosClient talking to the real server app
(``db_backend``: SQLite and PostgreSQL) through its TestClient."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from pos_client import ManualClock, PosClient, RetryPolicy
from pos_client.app import viewmodels as vms
from pos_client.app.identity import identity, package_digest
from pos_client.app.viewmodels import Callback, PosViewModel
from server.app import create_app
from server.raffles import service as raffles
from tests.support.app import HOUR_MS, FakeClock, open_tombola, seed, tickets_of
from tests.support.postgres import DbUrls
from tests.support.processes import free_port

NO_RETRY = RetryPolicy(attempts=1, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)
URL = "http://testserver"


@pytest.fixture
def world(db_backend: DbUrls, tmp_path: Path) -> Iterator[tuple[object, TestClient, ManualClock, FakeClock]]:
    server_clock = FakeClock()
    app = open_tombola(tmp_path / "var", db_backend, server_clock, lease_s=24 * 3600)
    with TestClient(create_app(tombola=app)) as http:
        yield app, http, ManualClock(), server_clock
    app.close()


def make_vm(tmp_path: Path, http: TestClient, clock: ManualClock) -> tuple[PosViewModel, Queue[Callback]]:
    posted: Queue[Callback] = Queue()
    db = tmp_path / "pos.db"

    def worker() -> PosClient:
        return PosClient(db, clock=clock, http=http, retry=NO_RETRY)

    vm = PosViewModel(db, post=posted.put, client=worker(), worker_client=worker, sync_interval_s=3600)
    return vm, posted


def run_next(posted: Queue[Callback]) -> None:
    posted.get(timeout=30)()


def drain_until(posted: Queue[Callback], done: object, timeout: float = 30) -> None:
    """Run what the workers posted to the UI thread until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        try:
            posted.get(timeout=max(0.05, deadline - time.monotonic()))()
        except Empty:
            raise AssertionError("the worker did not answer in time") from None


def test_confirm_prints_at_once_on_a_worker_when_a_printer_is_set(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app)
    vm, posted = make_vm(tmp_path, http, clock)
    vm.enroll(URL, seeded.code)
    drain_until(posted, lambda: vm.enrolled and not vm.busy)
    # No printer set: nothing prints, nothing waits.
    vm.choose(1)
    assert vm.confirm() and not vm.printing and vm.print_message == "" and vm.block == ""
    # A printer set: the receipt prints on a worker; confirm returns before it has printed, and
    # selling waits for the outcome (which comes back only through post).
    out = tmp_path / "printer.bin"
    vm.client.set_printer(f"file:{out}")
    vm.choose(1)
    assert vm.confirm()
    assert vm.printing and vm.print_message == "Printing..." and vm.block == vms.PRINTING_SENTENCE
    vm.choose(1)
    assert not vm.confirm() and vm.error == vms.PRINTING_SENTENCE
    drain_until(posted, lambda: not vm.printing)
    assert vm.print_message == "Printed." and vm.receipt["copy"] and not vm.print_failed
    assert out.read_bytes().startswith(b"\x1b@") and vm.block == ""
    # A printer that does not answer: a sentence a volunteer can act on, the detail small apart.
    vm.client.set_printer(f"network:127.0.0.1:{free_port()}")
    vm.choose(1)
    assert vm.confirm()
    drain_until(posted, lambda: not vm.printing)
    assert vm.print_failed and vm.print_message == vms.PRINT_FAILED_SENTENCE
    assert "(print_failed)" in vm.print_detail and "print_failed" not in vm.print_message
    assert "printer failed" in vm.block
    # Fixed: Reprint from the receipt screen prints it and lifts the block.
    vm.client.set_printer(f"file:{out}")
    vm.print_receipt()
    drain_until(posted, lambda: not vm.printing)
    assert vm.print_message == "Printed." and not vm.print_failed and vm.print_detail == ""
    vm.refresh()
    assert vm.block == ""
    vm.stop()


def test_online_unknown_after_a_restart_does_not_block_an_online_only_raffle(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app)
    venue_raffle = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=seeded.venue_id,
            name="Members Draw",
            price_cents=200,
            number_space=1000,
            sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
            offline_sales=False,
        ),
    )
    vm, posted = make_vm(tmp_path, http, clock)
    vm.enroll(URL, seeded.code)
    drain_until(posted, lambda: vm.enrolled and not vm.busy and not vm.checking)
    vm.select_raffle(venue_raffle["id"])
    assert vm.online and vm.block == ""
    vm.stop()
    # The restart: nothing has answered yet, so online is unknown ("checking"), not "offline".
    again, posted = make_vm(tmp_path, http, clock)
    again.select_raffle(venue_raffle["id"])
    assert again.checking and not again.online and again.block == ""
    again.start_sync()
    drain_until(posted, lambda: not again.checking)
    assert again.online and again.block == ""
    # A sync that finds no server: the offline block shows.
    again._synced(vms.NetworkError("connection refused"))
    assert not again.online and "only be sold while the server is reachable" in again.block
    again.stop()


def test_app_stop_is_recorded_once_per_shutdown(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pos_client.app.main import PosApp

    app, http, clock, _server_clock = world
    seeded = seed(app)
    vm, posted = make_vm(tmp_path, http, clock)
    vm.enroll(URL, seeded.code)
    drain_until(posted, lambda: vm.enrolled and not vm.busy)
    pos_app = PosApp(tmp_path / "pos.db")
    pos_app.vm = vm
    events = PosClient(tmp_path / "pos.db", clock=clock)
    pos_app.on_stop()
    pos_app.on_stop()  # Kivy's App.run() calls stop() again after the window closed
    assert len(events.events(type="app.stop")) == 1
    events.close()


def test_enroll_sell_cash_and_card_sync_in_background(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app)
    vm, posted = make_vm(tmp_path, http, clock)
    assert not vm.enrolled and "not enrolled" in vm.block
    vm.enroll(URL, seeded.code)
    assert vm.busy
    run_next(posted)  # the enrollment's answer, handed to the UI thread
    assert vm.enrolled and not vm.busy and vm.raffle_id == seeded.raffle_id
    assert any("Test 50/50: 1000 numbers granted" in line for line in vm.setup_summary)
    assert [p["label"] for p in vm.price_points] == ["1 for 5.00 USD", "5 for 10.00 USD", "30 for 20.00 USD"]
    # A bundle for cash: change due from the amount tendered.
    vm.choose(5)
    vm.tendered = "15"
    assert vm.change_due == "5.00 USD"
    vm.tendered = "5"
    assert vm.change_due == "5.00 USD short"
    assert not vm.confirm() and "at least 10.00 USD" in vm.error
    vm.tendered = "20,00"
    assert vm.confirm()
    assert len(vm.receipt["numbers"]) == 5 and vm.receipt["change_due"] == "10.00 USD"
    # Singles by card: the stepper's price is the shared price rule; a card sale needs a reference.
    vm.step_singles(+1)
    vm.step_singles(+1)
    assert vm.single_price == "15.00 USD"
    vm.choose(int(vm.single_qty), singles=True)
    vm.set_payment("card")
    assert not vm.confirm() and "reference" in vm.error
    vm.reference = "TERM-1"
    assert vm.confirm() and vm.receipt["reference"] == "TERM-1" and len(vm.receipt["numbers"]) == 3
    # The background sync (its own thread and PosClient) hands its result to the UI through post.
    vm.start_sync()
    while vm.pending:
        run_next(posted)
    assert vm.online and vm.last_sync != "never"
    assert len(tickets_of(app, seeded.raffle_id)) == 8
    # The last sale again, as after a restart: a COPY with the same numbers.
    sold = vm.receipt["numbers"]
    assert vm.show_last_sale() and vm.receipt["copy"] and vm.receipt["numbers"] == sold
    vm.stop()


def test_blocks_sales_closed_then_lease(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, http, clock, _server_clock = world
    seeded = seed(app, close_in_ms=2 * HOUR_MS)
    vm, posted = make_vm(tmp_path, http, clock)
    vm.enroll(URL, seeded.code)
    run_next(posted)  # enrolled: the background sync starts
    run_next(posted)  # syncing
    run_next(posted)  # synced; the next one only in an hour (no sale wakes it here)
    assert vm.block == "" and vm.closes in ("closes in 2h00m", "closes in 1h59m")
    clock.advance(3 * HOUR_MS)
    vm.refresh()
    assert "closed" in vm.block and vm.closes == "sales closed"
    vm.choose(1)
    assert not vm.confirm() and vm.error == vm.block and vm.pending == 0
    clock.advance(22 * HOUR_MS)
    vm.refresh()
    assert "lease ran out" in vm.block
    vm.stop()


def test_numbers_warning_and_printer_and_offline_blocks() -> None:
    status = vms.Status(
        device_id="d",
        venue_id="v",
        device_status="active",
        server_url=URL,
        pending=0,
        acked_seq=0,
        last_seq=0,
        last_sync_ms=None,
        lease_left_s=100,
        server_time_ms=1_000,
    )
    from sync_protocol.messages import PricePoint, RaffleInfo

    raffle = RaffleInfo(
        raffle_id="r",
        name="R",
        currency="USD",
        price_points=[PricePoint(quantity=1, amount_cents=100)],
        sales_open_at_ms=0,
        sales_close_at_ms=10_000,
        status="open",
    )
    assert "printer failed" in vms.block_reason(status, raffle, online=True, printer_blocked=True)
    assert "No numbers left" in vms.block_reason(status, raffle, online=True)
    offline_only = raffle.model_copy(update={"offline_sales": False})
    assert "only be sold while the server is reachable" in vms.block_reason(status, offline_only, online=False)
    assert "No numbers left" in vms.block_reason(status, offline_only, online=None)  # not known yet: no offline block


@pytest.mark.parametrize(
    ("text", "cents"), [("20", 2000), ("20.5", 2050), ("20,50", 2050), ("", None), ("x", None), ("1.234", None)]
)
def test_parse_money(text: str, cents: int | None) -> None:
    assert vms.parse_money(text, "USD") == cents


def test_identity_digest_covers_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "kv").mkdir()
    (tmp_path / "kv" / "s.kv").write_text("<X>:\n")
    before = package_digest(tmp_path)
    assert package_digest(tmp_path) == before
    (tmp_path / "kv" / "s.kv").write_text("<Y>:\n")
    assert package_digest(tmp_path) != before
    info = identity()
    assert len(info.app_sha256) == 64 and len(info.protocol_sha256) == 64 and info.name == "Tombola POS"
