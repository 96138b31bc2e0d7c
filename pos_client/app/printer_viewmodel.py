"""View-model of the Printer settings screen (reached from Setup), beside the app's
:class:`~pos_client.app.viewmodels.PosViewModel` and acting through its :class:`~pos_client.PosClient`.

Nothing here decides a rule: the setting is parsed and stored by :meth:`PosClient.set_printer`
(``bad_printer`` when it is not one, shown as a sentence with the detail under it), removed by
:meth:`PosClient.clear_printer`, and the test page is :meth:`PosClient.print_test_page` (no
receipt: it never blocks selling). A save records ``settings.changed`` with the kind only. The
test print runs on a worker thread (a network printer may take seconds) and hands its outcome
back through the app view-model's ``post``; plain pytest tests this class without a window.
"""

from __future__ import annotations

import threading
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, OptionProperty, StringProperty

from pos_client.app.viewmodels import PosViewModel, record_event
from sync_protocol.errors import TombolaError

#: the kinds of printer, in the order of their buttons
KINDS = ("network", "usb", "serial", "file")
#: the network printers' raw port
DEFAULT_PORT = "9100"
#: what the screen says when no printer is set
NO_PRINTER = "No printer: receipts are shown on screen only."
#: the sentence of a refused setting, by kind (the SDK's detail is shown small under it)
REFUSED = {
    "network": "That is not a network printer: type its address (like 192.168.1.50) and port (usually 9100).",
    "usb": "That is not a USB printer: type its vendor and product ids in hexadecimal (like 04b8 and 0202).",
    "serial": "That is not a serial printer: type its device path (like /dev/rfcomm0).",
    "file": "That is not a file printer: type the path of a file or device (like /dev/usb/lp0).",
}


class PrinterSettingsViewModel(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """The current printer, the kind chosen and its fields; Save, Print a test page, No printer."""

    current = StringProperty("")
    kind = OptionProperty("network", options=list(KINDS))
    host = StringProperty("")
    port = StringProperty(DEFAULT_PORT)
    vendor_id = StringProperty("")
    product_id = StringProperty("")
    device = StringProperty("")
    file_path = StringProperty("")
    message = StringProperty("")  # a sentence a volunteer can act on
    detail = StringProperty("")  # the technical detail, small, under it
    busy = BooleanProperty(False)  # a test page is printing
    has_printer = BooleanProperty(False)

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        self.load()

    def load(self) -> None:
        """Show the device's printer and fill the fields of its kind."""
        try:
            spec = self.app_vm.client.printer()
        except TombolaError as exc:  # a setting written by hand that is not one
            spec = None
            self.detail = f"{exc.detail} ({exc.code})"
        self.has_printer = spec is not None
        if spec is None:
            self.current = NO_PRINTER
            return
        self.current = f"Printer now: {spec}"
        self.kind = spec.kind
        if spec.kind == "network":
            self.host, self.port = spec.target, str(spec.port or DEFAULT_PORT)
        elif spec.kind == "usb":
            self.vendor_id, _, self.product_id = spec.target.partition(":")
        elif spec.kind == "serial":
            self.device = spec.target
        else:
            self.file_path = spec.target

    def setting(self) -> str:
        """The fields of the chosen kind as the SDK's ``KIND:WHERE`` (unchecked: the SDK checks it)."""
        if self.kind == "network":
            host = self.host.strip()
            host = f"[{host}]" if ":" in host and not host.startswith("[") else host
            port = self.port.strip()
            return f"network:{host}:{port}" if port else f"network:{host}"
        if self.kind == "usb":
            return f"usb:{self.vendor_id.strip()}:{self.product_id.strip()}"
        if self.kind == "serial":
            return f"serial:{self.device.strip()}"
        return f"file:{self.file_path.strip()}"

    def save(self) -> bool:
        """Set the printer from the fields (``PosClient.set_printer``); a refusal as a sentence."""
        try:
            spec = self.app_vm.client.set_printer(self.setting())
        except TombolaError as exc:
            self.message = REFUSED[self.kind]
            self.detail = f"{exc.detail} ({exc.code})"
            return False
        record_event(self.app_vm.client, "settings.changed", {"kind": spec.kind})
        self.load()
        self.message, self.detail = f"Saved: receipts print on {spec}.", ""
        self.app_vm.refresh()
        return True

    def no_printer(self) -> None:
        """Set no printer: receipts are shown on screen only."""
        self.app_vm.client.clear_printer()
        record_event(self.app_vm.client, "settings.changed", {"kind": "none"})
        self.load()
        self.message, self.detail = "Saved: no printer. Receipts are shown on screen only.", ""
        self.app_vm.refresh()

    def print_test(self) -> bool:
        """Print a test page on the saved printer (a worker thread; the outcome comes back posted)."""
        if self.busy:
            return False
        if not self.has_printer:
            self.message, self.detail = "No printer is saved: choose one and tap Save first.", ""
            return False
        self.busy = True
        self.message, self.detail = "Printing a test page...", ""

        def work() -> None:
            outcome: tuple[str, str]
            client = self.app_vm._worker_client()
            try:
                printer = client.print_test_page()
                outcome = (f"Test page printed on {printer}.", "")
            except TombolaError as exc:
                outcome = (
                    "The test page did not print: check the printer is on, has paper and is connected.",
                    f"{exc.detail} ({exc.code})",
                )
            except Exception as exc:  # any failure must come back, or the screen would wait forever
                outcome = ("The test page did not print.", f"{type(exc).__name__}: {exc}")
            finally:
                client.close()
            self.app_vm.post(lambda: self._printed(outcome))

        threading.Thread(target=work, name="pos-test-page", daemon=True).start()
        return True

    def _printed(self, outcome: tuple[str, str]) -> None:
        self.busy = False
        self.message, self.detail = outcome
