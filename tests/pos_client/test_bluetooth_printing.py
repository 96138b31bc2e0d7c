"""Bluetooth receipt printers (``bluetooth:MAC``, :mod:`pos_client.bluetooth`).

The radio is the one fake (``tests/pos_client/fake_bluetooth_printer.py``: records the bytes,
refuses the connection, breaks a write, never answers, refuses the permission); everything around
it is the real SDK: the setting, the ESC/POS the receipt renders to, the print block, the events.
The Linux path runs its real socket code over a real Unix socket (this machine's Python has no
``AF_BLUETOOTH``), and the platform's own adapter is checked to fail with ``printer_unsupported``
where Bluetooth sockets are missing. Who may change the printer: a signed-in seller once enrolled.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from pos_client import ManualClock, PosClient, bluetooth, printing
from pos_client.errors import BadPrinter, PrinterFailed, PrinterUnsupported, PrintFailed, SignInRequired
from pos_client.printing import PrinterSpec
from tests.pos_client.conftest import CODE, FAST_RETRY, reopen
from tests.pos_client.fake_bluetooth_printer import CONNECT_REFUSED, WRITE_BROKEN, FakeBluetooth
from tests.pos_client.fake_server import BASE_URL, FakeServer
from tests.pos_client.test_receipts import qr_payloads, receipted  # noqa: F401 - the fixture
from tests.pos_client.test_sellers import ANA

MAC = "66:22:B3:0C:1A:7F"
PRINTER = f"bluetooth:{MAC}"


@pytest.fixture
def radio() -> Iterator[FakeBluetooth]:
    fake = FakeBluetooth(paired_devices=[bluetooth.PairedDevice("PT-210", MAC)])
    bluetooth.use_adapter(fake)
    yield fake
    bluetooth.use_adapter(None)


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("bluetooth:66:22:b3:0c:1a:7f", PRINTER),
        ("bluetooth:66-22-B3-0C-1A-7F", PRINTER),
        (f"bluetooth: {MAC} ", PRINTER),
        ("bluetooth:00:11:22:33:44:55", "bluetooth:00:11:22:33:44:55"),
    ],
)
def test_a_bluetooth_printer_setting_is_normalised(text: str, normal: str) -> None:
    spec = PrinterSpec.parse(text)
    assert (spec.kind, str(spec)) == ("bluetooth", normal)
    assert str(PrinterSpec.parse(normal)) == normal


@pytest.mark.parametrize(
    "text",
    [
        "bluetooth:",
        "bluetooth:66:22:B3:0C:1A",  # five bytes
        "bluetooth:66:22:B3:0C:1A:7F:00",  # seven
        "bluetooth:66:22:B3:0C:1A:7G",  # not hexadecimal
        "bluetooth:66:22-B3:0C:1A:7F",  # mixed separators
        "bluetooth:6622B30C1A7F",
        "bluetooth:00:00:00:00:00:00",  # no device
        "bluetooth:FF:FF:FF:FF:FF:FF",  # broadcast
        "bluetooth:PT-210",  # a name is not an address
    ],
)
def test_a_bad_bluetooth_address_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(BadPrinter) as refused:
        PrinterSpec.parse(text)
    assert refused.value.code == "bad_printer"
    assert "six two-digit hexadecimal bytes" in refused.value.detail and "self-test page" in refused.value.detail


@given(st.text(alphabet="0123456789abcdefABCDEF:- xyz", max_size=24))
def test_parse_mac_gives_the_canonical_form_or_nothing(text: str) -> None:
    mac = bluetooth.parse_mac(text)
    if mac is not None:
        assert len(mac) == 17 and mac == mac.upper() and mac.count(":") == 5
        assert bluetooth.parse_mac(mac) == mac
        assert mac.replace(":", "") == text.strip().replace(":", "").replace("-", "").upper()


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-"]), st.booleans())
def test_every_real_address_is_accepted_in_either_spelling(raw: bytes, sep: str, lower: bool) -> None:
    text = sep.join(f"{b:02x}" if lower else f"{b:02X}" for b in raw)
    expected = None if raw in (b"\x00" * 6, b"\xff" * 6) else ":".join(f"{b:02X}" for b in raw)
    assert bluetooth.parse_mac(text) == expected


# --------------------------------------------------------------------------- printing through the radio


def test_a_receipt_goes_to_the_bluetooth_printer_as_escpos(
    receipted: PosClient,  # noqa: F811
    radio: FakeBluetooth,
) -> None:
    receipted.set_printer(PRINTER.lower())
    assert str(receipted.printer()) == PRINTER
    sale = receipted.sell("R1", 2)
    outcome = receipted.print_receipt(sale.sale_id)
    assert outcome.printed and outcome.printer == PRINTER
    data = radio.written[MAC]
    assert data.startswith(b"\x1b@") and b"\x1dV" in data  # init ... cut
    for number in sale.numbers:
        assert f"#{number}".encode() in data
    assert len(qr_payloads(data)) == 2  # one native QR command per ticket
    assert radio.connects == 1 and radio.closes >= 1
    # the sending thread detached (pyjnius needs it on Android)
    deadline = time.monotonic() + 5
    while radio.threads_done < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert radio.threads_done >= 1
    assert receipted.printer_blocked() is None
    receipted.sell("R1", 1)


@pytest.mark.parametrize(
    ("fail", "said"),
    [
        ("connect", CONNECT_REFUSED),
        ("write", WRITE_BROKEN),
        ("timeout", "did not take the receipt within 0.3 s"),
    ],
)
def test_a_bluetooth_failure_blocks_the_next_sale_until_the_receipt_is_reprinted(
    receipted: PosClient,  # noqa: F811
    radio: FakeBluetooth,
    monkeypatch: pytest.MonkeyPatch,
    db_path: Path,
    clock: ManualClock,
    http: TestClient,
    fail: str,
    said: str,
) -> None:
    monkeypatch.setattr(printing, "BLUETOOTH_TIMEOUT_S", 0.3)
    receipted.set_printer(PRINTER)
    sale = receipted.sell("R1", 1)
    radio.fail = fail
    started = time.monotonic()
    with pytest.raises(PrintFailed) as failed:
        receipted.print_receipt(sale.sale_id)
    assert time.monotonic() - started < 5  # a printer that never answers does not hang the seller
    assert failed.value.code == "print_failed" and said in failed.value.detail and PRINTER in failed.value.detail
    assert receipted.events(type="printer.error")[-1].detail == {"sale_id": sale.sale_id, "printer": PRINTER}
    with pytest.raises(PrinterFailed) as refused:
        receipted.sell("R1", 1)
    assert refused.value.extra["sale_id"] == sale.sale_id and said in refused.value.detail
    if fail == "timeout":  # the link was closed, which is what unblocks Android's connect()
        deadline = time.monotonic() + 5
        while radio.closes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert radio.closes >= 1

    # durable across a restart; the printer back: the reprint lifts the block
    pos = reopen(receipted, db_path, clock, http)
    try:
        with pytest.raises(PrinterFailed):
            pos.sell("R1", 1)
        radio.fail = None
        radio.written.clear()
        assert pos.print_receipt(sale.sale_id).printed
        assert f"#{sale.numbers[0]}".encode() in radio.written[MAC]
        assert pos.printer_blocked() is None and pos.sell("R1", 1).numbers
    finally:
        pos.close()


def test_a_refused_permission_is_a_print_failure_that_says_so(
    receipted: PosClient,  # noqa: F811
    radio: FakeBluetooth,
) -> None:
    receipted.set_printer(PRINTER)
    sale = receipted.sell("R1", 1)
    radio.refuse = True
    with pytest.raises(PrintFailed) as failed:
        receipted.print_receipt(sale.sale_id)
    assert "Nearby devices permission was refused" in failed.value.detail
    assert receipted.printer_blocked() is not None


def test_without_bluetooth_sockets_a_print_fails_with_printer_unsupported_and_blocks(
    receipted: PosClient,  # noqa: F811
) -> None:
    bluetooth.use_adapter(None)  # the platform's own adapter
    try:
        platform = bluetooth.adapter()
        if platform.unsupported() is None:
            pytest.skip("this machine has Bluetooth RFCOMM sockets")
        receipted.set_printer(PRINTER)  # the setting itself is fine: another device may print to it
        sale = receipted.sell("R1", 1)
        with pytest.raises(PrinterUnsupported) as failed:
            receipted.print_receipt(sale.sale_id)
        assert failed.value.code == "printer_unsupported" and isinstance(failed.value, PrintFailed)
        assert "Bluetooth" in failed.value.detail and PRINTER in failed.value.detail
        with pytest.raises(PrinterFailed):  # the same block as any print failure
            receipted.sell("R1", 1)
        with pytest.raises(PrinterUnsupported):
            receipted.print_test_page()
    finally:
        bluetooth.use_adapter(None)


def test_the_linux_adapter_fails_with_printer_unsupported_where_af_bluetooth_is_missing() -> None:
    if hasattr(socket, "AF_BLUETOOTH"):
        pytest.skip("this Python has AF_BLUETOOTH")
    assert isinstance(bluetooth.default_adapter(), bluetooth.NoBluetooth)
    adapter = bluetooth.LinuxAdapter()  # as if built for a Python with the constant
    assert adapter.unsupported() is not None
    with pytest.raises(PrinterUnsupported) as refused:
        bluetooth.send(MAC, b"x", via=adapter)
    assert refused.value.code == "printer_unsupported"


# --------------------------------------------------------------------------- the Linux socket code, over a real socket


class UnixRfcomm(bluetooth.LinuxAdapter):
    """The Linux adapter's link code over a Unix socket at ``path`` (no radio here)."""

    def __init__(self, path: Path) -> None:
        super().__init__(family=socket.AF_UNIX, proto=0)
        self.path = path

    def address(self, mac: str) -> str:
        return str(self.path)


