"""Receipt printers: the device's printer setting, ESC/POS through python-escpos, and the print block.

**The printer** is one setting of the device (the ``settings`` table, key ``printer``), written
as ``KIND:WHERE`` (:class:`PrinterSpec`):

- ``file:PATH`` — a file or device node (``/dev/usb/lp0``), written whole at each print;
- ``network:HOST[:PORT]`` — a network printer's raw port (9100 by default);
- ``usb:VID:PID`` — a USB printer by vendor and product id, in hexadecimal (needs pyusb);
- ``serial:DEV`` — a serial port, or a Bluetooth SPP port a Linux desktop bound with ``rfcomm``
  (``/dev/rfcomm0``; needs pyserial);
- ``bluetooth:MAC`` — a paired Bluetooth printer's SPP service (``AA:BB:CC:DD:EE:FF``, stored in
  upper case with ``:``): an RFCOMM socket through the Android Bluetooth API on Android, Python's
  ``AF_BLUETOOTH`` sockets on Linux (:mod:`pos_client.bluetooth`); elsewhere each print fails with
  ``printer_unsupported``.

**A print** renders the :class:`~pos_client.receipt.Receipt` into ESC/POS bytes first (with
``escpos.printer.Dummy``, no I/O: :func:`render`), then opens the printer, sends the bytes in one
write and closes it (:func:`send`); a Bluetooth printer gets the same bytes over RFCOMM, within
:data:`BLUETOOTH_TIMEOUT_S`. Each ticket's QR code uses the printer's own QR command
(``GS ( k``, ``qr(..., native=True)``), carrying the ticket-check URL.

**The block.** Each print's outcome is recorded durably in the ``receipts`` table (one row per
sale: ``state`` ``printed`` or ``failed``, prints, the last error). While a receipt failed to
print and its sale is not voided, the device sells nothing (:func:`check_not_blocked`,
``printer_failed``): the seller reprints it (a successful print lifts the block) or voids the
sale. A receipt is marked ``COPY`` when the caller asks, or when one of the sale already printed.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pos_client import bluetooth
from pos_client.bluetooth import parse_mac
from pos_client.errors import BadPrinter, PrinterFailed, PrinterNotSet, PrintFailed
from pos_client.receipt import COPY_MARK, Receipt
from pos_client.store import Store

if TYPE_CHECKING:
    from escpos.escpos import Escpos

#: the ``settings`` key of the printer
PRINTER_KEY = "printer"
#: seconds a network printer may take to accept the connection and the bytes
NETWORK_TIMEOUT_S = 5.0
#: seconds a Bluetooth printer may take to connect and take the bytes (Android's connect() alone
#: takes about 12 s to give up on a printer that is off)
BLUETOOTH_TIMEOUT_S = 20.0
#: characters per line of an 80 mm printer's font A (58 mm printers have 32)
LINE_WIDTH = 42

_KINDS = ("file", "network", "usb", "serial", "bluetooth")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s]+)(?::(?P<port>\d{1,5}))?$")
_USB = re.compile(r"^(?P<vid>(?:0x)?[0-9A-Fa-f]{1,4}):(?P<pid>(?:0x)?[0-9A-Fa-f]{1,4})$")

__all__ = [
    "PRINTER_KEY",
    "PrintOutcome",
    "PrinterSpec",
    "blocking_receipt",
    "check_not_blocked",
    "clear_printer",
    "get_printer",
    "print_receipt",
    "printed_before",
    "record_outcome",
    "render",
    "render_test_page",
    "send",
    "set_printer",
]


@dataclass(frozen=True)
class PrinterSpec:
    """A printer setting, ``KIND:WHERE``.

    Raises (from :meth:`parse`):
        BadPrinter: not one of the five forms (``bad_printer``).
    """

    kind: str
    target: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> PrinterSpec:
        kind, sep, rest = text.strip().partition(":")
        usage = "give file:PATH, network:HOST[:PORT], usb:VID:PID (hexadecimal), serial:DEV or bluetooth:MAC"
        if not sep or kind not in _KINDS or (not rest and kind != "bluetooth") or len(text) > 500 or "\x00" in text:
            raise BadPrinter(f"{text[:80]!r} is not a printer: {usage}", printer=text[:80])
        if kind == "network":
            m = _HOST_PORT.match(rest)
            port = int(m["port"]) if m and m["port"] else 9100
            if m is None or not 1 <= port <= 65535:
                raise BadPrinter(f"{text!r}: a network printer is HOST or HOST:PORT (port 1..65535)", printer=text)
            return cls("network", m["host"].strip("[]"), port)
        if kind == "usb":
            m = _USB.match(rest)
            if m is None:
                raise BadPrinter(f"{text!r}: a USB printer is usb:VID:PID in hexadecimal, e.g. usb:04b8:0202")
            return cls("usb", f"{int(m['vid'], 16):04x}:{int(m['pid'], 16):04x}")
        if kind == "bluetooth":
            mac = parse_mac(rest)
            if mac is None:
                raise BadPrinter(
                    f"{text[:80]!r}: a Bluetooth printer is bluetooth:MAC, its address as six two-digit "
                    "hexadecimal bytes, e.g. bluetooth:66:22:B3:0C:1A:7F (on its self-test page)",
                    printer=text[:80],
                )
            return cls("bluetooth", mac)
        return cls(kind, rest)

    def __str__(self) -> str:
        if self.kind == "network":
            host = f"[{self.target}]" if ":" in self.target else self.target
            return f"network:{host}:{self.port}"
        return f"{self.kind}:{self.target}"

    def open(self) -> Escpos:
        """The python-escpos printer of this setting, opened (raises what the library raises).
        A Bluetooth printer has none: :func:`send` writes its bytes through :mod:`pos_client.bluetooth`."""
        from escpos import printer

        if self.kind == "bluetooth":
            raise ValueError("a Bluetooth printer is written by printing.send, not opened as python-escpos")

        device: Escpos
        if self.kind == "file":
            device = printer.File(self.target, auto_flush=False)
        elif self.kind == "network":
            device = printer.Network(self.target, port=self.port or 9100, timeout=NETWORK_TIMEOUT_S)
        elif self.kind == "usb":
            vid, pid = (int(part, 16) for part in self.target.split(":"))
            device = printer.Usb(vid, pid)
        else:
            device = printer.Serial(self.target)
        device.open()
        return device


# --------------------------------------------------------------------------- setting


def set_printer(store: Store, text: str) -> PrinterSpec:
    """Parse and store the device's printer (``bad_printer`` when it is not one); durable on return."""
    spec = PrinterSpec.parse(text)
    with store.write() as conn:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (PRINTER_KEY, str(spec)),
        )
    return spec


