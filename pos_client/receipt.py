"""A sale's receipt as a value, and its plain-text form (what the app shows on screen).

:func:`build_receipt` reads everything from the device's own database, so a receipt can be
shown or printed again offline, after a restart, for any sale of the device: the sale record
(numbers, amount, payment, seller, its hash, which gives each ticket's verification code
:func:`sync_protocol.codes.ticket_code`), the raffle as the server last described it
(``RaffleInfo``: name, and the receipt members organisation, licence number, results URL,
claim-by time and ticket-check page, each optional) and the device (its id, venue).

What a receipt holds follows WAC 230-11-365 (raffle tickets): the organisation and its licence
number, the raffle, venue, device, seller, date and time, quantity and price, each ticket number
with its verification code, where the results are published, that the buyer need not be present
to win, and the date prizes must be claimed by; and, for each ticket, the ticket-check URL
(:func:`sync_protocol.codes.ticket_check_url`) that the printed QR code carries. A reprint is
marked ``COPY``. :mod:`pos_client.printing` turns the same value into ESC/POS.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from pos_client import wallet
from pos_client.errors import UnknownSale
from pos_client.store import Store
from sync_protocol.codes import ticket_check_url, ticket_codes
from sync_protocol.messages import SaleRecord, parse_record
from sync_protocol.money import format_money

#: printed on every receipt (WAC 230-11-365(1)(f))
NEED_NOT_BE_PRESENT = "You need not be present to win."
#: what a reprint says, at its top and bottom
COPY_MARK = "*** COPY ***"

__all__ = ["COPY_MARK", "NEED_NOT_BE_PRESENT", "Receipt", "ReceiptTicket", "build_receipt", "when_text"]


@dataclass(frozen=True)
class ReceiptTicket:
    """One ticket of the sale: its number, verification code and (when the server named its
    ticket-check page) the URL its QR code carries."""

    number: int
    code: str
    check_url: str | None


@dataclass(frozen=True)
class Receipt:
    """Everything a receipt prints, as values (times in ms since the epoch, money in minor units)."""

    sale_id: str
    seq: int
    raffle_id: str
    raffle_name: str
    organisation: str | None
    licence_number: str | None
    venue_id: str
    device_id: str
    device_name: str
    seller_id: str
    seller_name: str | None
    sold_at_ms: int
    quantity: int
    amount_cents: int
    currency: str
    payment: str
    payment_reference: str | None
    tickets: tuple[ReceiptTicket, ...]
    results_url: str | None
    claim_by_ms: int | None
    #: the venue's name (``RaffleInfo.venue_name``; None from a server that does not send it)
    venue_name: str | None = None
    #: a reprint: marked ``COPY``
    copy: bool = False
    #: the sale was voided since (a reprint says so)
    voided: bool = False

    @property
    def amount(self) -> str:
        """The price paid as people read it: ``20.00 EUR``."""
        return format_money(self.amount_cents, self.currency)

    @property
    def seller(self) -> str:
        """The seller as printed: the name from the roster, else the id (``-`` when none)."""
        if self.seller_name:
            return f"{self.seller_name} ({self.seller_id})"
        return self.seller_id or "-"

    def lines(self) -> list[tuple[str, str]]:
        """The receipt's body as ``(label, value)`` pairs, in printed order (header and tickets apart)."""
        rows = [
            ("Licence", self.licence_number or "-"),
            ("Raffle", self.raffle_name),
            ("Raffle id", self.raffle_id),
            ("Venue", f"{self.venue_name} ({self.venue_id})" if self.venue_name else self.venue_id),
            ("Device", self.device_id + (f" ({self.device_name})" if self.device_name else "")),
            ("Seller", self.seller),
            ("Date", when_text(self.sold_at_ms)),
            ("Sale", self.sale_id),
            ("Quantity", str(self.quantity)),
            ("Price", self.amount),
            ("Paid by", self.payment + (f" ref {self.payment_reference}" if self.payment_reference else "")),
        ]
        return rows

    def footer(self) -> list[str]:
        """The lines after the tickets: results, need-not-be-present, claim-by."""
        out = []
        if self.results_url:
            out.append(f"Results: {self.results_url}")
        out.append(NEED_NOT_BE_PRESENT)
        if self.claim_by_ms is not None:
            out.append(f"Claim prizes by {when_text(self.claim_by_ms)}")
        return out

    def text(self, width: int = 42) -> str:
        """The plain-text receipt (the app shows it on screen; ``width`` characters a line)."""
        out: list[str] = []
        if self.copy:
            out.append(COPY_MARK.center(width))
        if self.voided:
            out.append("*** VOIDED ***".center(width))
        out.append((self.organisation or "").center(width).rstrip())
        label = max(len(k) for k, _ in self.lines()) + 1
        out.extend(f"{k + ':':<{label}} {v}" for k, v in self.lines())
        out.append("-" * width)
        out.append(f"{'Ticket':<10} Code")
        out.extend(f"#{t.number:<9} {t.code}" for t in self.tickets)
        out.append("-" * width)
        out.extend(self.footer())
        if self.tickets and self.tickets[0].check_url:
            out.append("Check a ticket: scan its code, or visit")
            out.append(self.tickets[0].check_url.split("?", 1)[0])
        if self.copy:
            out.append(COPY_MARK.center(width))
        return "\n".join(line for line in out if line) + "\n"