def serve(path: Path, *, read: bool) -> tuple[socket.socket, list[bytes], threading.Thread]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got: list[bytes] = []

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            if not read:
                time.sleep(3)
                return
            while chunk := conn.recv(65536):
                got.append(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, got, thread


def test_the_linux_socket_link_sends_every_byte_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "printer.sock"
    server, got, thread = serve(path, read=True)
    data = printing.render_test_page(PrinterSpec.parse(PRINTER), "now") * 200  # more than one buffer
    with server:
        bluetooth.send(MAC, data, timeout_s=5, via=UnixRfcomm(path))
        thread.join(5)
    assert b"".join(got) == data  # the printer saw the end of the stream: the link was closed


def test_the_linux_socket_link_times_out_on_a_printer_that_stops_reading(tmp_path: Path) -> None:
    path = tmp_path / "printer.sock"
    server, _got, _thread = serve(path, read=False)
    with server, pytest.raises(TimeoutError):
        bluetooth.send(MAC, b"\x00" * (16 << 20), timeout_s=0.5, via=UnixRfcomm(path))


def test_the_linux_socket_link_reports_a_printer_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        bluetooth.send(MAC, b"x", timeout_s=5, via=UnixRfcomm(tmp_path / "nobody.sock"))


# --------------------------------------------------------------------------- who may change the printer


def test_the_printer_changes_only_for_a_signed_in_seller_once_enrolled(
    server: FakeServer, db_path: Path, clock: ManualClock, http: TestClient, tmp_path: Path
) -> None:
    server.sellers = [ANA]
    pos = PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY, require_seller=True)
    try:
        pos.set_printer(PRINTER)  # before enrollment nothing sells: the printer is set up with the device
        pos.enroll(CODE, BASE_URL, device_name="till 1")
        with pytest.raises(SignInRequired) as refused:
            pos.set_printer(f"file:{tmp_path / 'elsewhere.bin'}")
        assert refused.value.code == "sign_in_required" and "change the printer" in refused.value.detail
        with pytest.raises(SignInRequired):
            pos.clear_printer()
        assert str(pos.printer()) == PRINTER  # nothing changed
        pos.sign_in(ANA.seller_id, "4821")
        pos.set_printer(f"file:{tmp_path / 'elsewhere.bin'}")
        pos.sign_out()
        with pytest.raises(SignInRequired):
            pos.set_printer(PRINTER)
    finally:
        pos.close()