def get_printer(store: Store) -> PrinterSpec | None:
    """The device's printer, ``None`` when none is set."""
    with store.read() as conn:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (PRINTER_KEY,)).fetchone()
    return None if row is None else PrinterSpec.parse(row[0])


def clear_printer(store: Store) -> None:
    """Remove the device's printer setting (no printer: nothing prints); durable on return."""
    with store.write() as conn:
        conn.execute("DELETE FROM settings WHERE key = ?", (PRINTER_KEY,))


# --------------------------------------------------------------------------- ESC/POS


def render(receipt: Receipt) -> bytes:
    """The receipt as ESC/POS bytes (no I/O): header, body, one native QR code per ticket, cut."""
    from escpos import printer

    p = printer.Dummy()
    _write(p, receipt)
    return bytes(p.output)


def render_test_page(spec: PrinterSpec, when: str) -> bytes:
    """A short test page as ESC/POS bytes (no I/O): the printer setting, ``when``, a QR code, cut.
    It is no receipt: printing it records nothing in ``receipts`` and never blocks selling."""
    from escpos import printer

    p = printer.Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.textln("TEST PAGE")
    p.set(align="center", bold=False, normal_textsize=True)
    p.textln("Tombola POS: this printer works.")
    p.textln(f"Printer: {spec}")
    p.textln(when)
    p.qr("TOMBOLA TEST PAGE", size=4, native=True)
    p.textln("-" * LINE_WIDTH)
    p.cut()
    return bytes(p.output)


def _write(p: Any, receipt: Receipt) -> None:
    p.hw("INIT")  # ESC @: whatever the last job left set is reset
    p.set(align="center", bold=True)
    if receipt.copy:
        p.set(align="center", bold=True, double_height=True, double_width=True)
        p.textln(COPY_MARK)
        p.set(align="center", bold=True, normal_textsize=True)
    if receipt.voided:
        p.textln("*** VOIDED ***")
    if receipt.organisation:
        p.textln(receipt.organisation)
    p.set(align="left", bold=False, normal_textsize=True)
    for label, value in receipt.lines():
        p.textln(f"{label}: {value}")
    p.textln("-" * LINE_WIDTH)
    for ticket in receipt.tickets:
        p.set(align="left", bold=True, double_height=True)
        p.textln(f"#{ticket.number}  {ticket.code}")
        p.set(align="left", bold=False, normal_textsize=True)
        if ticket.check_url:
            p.set(align="center")
            p.qr(ticket.check_url, size=4, native=True)
            p.set(align="left")
    p.textln("-" * LINE_WIDTH)
    for line in receipt.footer():
        p.textln(line)
    if receipt.copy:
        p.set(align="center", bold=True)
        p.textln(COPY_MARK)
    p.cut()