def when_text(ms: int) -> str:
    """A time as a receipt prints it: the device's local time with its UTC offset,
    ``2026-11-25 19:42 +0000``."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone().strftime("%Y-%m-%d %H:%M %z")


def _seller_name(conn: sqlite3.Connection, seller_id: str) -> str | None:
    """The seller's name from the roster sync delivered (``None`` without one, or unknown)."""
    if not seller_id:
        return None
    try:
        row = conn.execute("SELECT name FROM sellers WHERE seller_id = ?", (seller_id,)).fetchone()
    except sqlite3.OperationalError:  # a database without the roster table
        return None
    return None if row is None else str(row[0])


def build_receipt(store: Store, sale_id: str, *, copy: bool = False) -> Receipt:
    """The receipt of sale ``sale_id`` of this device, from its own database (works offline).

    Raises:
        UnknownSale: this device made no sale ``sale_id`` (``sale_not_found``).
    """
    device = store.enrolled_device()
    state = store.device()
    with store.read() as conn:
        row = conn.execute("SELECT kind, voided_by, body FROM records WHERE sale_id = ?", (sale_id,)).fetchone()
        if row is None or row[0] != "sale":
            raise UnknownSale(f"this device made no sale {sale_id}", sale_id=sale_id)
        record = parse_record(orjson.loads(row[2]))
        assert isinstance(record, SaleRecord)
        raffle = wallet.raffle(conn, record.raffle_id)
        seller_name = _seller_name(conn, record.seller_id)
    check = raffle.check_url if raffle is not None else None
    codes = ticket_codes(record.raffle_id, record.numbers, record.hash)
    tickets = tuple(
        ReceiptTicket(number=n, code=c, check_url=ticket_check_url(check, record.raffle_id, n, c) if check else None)
        for n, c in zip(record.numbers, codes, strict=True)
    )
    return Receipt(
        sale_id=record.sale_id,
        seq=record.seq,
        raffle_id=record.raffle_id,
        raffle_name=raffle.name if raffle is not None else record.raffle_id,
        organisation=raffle.organisation if raffle is not None else None,
        licence_number=raffle.licence_number if raffle is not None else None,
        venue_id=device.venue_id,
        venue_name=raffle.venue_name if raffle is not None else None,
        device_id=device.device_id,
        device_name=state.device_name if state is not None else "",
        seller_id=record.seller_id,
        seller_name=seller_name,
        sold_at_ms=record.anchored_time_ms,
        quantity=len(record.numbers),
        amount_cents=record.amount_cents,
        currency=record.currency,
        payment=record.payment.method,
        payment_reference=record.payment.reference,
        tickets=tickets,
        results_url=raffle.results_url if raffle is not None else None,
        claim_by_ms=raffle.claim_by_ms if raffle is not None else None,
        copy=copy,
        voided=bool(row[1]),
    )
