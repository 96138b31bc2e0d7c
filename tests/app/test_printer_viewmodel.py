"""The Printer settings view-model without a window, over the real server app (``db_backend``:
SQLite and PostgreSQL, for the enrolled device whose events are recorded): each kind saved
through ``PosClient.set_printer`` with ``settings.changed`` (the kind only), refused values as
sentences, a test page on a file printer (ESC/POS, no receipt owed, selling not blocked), a test
page on a printer that does not answer, and No printer."""

from __future__ import annotations

from pathlib import Path

from pos_client.app import printer_viewmodel as pv
from pos_client.app.printer_viewmodel import PrinterSettingsViewModel
from tests.app.test_check_shift_viewmodels import drain_until, enrolled_vm
from tests.app.test_viewmodels import world  # noqa: F401 - the fixture
from tests.support.processes import free_port


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