def send(spec: PrinterSpec, data: bytes) -> None:
    """Open the printer, write ``data`` in one piece, close it.

    Raises:
        PrintFailed: the printer could not be opened or written to (``print_failed``).
        PrinterUnsupported: a Bluetooth printer on a device without Bluetooth sockets
            (``printer_unsupported``, a kind of ``print_failed``).
    """
    if spec.kind == "bluetooth":
        try:
            bluetooth.send(spec.target, data, timeout_s=BLUETOOTH_TIMEOUT_S)
        except PrintFailed:
            raise
        except TimeoutError as exc:
            raise PrintFailed(f"printer {spec} did not answer: {_why(exc)}", printer=str(spec)) from exc
        except Exception as exc:  # the adapter's: refused connection, broken pipe, permission
            raise PrintFailed(f"printer {spec} cannot be reached: {_why(exc)}", printer=str(spec)) from exc
        return
    try:
        device = spec.open()
    except Exception as exc:  # python-escpos, sockets, pyusb and pyserial each raise their own
        raise PrintFailed(f"printer {spec} cannot be reached: {_why(exc)}", printer=str(spec)) from exc
    try:
        device._raw(data)
        flush = getattr(device, "flush", None)
        if callable(flush):
            flush()
    except Exception as exc:
        raise PrintFailed(f"printer {spec} failed while printing: {_why(exc)}", printer=str(spec)) from exc
    finally:
        with contextlib.suppress(Exception):  # closing a failed device may fail too; the print error stands
            device.close()


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


# --------------------------------------------------------------------------- print state and the block


@dataclass(frozen=True)
class PrintOutcome:
    """What became of one print: printed, or failed with the error (also recorded in ``receipts``)."""

    sale_id: str
    printed: bool
    copy: bool
    printer: str
    error: str | None = None


def record_outcome(conn: sqlite3.Connection, sale_id: str, *, printed: bool, error: str | None, now_ms: int) -> None:
    """Record a print of ``sale_id`` (inside the caller's write transaction)."""
    conn.execute(
        "INSERT INTO receipts (sale_id, state, prints, failures, last_error, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (sale_id) DO UPDATE SET state = excluded.state, prints = prints + excluded.prints, "
        "failures = failures + excluded.failures, last_error = excluded.last_error, "
        "updated_at_ms = excluded.updated_at_ms",
        (sale_id, "printed" if printed else "failed", int(printed), int(not printed), error, now_ms),
    )


def printed_before(conn: sqlite3.Connection, sale_id: str) -> bool:
    row = conn.execute("SELECT prints FROM receipts WHERE sale_id = ?", (sale_id,)).fetchone()
    return row is not None and int(row[0]) > 0


def blocking_receipt(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """``(sale_id, error)`` of the receipt that failed to print and blocks selling, if any: its
    last print failed and its sale is not voided."""
    row = conn.execute(
        "SELECT r.sale_id, r.last_error FROM receipts r JOIN records s ON s.sale_id = r.sale_id "
        "WHERE r.state = 'failed' AND s.voided_by IS NULL ORDER BY r.updated_at_ms LIMIT 1"
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1] or ""))


def check_not_blocked(conn: sqlite3.Connection) -> None:
    """Refuse a sale while a receipt failed to print (``printer_failed``).

    Raises:
        PrinterFailed: names the sale to reprint or void.
    """
    blocked = blocking_receipt(conn)
    if blocked is not None:
        sale_id, error = blocked
        raise PrinterFailed(
            f"the receipt of sale {sale_id} did not print ({error}): fix the printer and reprint it "
            f"(`tombola-pos receipt {sale_id}`), or void the sale, before selling again",
            sale_id=sale_id,
        )


def print_receipt(store: Store, receipt: Receipt, now_ms: int, spec: PrinterSpec | None = None) -> PrintOutcome:
    """Print ``receipt`` on the device's printer (or ``spec``) and record the outcome durably.

    Raises:
        PrinterNotSet: no printer is set (``printer_not_set``); nothing is recorded.
        PrintFailed: the print failed (``print_failed``); recorded, and selling is blocked.
    """
    spec = spec or get_printer(store)
    if spec is None:
        raise PrinterNotSet("no printer is set: `tombola-pos printer set file:PATH | network:HOST[:PORT] | ...`")
    data = render(receipt)
    try:
        send(spec, data)
    except PrintFailed as exc:
        with store.write() as conn:
            record_outcome(conn, receipt.sale_id, printed=False, error=exc.detail, now_ms=now_ms)
        raise
    with store.write() as conn:
        record_outcome(conn, receipt.sale_id, printed=True, error=None, now_ms=now_ms)
    return PrintOutcome(sale_id=receipt.sale_id, printed=True, copy=receipt.copy, printer=str(spec))
