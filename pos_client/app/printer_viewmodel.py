"""View-model of the Printer settings screen (reached from Setup), beside the app's
:class:`~pos_client.app.viewmodels.PosViewModel` and acting through its :class:`~pos_client.PosClient`.

Nothing here decides a rule: the setting is parsed and stored by :meth:`PosClient.set_printer`
(``bad_printer`` when it is not one, shown as a sentence with the detail under it), removed by
:meth:`PosClient.clear_printer`, and the test page is :meth:`PosClient.print_test_page` (no
receipt: it never blocks selling). A save records ``settings.changed`` with the kind only (and
the signed-in seller). The test print runs on a worker thread (a network printer may take
seconds) and hands its outcome back through the app view-model's ``post``; plain pytest tests
this class without a window.

**Who may change it.** Once the device is enrolled, only a signed-in seller changes where receipts
go: the SDK refuses otherwise (``sign_in_required``, :meth:`PosClient.set_printer`), and the app's
seller guard shows the sign-in before this screen. Before enrollment nothing sells, so the printer
can be set up with the device.

**Bluetooth** (:mod:`pos_client.bluetooth`, through its adapter): choosing the kind asks for the
permission (Android 12+: "Nearby devices"), then lists the paired devices as buttons; a refusal
or a device without Bluetooth is a sentence in ``bt_message``, never an exception. The address
can also be typed. A test page on a Bluetooth printer asks for the permission first too.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, OptionProperty, StringProperty

from pos_client import bluetooth
from pos_client.app.viewmodels import PosViewModel
from sync_protocol.errors import TombolaError

#: the kinds of printer, in the order of their buttons
KINDS = ("bluetooth", "network", "usb", "serial", "file")
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
    "bluetooth": (
        "That is not a Bluetooth printer: tap a paired printer, or type its address "
        "(six pairs like 66:22:B3:0C:1A:7F, on its self-test page)."
    ),
}
#: what the screen says when the seller must sign in first (the SDK's sign_in_required)
SIGN_IN_FIRST = "Sign in first: only a signed-in seller may change where receipts print."
#: the Bluetooth permission was refused (Android 12+: "Nearby devices")
BT_REFUSED = (
    "Bluetooth printers need the Nearby devices permission, which was refused: allow it in Android's "
    "Settings > Apps > Tombola POS > Permissions, then tap Look again."
)
#: no paired device was found
BT_NONE_PAIRED = (
    "No paired Bluetooth device found: pair the printer in the device's Bluetooth settings first "
    "(Android: Settings > Connected devices > Pair new device), then tap Look again, or type its address."
)
#: the adapter says this device cannot print to Bluetooth printers (the reason follows)
BT_UNSUPPORTED = "This device cannot print to Bluetooth printers: {why}."


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
    mac = StringProperty("")  # a Bluetooth printer's address, picked or typed
    paired = ListProperty([])  # [{"name", "mac"}] of the paired Bluetooth devices
    bt_message = StringProperty("")  # a sentence about Bluetooth: refused, none paired, unsupported
    bt_looking = BooleanProperty(False)  # waiting for the permission answer
    message = StringProperty("")  # a sentence a volunteer can act on
    detail = StringProperty("")  # the technical detail, small, under it
    busy = BooleanProperty(False)  # a test page is printing
    has_printer = BooleanProperty(False)
    saved_kind = StringProperty("")  # the kind of the printer saved, "" for none

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        self.load()
        self.bind(kind=self._kind_chosen)
        if self.kind == "bluetooth":
            self.look_for_printers()

    def load(self) -> None:
        """Show the device's printer and fill the fields of its kind."""
        try:
            spec = self.app_vm.client.printer()
        except TombolaError as exc:  # a setting written by hand that is not one
            spec = None
            self.detail = f"{exc.detail} ({exc.code})"
        self.has_printer = spec is not None
        self.saved_kind = spec.kind if spec else ""
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
        elif spec.kind == "bluetooth":
            self.mac = spec.target
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
        if self.kind == "bluetooth":
            return f"bluetooth:{self.mac.strip()}"
        return f"file:{self.file_path.strip()}"

    def save(self) -> bool:
        """Set the printer from the fields (``PosClient.set_printer``); a refusal as a sentence."""
        try:
            spec = self.app_vm.client.set_printer(self.setting())
        except TombolaError as exc:
            self.message = SIGN_IN_FIRST if exc.code == "sign_in_required" else REFUSED[self.kind]
            self.detail = f"{exc.detail} ({exc.code})"
            return False
        self._record_change(spec.kind)
        self.load()
        self.message, self.detail = f"Saved: receipts print on {spec}.", ""
        self.app_vm.refresh()
        return True

    def no_printer(self) -> None:
        """Set no printer: receipts are shown on screen only."""
        try:
            self.app_vm.client.clear_printer()
        except TombolaError as exc:
            self.message, self.detail = SIGN_IN_FIRST, f"{exc.detail} ({exc.code})"
            return
        self._record_change("none")
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
        if self.saved_kind == "bluetooth":  # the permission first (Android 12+)
            bluetooth.adapter().request_access(lambda granted: self.app_vm.post(lambda: self._test_allowed(granted)))
        else:
            self._start_test()
        return True

    def _test_allowed(self, granted: bool) -> None:
        if granted:
            self._start_test()
        else:
            self.busy = False
            self.message, self.detail = BT_REFUSED, ""

    def _start_test(self) -> None:
        def work() -> None:
            outcome: tuple[str, str]
            client = self.app_vm._worker_client()
            try:
                printer = client.print_test_page()
                outcome = (f"Test page printed on {printer}.", "")
            except TombolaError as exc:
                outcome = (
                    "The test page did not print: this device cannot reach that printer; choose another one."
                    if exc.code == "printer_unsupported"
                    else "The test page did not print: check the printer is on, has paper and is connected.",
                    f"{exc.detail} ({exc.code})",
                )
            except Exception as exc:  # any failure must come back, or the screen would wait forever
                outcome = ("The test page did not print.", f"{type(exc).__name__}: {exc}")
            finally:
                client.close()
            self.app_vm.post(lambda: self._printed(outcome))

        threading.Thread(target=work, name="pos-test-page", daemon=True).start()

    def _printed(self, outcome: tuple[str, str]) -> None:
        self.busy = False
        self.message, self.detail = outcome

    # ------------------------------------------------------------------ Bluetooth

    def _kind_chosen(self, _vm: Any, kind: str) -> None:
        if kind == "bluetooth":
            self.look_for_printers()

    def look_for_printers(self) -> None:
        """Ask for the Bluetooth permission (Android 12+), then list the paired devices; a refusal,
        a device without Bluetooth or none paired is a sentence in ``bt_message``."""
        adapter = bluetooth.adapter()
        why = adapter.unsupported()
        if why is not None:
            self.paired, self.bt_message = [], BT_UNSUPPORTED.format(why=why)
            return
        self.bt_looking = True
        self.bt_message = "Looking for paired Bluetooth printers..."
        adapter.request_access(lambda granted: self.app_vm.post(lambda: self._access_answered(granted)))

    def _access_answered(self, granted: bool) -> None:
        self.bt_looking = False
        if not granted:
            self.paired, self.bt_message = [], BT_REFUSED
            return
        try:
            found = bluetooth.adapter().paired()
        except Exception as exc:  # the radio's own failure: a sentence, never a crash
            self.paired = []
            self.bt_message = f"The paired devices could not be read: {' '.join(str(exc).split())[:160]}"
            return
        self.paired = [{"name": d.name, "mac": d.mac} for d in found]
        self.bt_message = "" if found else BT_NONE_PAIRED

    def pick(self, mac: str) -> None:
        """A paired device tapped: its address goes into the field (Save stores it)."""
        self.mac = mac
        name = next((d["name"] for d in self.paired if d["mac"] == mac), mac)
        self.message, self.detail = f"{name} chosen: tap Save.", ""

    # ------------------------------------------------------------------ events

    def _record_change(self, kind: str) -> None:
        """``settings.changed`` with the kind only and the seller who changed it; never fails the save."""
        client = self.app_vm.client
        seller = client.current_seller()
        with contextlib.suppress(TombolaError):
            client.record_event("settings.changed", {"kind": kind}, seller_id=seller.seller_id if seller else "")
