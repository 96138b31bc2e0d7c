"""The ticket-check and end-of-shift view-models without a window, over the real server app
(``db_backend``: SQLite and PostgreSQL): a typed and a scanned check, a tampered code, a URL that
is not one; the float kept when the shift starts, cash expected, printing through a worker."""

from __future__ import annotations

import time
from pathlib import Path
from queue import Empty, Queue

from pos_client.app.check_shift_viewmodels import ShiftViewModel, TicketCheckViewModel
from pos_client.app.viewmodels import Callback, PosViewModel
from sync_protocol.codes import ticket_check_url
from tests.app.test_viewmodels import URL, make_vm, run_next, world  # noqa: F401 - the fixture
from tests.support.app import Seed, seed


def drain_until(posted: Queue[Callback], done: object, timeout: float = 30) -> None:
    """Run what the workers posted to the UI thread until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        try:
            posted.get(timeout=max(0.05, deadline - time.monotonic()))()
        except Empty:
            raise AssertionError("the worker did not answer in time") from None


def enrolled_vm(world, tmp_path: Path) -> tuple[PosViewModel, Queue[Callback], Seed]:  # type: ignore[no-untyped-def]  # noqa: F811
    app, http, clock, _server_clock = world
    seeded = seed(app)
    vm, posted = make_vm(tmp_path, http, clock)
    vm.enroll(URL, seeded.code)
    run_next(posted)
    assert vm.enrolled
    return vm, posted, seeded


def sell(vm: PosViewModel, quantity: int, tendered: str = "") -> dict[str, object]:
    vm.choose(quantity)
    vm.tendered = tendered
    assert vm.confirm(), vm.error
    return dict(vm.receipt)


def test_check_typed_scanned_tampered_and_not_a_url(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm, posted, seeded = enrolled_vm(world, tmp_path)
    receipt = sell(vm, 5)
    numbers, codes = list(receipt["numbers"]), list(receipt["codes"])  # type: ignore[call-overload]
    cvm = TicketCheckViewModel(vm)
    assert cvm.raffle_id == seeded.raffle_id and cvm.raffles == [{"raffle_id": seeded.raffle_id, "name": "Test 50/50"}]
    # Typed as people type: lower case, no dash.
    cvm.number, cvm.code = str(numbers[0]), codes[0].lower().replace("-", "")
    assert cvm.check() and cvm.busy
    drain_until(posted, lambda: not cvm.busy)
    assert (cvm.headline, cvm.tone) == ("VALID", "ok") and cvm.source.startswith("Answered by")
    # A tampered code: not found, in amber.
    cvm.code = codes[1][:-1] + ("0" if codes[1][-1] != "0" else "1")
    cvm.number = str(numbers[1])
    cvm.check()
    drain_until(posted, lambda: not cvm.busy)
    assert (cvm.headline, cvm.tone) == ("NOT FOUND", "warn")
    # Scanned: the receipt's QR URL typed into the field (a handheld scanner ends with Enter).
    cvm.clear()
    assert cvm.number == cvm.code == cvm.headline == ""
    url = ticket_check_url("https://t.example/check", seeded.raffle_id, numbers[2], codes[2])
    assert cvm.use_url(url)
    assert (cvm.number, cvm.code, cvm.url) == (str(numbers[2]), codes[2], "")
    drain_until(posted, lambda: not cvm.busy)
    assert cvm.headline == "VALID"
    # check() with a URL in its field reads it first.
    cvm.url = url
    assert cvm.check()
    drain_until(posted, lambda: not cvm.busy)
    assert cvm.headline == "VALID"
    # Not a check URL, or fields to fix: a sentence, nothing asked.
    assert not cvm.use_url("https://t.example/check?number=1") and "bad_check_url" in cvm.message
    cvm.clear()
    cvm.code = "AAAA-AAAA"
    assert not cvm.check() and "number" in cvm.message and not cvm.busy
    cvm.number, cvm.code = "12", ""
    assert not cvm.check() and "code" in cvm.message
    vm.stop()


def test_shift_float_cash_expected_and_print(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm, posted, _seeded = enrolled_vm(world, tmp_path)
    svm = ShiftViewModel(vm)
    assert svm.load() and "No shift started" in svm.started
    svm.float_text = "lots"
    assert not svm.start_shift() and "Type the cash" in svm.message
    svm.float_text = "100"
    assert svm.start_shift() and "100.00 USD in the drawer" in svm.started
    assert svm.cash_expected == "Cash expected: 100.00 USD"
    sell(vm, 5, "20")  # 10.00 cash
    vm.choose(1)
    vm.set_payment("card")
    vm.reference = "T-9"
    assert vm.confirm()  # 5.00 card
    assert svm.load()
    assert svm.cash_expected == "Cash expected: 110.00 USD"
    assert "Card total:" in svm.report_text and "5.00 USD" in svm.report_text
    # The float survives a new view-model (a restart): it is a device setting.
    again = ShiftViewModel(vm)
    assert again.load() and again.float_text == "100.00" and "100.00 USD in the drawer" in again.started
    # Printing runs on a worker; without a printer it says so; with one it prints.
    assert svm.print_report() and svm.busy
    drain_until(posted, lambda: not svm.busy)
    assert "printer_not_set" in svm.message
    out = tmp_path / "shift.bin"
    vm.client.set_printer(f"file:{out}")
    svm.print_report()
    drain_until(posted, lambda: not svm.busy)
    assert svm.message == f"Printed on file:{out}." and b"Cash expected" in out.read_bytes()
    vm.stop()
