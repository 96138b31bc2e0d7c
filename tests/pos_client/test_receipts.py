"""Issue 10, receipts: a receipt printed to a file printer holds every field WAC 230-11-365 lists,
each ticket's QR code (the printer's own ``GS ( k`` command) decodes back to its ticket-check
URL, a reprint says COPY, and a print failure blocks the next sale until the receipt is
reprinted or the sale voided."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import segno
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image
from pyzbar.pyzbar import decode

from pos_client import ManualClock, PosClient
from pos_client.cli import cli
from pos_client.errors import BadPrinter, PrinterFailed, PrinterNotSet, PrintFailed
from pos_client.printing import PrinterSpec
from pos_client.receipt import COPY_MARK, NEED_NOT_BE_PRESENT, when_text
from sync_protocol.codes import ticket_check_url
from sync_protocol.money import format_money
from tests.pos_client.conftest import reopen
from tests.pos_client.fake_server import HOUR_MS, FakeServer

CHECK = "https://tombola.example/check"
RESULTS = "https://charity.example/results"


@pytest.fixture
def receipted(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> PosClient:
    """An enrolled device whose raffle carries the receipt members (as the server sends them)."""
    raffle = server.raffles["R1"]
    server.update_raffle(
        "R1",
        organisation="Lions Club of Springfield",
        licence_number="RAF-2026-0042",
        results_url=RESULTS,
        claim_by_ms=raffle.sales_close_at_ms + 30 * 24 * HOUR_MS,
        check_url=CHECK,
    )
    enrolled.sync()
    return enrolled


def qr_payloads(data: bytes) -> list[str]:
    """The data of every native QR code (``GS ( k`` function 180: store the symbol data) in ``data``."""
    out, at = [], 0
    while (at := data.find(b"\x1d(k", at)) != -1:
        size = data[at + 3] + 256 * data[at + 4]
        if data[at + 5 : at + 8] == b"1P0":
            out.append(data[at + 8 : at + 5 + size].decode("ascii"))
        at += 5 + size
    return out


def decode_qr(payload: str) -> str:
    """Render ``payload`` as a QR image (what the printer prints) and read it back with zbar."""
    png = io.BytesIO()
    segno.make(payload, error="L", micro=False).save(png, kind="png", scale=4, border=4)
    png.seek(0)
    symbols = decode(Image.open(png))
    assert len(symbols) == 1
    return symbols[0].data.decode("ascii")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_printed_receipt_holds_every_field_and_its_qr_codes_decode_to_the_check_urls(
    receipted: PosClient, tmp_path: Path
) -> None:
    out = tmp_path / "receipt.bin"
    receipted.set_printer(f"file:{out}")
    sale = receipted.sell("R1", 3, payment="card", reference="TERM-77", seller_id="s-ann")
    outcome = receipted.print_receipt(sale.sale_id)
    assert (outcome.printed, outcome.copy) == (True, False)
    data = out.read_bytes()
    assert data.startswith(b"\x1b@")  # ESC @: the printer is initialised
    raffle = receipted.raffles()[0]
    device = receipted.store.enrolled_device()
    for field in (
        "Lions Club of Springfield",
        "RAF-2026-0042",
        raffle.name,
        device.venue_id,
        device.device_id,
        "s-ann",
        when_text(sale.anchored_time_ms),
        "Quantity: 3",
        format_money(sale.amount_cents, sale.currency),
        "card ref TERM-77",
        f"Results: {RESULTS}",
        NEED_NOT_BE_PRESENT,
        f"Claim prizes by {when_text(raffle.claim_by_ms or 0)}",
    ):
        assert field.encode() in data, field
    for number, code in zip(sale.numbers, sale.codes, strict=True):
        assert f"#{number}  {code}".encode() in data
    assert COPY_MARK.encode() not in data
    expected = [ticket_check_url(CHECK, "R1", n, c) for n, c in zip(sale.numbers, sale.codes, strict=True)]
    payloads = qr_payloads(data)
    assert payloads == expected
    assert [decode_qr(p) for p in payloads] == expected
    assert expected[0] == f"{CHECK}?raffle=R1&number={sale.numbers[0]}&code={sale.codes[0]}"

    # the same receipt on screen
    text = receipted.receipt(sale.sale_id).text()
    assert "RAF-2026-0042" in text and sale.codes[0] in text and NEED_NOT_BE_PRESENT in text


def test_a_reprint_is_marked_copy(receipted: PosClient, tmp_path: Path) -> None:
    out = tmp_path / "receipt.bin"
    receipted.set_printer(f"file:{out}")
    sale = receipted.sell("R1", 1)
    receipted.print_receipt(sale.sale_id)
    assert COPY_MARK.encode() not in out.read_bytes()
    again = receipted.print_receipt(sale.sale_id)  # a second print of a printed receipt: COPY unasked
    assert again.copy and out.read_bytes().count(COPY_MARK.encode()) == 2  # at its top and its bottom
    assert receipted.receipt(sale.sale_id).copy
    assert COPY_MARK in receipted.receipt(sale.sale_id).text()


def test_a_receipt_without_the_servers_receipt_members_still_prints(enrolled: PosClient, tmp_path: Path) -> None:
    """An older server sends none of the optional members: no QR code, no results line, the rest prints."""
    out = tmp_path / "receipt.bin"
    enrolled.set_printer(f"file:{out}")
    sale = enrolled.sell("R1", 1)
    enrolled.print_receipt(sale.sale_id)
    data = out.read_bytes()
    assert qr_payloads(data) == [] and b"Results:" not in data
    assert NEED_NOT_BE_PRESENT.encode() in data and sale.codes[0].encode() in data


@pytest.mark.parametrize("kind", ["network", "file"])
def test_a_print_failure_blocks_the_next_sale_until_the_receipt_is_reprinted(
    receipted: PosClient, tmp_path: Path, kind: str, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    bad = f"network:127.0.0.1:{closed_port()}" if kind == "network" else f"file:{tmp_path / 'no-such-dir' / 'r.bin'}"
    receipted.set_printer(bad)
    sale = receipted.sell("R1", 1)
    with pytest.raises(PrintFailed) as failed:
        receipted.print_receipt(sale.sale_id)
    assert failed.value.code == "print_failed"
    events = receipted.events(type="printer.error")
    assert [e.detail["sale_id"] for e in events] == [sale.sale_id]

    with pytest.raises(PrinterFailed) as refused:
        receipted.sell("R1", 1)
    assert refused.value.code == "printer_failed" and refused.value.extra["sale_id"] == sale.sale_id
    assert "reprint" in refused.value.detail and "void" in refused.value.detail
    assert receipted.printer_blocked() is not None

    # the block survives a restart (recorded durably)
    pos = reopen(receipted, db_path, clock, http)
    try:
        with pytest.raises(PrinterFailed):
            pos.sell("R1", 1)
        out = tmp_path / "fixed.bin"
        pos.set_printer(f"file:{out}")
        assert not pos.print_receipt(sale.sale_id).copy  # the first receipt that printed: no COPY
        assert pos.printer_blocked() is None
        assert pos.sell("R1", 2).numbers
    finally:
        pos.close()


def test_a_void_of_the_sale_lifts_the_block(receipted: PosClient, tmp_path: Path) -> None:
    receipted.set_printer(f"network:127.0.0.1:{closed_port()}")
    sale = receipted.sell("R1", 1)
    with pytest.raises(PrintFailed):
        receipted.print_receipt(sale.sale_id)
    with pytest.raises(PrinterFailed):
        receipted.sell("R1", 1)
    receipted.void(sale.sale_id, "receipt would not print")
    assert receipted.printer_blocked() is None
    receipted.set_printer(f"file:{tmp_path / 'r.bin'}")
    receipted.sell("R1", 1)


def test_printing_without_a_printer_is_refused_and_records_nothing(receipted: PosClient) -> None:
    sale = receipted.sell("R1", 1)
    with pytest.raises(PrinterNotSet):
        receipted.print_receipt(sale.sale_id)
    assert receipted.printer_blocked() is None
    receipted.sell("R1", 1)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("file:/dev/usb/lp0", "file:/dev/usb/lp0"),
        ("network:192.168.1.50", "network:192.168.1.50:9100"),
        ("network:printer.local:9101", "network:printer.local:9101"),
        ("network:[fe80::1]:9100", "network:[fe80::1]:9100"),
        ("usb:04B8:202", "usb:04b8:0202"),
        ("usb:0x04b8:0x0e15", "usb:04b8:0e15"),
        ("serial:/dev/rfcomm0", "serial:/dev/rfcomm0"),
    ],
)
def test_printer_settings_parse_and_normalise(text: str, normal: str) -> None:
    assert str(PrinterSpec.parse(text)) == normal
    assert str(PrinterSpec.parse(normal)) == normal


@pytest.mark.parametrize(
    "text", ["", "lp0", "bluetooth:AA:BB", "file:", "network:host:70000", "network:a b", "usb:xyz:1", "usb:1"]
)
def test_a_bad_printer_setting_is_refused(receipted: PosClient, text: str) -> None:
    with pytest.raises(BadPrinter) as refused:
        receipted.set_printer(text)
    assert refused.value.code == "bad_printer"
    assert receipted.printer() is None


def test_cli_printer_set_show_receipt_and_sell_prints(
    receipted: PosClient, tmp_path: Path, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    runner = CliRunner()
    obj = {"db": str(db_path), "client": receipted}
    out = tmp_path / "cli.bin"
    done = runner.invoke(cli, ["printer", "set", f"file:{out}"], obj=obj)
    assert done.exit_code == 0 and f"printer: file:{out}" in done.output
    sold = runner.invoke(cli, ["sell", "--raffle", "R1", "--quantity", "1", "--json"], obj=obj)
    assert sold.exit_code == 0, sold.output
    assert '"printed": true' in sold.output and b"RAF-2026-0042" in out.read_bytes()
    sale_id = next(r.sale_id for r in receipted.records())
    reprint = runner.invoke(cli, ["receipt", sale_id, "--copy"], obj=obj)
    assert reprint.exit_code == 0 and "(COPY)" in reprint.output and COPY_MARK.encode() in out.read_bytes()

    runner.invoke(cli, ["printer", "set", f"network:127.0.0.1:{closed_port()}"], obj=obj)
    failed = runner.invoke(cli, ["sell", "--raffle", "R1", "--quantity", "1"], obj=obj)
    assert failed.exit_code == 1 and "print_failed:" in failed.output and "receipt NOT printed" in failed.output
    shown = runner.invoke(cli, ["printer", "show"], obj=obj)
    assert "selling blocked" in shown.output
    refused = runner.invoke(cli, ["sell", "--raffle", "R1", "--quantity", "1"], obj=obj)
    assert refused.exit_code == 1 and "printer_failed:" in refused.output
    text = runner.invoke(cli, ["receipt", sale_id, "--text"], obj=obj)
    assert text.exit_code == 0 and NEED_NOT_BE_PRESENT in text.output
