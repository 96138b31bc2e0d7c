"""The Printer settings view-model without a window, over the real server app (``db_backend``:
SQLite and PostgreSQL, for the enrolled device whose events are recorded): each kind saved
through ``PosClient.set_printer`` with ``settings.changed`` (the kind only), refused values as
sentences, a test page on a file printer (ESC/POS, no receipt owed, selling not blocked), a test
page on a printer that does not answer, and No printer. The Bluetooth kind with a fake radio (the
one fake: ``tests/pos_client/fake_bluetooth_printer.py``): the permission, the paired devices as
choices, a refusal, none paired, no Bluetooth at all, the test page, and a receipt that fails over
Bluetooth becoming the print block with its sentence. Who may change the printer: with the app's
policy (``require_seller``) a signed-in seller once enrolled, the seller recorded with the change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import ManualClock, bluetooth
from pos_client.app import printer_viewmodel as pv
from pos_client.app import viewmodels as appvm
from pos_client.app.printer_viewmodel import PrinterSettingsViewModel
from server.app import create_app
from server.sellers import service as sellers
from tests.app import test_seller_viewmodels as seller_vms
from tests.app.test_check_shift_viewmodels import drain_until, enrolled_vm
from tests.app.test_viewmodels import world  # noqa: F401 - the fixture
from tests.pos_client.fake_bluetooth_printer import CONNECT_REFUSED, FakeBluetooth
from tests.support.app import FakeClock, open_tombola, seed
from tests.support.postgres import DbUrls
from tests.support.processes import free_port

MAC = "66:22:B3:0C:1A:7F"


@pytest.fixture
def radio() -> Iterator[FakeBluetooth]:
    fake = FakeBluetooth(
        paired_devices=[bluetooth.PairedDevice("PT-210", MAC), bluetooth.PairedDevice("Kitchen", "00:11:22:33:44:55")]
    )
    bluetooth.use_adapter(fake)
    yield fake
    bluetooth.use_adapter(None)


def test_save_each_kind_refusals_test_page_and_no_printer(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm, posted, _seeded = enrolled_vm(world, tmp_path)
    pvm = PrinterSettingsViewModel(vm)
    assert pvm.current == pv.NO_PRINTER and not pvm.has_printer and pvm.kind == "network"
    # A test page before any printer is saved: a sentence, nothing printed.
    assert not pvm.print_test() and "Save first" in pvm.message and not pvm.busy

    # Each kind, from its own fields.
    pvm.kind, pvm.host, pvm.port = "network", "10.0.0.5", "9101"
    assert pvm.save(), pvm.detail
    assert str(vm.client.printer()) == "network:10.0.0.5:9101" and pvm.current == "Printer now: network:10.0.0.5:9101"
    pvm.kind, pvm.vendor_id, pvm.product_id = "usb", "04B8", "202"
    assert pvm.save(), pvm.detail
    assert str(vm.client.printer()) == "usb:04b8:0202"
    pvm.kind, pvm.device = "serial", " /dev/rfcomm0 "
    assert pvm.save(), pvm.detail
    assert str(vm.client.printer()) == "serial:/dev/rfcomm0"
    out = tmp_path / "printer.bin"
    pvm.kind, pvm.file_path = "file", str(out)
    assert pvm.save() and pvm.message == f"Saved: receipts print on file:{out}."
    assert str(vm.client.printer()) == f"file:{out}"
    events = vm.client.events(type="settings.changed")
    assert [e.detail for e in events] == [{"kind": k} for k in ("network", "usb", "serial", "file")]

    # Refused values: a sentence for the kind, the SDK's coded detail small under it, nothing saved.
    pvm.kind, pvm.host, pvm.port = "network", "10.0.0.5", "70000"
    assert not pvm.save()
    assert pvm.message == pv.REFUSED["network"] and pvm.detail.endswith("(bad_printer)")
    assert "bad_printer" not in pvm.message
    pvm.kind, pvm.vendor_id, pvm.product_id = "usb", "zz", "0202"
    assert not pvm.save() and pvm.message == pv.REFUSED["usb"] and "(bad_printer)" in pvm.detail
    pvm.kind, pvm.host, pvm.port = "network", "", "9100"
    assert not pvm.save() and pvm.message == pv.REFUSED["network"]
    assert str(vm.client.printer()) == f"file:{out}"
    assert len(vm.client.events(type="settings.changed")) == 4

    # A fresh screen shows the saved printer in its fields.
    again = PrinterSettingsViewModel(vm)
    assert (again.kind, again.file_path, again.has_printer) == ("file", str(out), True)

    # The test page on the file printer: ESC/POS (init, the printer's own QR command, cut), on a worker.
    assert pvm.print_test() and pvm.busy
    drain_until(posted, lambda: not pvm.busy)
    assert pvm.message == f"Test page printed on file:{out}." and pvm.detail == ""
    data = out.read_bytes()
    assert data.startswith(b"\x1b@") and b"TEST PAGE" in data and b"\x1d(k" in data and b"\x1dV" in data
    assert vm.client.printer_blocked() is None

    # A printer that does not answer: a sentence, the detail apart, printer.error; selling not blocked.
    pvm.kind, pvm.host, pvm.port = "network", "127.0.0.1", str(free_port())
    assert pvm.save()
    pvm.print_test()
    drain_until(posted, lambda: not pvm.busy)
    assert pvm.message.startswith("The test page did not print") and "(print_failed)" in pvm.detail
    assert vm.client.events(type="printer.error")[-1].detail["report"] == "test_page"
    vm.refresh()
    assert vm.client.printer_blocked() is None and vm.block == ""

    # No printer.
    pvm.no_printer()
    assert vm.client.printer() is None and pvm.current == pv.NO_PRINTER and not pvm.has_printer
    assert vm.client.events(type="settings.changed")[-1].detail == {"kind": "none"}
    vm.stop()


def test_bluetooth_kind_paired_choices_refusals_test_page_and_the_print_block(  # type: ignore[no-untyped-def]
    world,  # noqa: F811
    tmp_path: Path,
    radio: FakeBluetooth,
) -> None:
    vm, posted, _seeded = enrolled_vm(world, tmp_path)
    pvm = PrinterSettingsViewModel(vm)
    # Choosing the kind asks for the permission, then lists the paired devices (answer posted).
    pvm.kind = "bluetooth"
    assert radio.asked == 1 and pvm.bt_looking
    drain_until(posted, lambda: not pvm.bt_looking)
    assert pvm.paired == [{"name": "PT-210", "mac": MAC}, {"name": "Kitchen", "mac": "00:11:22:33:44:55"}]
    assert pvm.bt_message == ""
    pvm.pick(MAC)
    assert pvm.mac == MAC and pvm.message == "PT-210 chosen: tap Save."
    assert pvm.save() and pvm.message == f"Saved: receipts print on bluetooth:{MAC}."
    assert str(vm.client.printer()) == f"bluetooth:{MAC}" and pvm.saved_kind == "bluetooth"
    assert vm.client.events(type="settings.changed")[-1].detail == {"kind": "bluetooth"}
    # A typed address, lower case with dashes: stored canonical; a bad one is a sentence.
    pvm.mac = "66-22-b3-0c-1a-7f"
    assert pvm.save() and str(vm.client.printer()) == f"bluetooth:{MAC}"
    pvm.mac = "PT-210"
    assert not pvm.save() and pvm.message == pv.REFUSED["bluetooth"] and pvm.detail.endswith("(bad_printer)")
    pvm.mac = MAC

    # The test page: the permission first, then the bytes over the radio.
    assert pvm.print_test() and pvm.busy
    drain_until(posted, lambda: not pvm.busy)
    assert pvm.message == f"Test page printed on bluetooth:{MAC}." and b"TEST PAGE" in radio.written[MAC]
    assert radio.asked == 2

    # The permission refused: sentences, never an exception; nothing listed, nothing printed.
    radio.refuse = True
    pvm.look_for_printers()
    drain_until(posted, lambda: not pvm.bt_looking)
    assert pvm.paired == [] and pvm.bt_message == pv.BT_REFUSED
    radio.written.clear()
    assert pvm.print_test()
    drain_until(posted, lambda: not pvm.busy)
    assert pvm.message == pv.BT_REFUSED and radio.written == {}
    radio.refuse = False
    # None paired; a device without Bluetooth.
    radio.paired_devices = []
    pvm.look_for_printers()
    drain_until(posted, lambda: not pvm.bt_looking)
    assert pvm.paired == [] and pvm.bt_message == pv.BT_NONE_PAIRED
    radio.why_unsupported = "this device has no Bluetooth"
    pvm.look_for_printers()
    assert pvm.bt_message == "This device cannot print to Bluetooth printers: this device has no Bluetooth."
    radio.why_unsupported = None

    # A receipt that fails over Bluetooth: the print block with its sentence, lifted by a reprint.
    radio.fail = "connect"
    vm.choose(1)
    assert vm.confirm(), vm.error
    drain_until(posted, lambda: not vm.printing)
    assert vm.print_failed and vm.print_message == appvm.PRINT_FAILED_SENTENCE
    assert CONNECT_REFUSED in vm.print_detail and vm.print_detail.endswith("(print_failed)")
    assert vm.block.startswith("The printer failed")
    vm.choose(1)
    assert not vm.confirm() and vm.error == vm.block
    radio.fail = None
    vm.print_receipt()
    drain_until(posted, lambda: not vm.printing)
    assert vm.print_message == "Printed." and not vm.print_failed and vm.block == ""
    vm.choose(1)
    assert vm.confirm(), vm.error
    vm.stop()


def test_a_device_without_bluetooth_blocks_with_its_own_sentence(  # type: ignore[no-untyped-def]
    world,  # noqa: F811
    tmp_path: Path,
) -> None:
    bluetooth.use_adapter(bluetooth.NoBluetooth("this Python has no Bluetooth sockets (socket.AF_BLUETOOTH)"))
    try:
        vm, posted, _seeded = enrolled_vm(world, tmp_path)
        vm.client.set_printer(f"bluetooth:{MAC}")
        vm.choose(1)
        assert vm.confirm(), vm.error
        drain_until(posted, lambda: not vm.printing)
        assert vm.print_message == appvm.PRINTER_UNSUPPORTED_SENTENCE
        assert vm.print_detail.endswith("(printer_unsupported)") and vm.block.startswith("The printer failed")
        vm.stop()
    finally:
        bluetooth.use_adapter(None)


@pytest.fixture
def seller_world(db_backend: DbUrls, tmp_path: Path) -> Iterator[tuple[object, TestClient, ManualClock]]:
    app = open_tombola(tmp_path / "var", db_backend, FakeClock(), lease_s=24 * 3600)
    with TestClient(create_app(tombola=app)) as http:
        yield app, http, ManualClock()
    app.close()


def test_printer_settings_change_only_for_a_signed_in_seller(  # type: ignore[no-untyped-def]
    seller_world, tmp_path: Path, radio: FakeBluetooth
) -> None:
    app, http, clock = seller_world
    seeded = seed(app)
    alice = sellers.add_seller(app, seeded.venue_id, "Alice", seller_vms.ALICE_PIN)
    vm, _posted = seller_vms.enrolled_vm(tmp_path, http, clock, seeded)  # the app's policy: require_seller
    try:
        pvm = PrinterSettingsViewModel(vm)
        assert vm.needs_seller and not vm.signed_in
        pvm.kind, pvm.mac = "bluetooth", MAC
        assert not pvm.save()
        assert pvm.message == pv.SIGN_IN_FIRST and pvm.detail.endswith("(sign_in_required)")
        assert vm.client.printer() is None and vm.client.events(type="settings.changed") == []
        vm.client.sign_in(alice["id"], seller_vms.ALICE_PIN)
        vm.refresh()
        assert pvm.save(), pvm.detail
        changed = vm.client.events(type="settings.changed")
        assert [(e.detail, e.seller_id) for e in changed] == [({"kind": "bluetooth"}, alice["id"])]
        vm.client.sign_out()
        vm.refresh()
        pvm.no_printer()
        assert pvm.message == pv.SIGN_IN_FIRST and str(vm.client.printer()) == f"bluetooth:{MAC}"
    finally:
        vm.stop()
