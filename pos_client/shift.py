"""End of shift: what the device and each seller sold, voided and took, from the device's own records.

:func:`build_report` reads every sale and void record of the device (offline) and counts those
whose anchored time (``anchor_ms + elapsed_ms``, the server's clock) is at or after ``since_ms``:

- **sales**: count and amount of the sales in the window (a sale voided later still counts here;
  its void counts under voids), by payment method;
- **voids**: count and amount of the voids in the window: a void's amount and method are those
  of the sale it voids (which may be older than the window: the cash goes back now);
- **cash expected** (device): ``opening float + cash sales - cash voids``; a seller's ``cash``
  is their ``cash sales - cash voids`` (the float belongs to the device's drawer);
- **card total**: ``card sales - card voids``;
- **unsynced**: records in the window the server has not acknowledged yet;
- **rejected**: sales in the window the server rejected (the money was taken: refund them).

A sale is counted for the seller it records, a void for the seller who made the void. Sellers
are named from the roster sync delivered (the id when unknown; ``-`` for no seller). Amounts are
in one currency: a window holding sales in several is refused (``bad_input``), and the caller
picks one with ``currency``.

**The shift** itself is a device setting (``settings`` key ``shift``: the opening float and its
start time), written by :func:`start_shift`, so the report's defaults survive a restart.
:func:`render` turns the report into ESC/POS for the receipt printer (:mod:`pos_client.printing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from pos_client import receipt as _receipt
from pos_client.errors import BadInput
from pos_client.store import Store
from sync_protocol.bounds import SAFE_INT_MAX
from sync_protocol.messages import SaleRecord, VoidRecord, parse_record
from sync_protocol.money import format_money

#: the ``settings`` key of the current shift
SHIFT_KEY = "shift"
#: characters per printed line (80 mm, font A)
LINE_WIDTH = 42

__all__ = ["Shift", "ShiftReport", "ShiftTotals", "build_report", "current_shift", "render", "start_shift"]


@dataclass(frozen=True)
class Shift:
    """A started shift: the cash in the drawer at its start, and when it started (ms, server clock)."""

    opening_float_cents: int
    started_at_ms: int


def _check_float(cents: int) -> int:
    if type(cents) is not int or not 0 <= cents <= SAFE_INT_MAX:
        raise BadInput("the opening float is a whole number of cents, 0 or more")
    return cents


def start_shift(store: Store, opening_float_cents: int, started_at_ms: int) -> Shift:
    """Start a shift with ``opening_float_cents`` in the drawer; durable on return (replaces the last)."""
    shift = Shift(_check_float(opening_float_cents), started_at_ms)
    with store.write() as conn:
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (SHIFT_KEY, orjson.dumps(asdict(shift)).decode()),
        )
    return shift


def current_shift(store: Store) -> Shift | None:
    """The shift started last on this device, ``None`` when none was."""
    with store.read() as conn:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (SHIFT_KEY,)).fetchone()
    if row is None:
        return None
    data = orjson.loads(row[0])
    return Shift(int(data["opening_float_cents"]), int(data["started_at_ms"]))


@dataclass
class ShiftTotals:
    """One seller's (or the whole device's) figures over the window, money in minor units."""

    who: str
    name: str
    sales: int = 0
    sales_cents: int = 0
    voids: int = 0
    voids_cents: int = 0
    cash_sales_cents: int = 0
    cash_voids_cents: int = 0
    card_sales_cents: int = 0
    card_voids_cents: int = 0
    unsynced: int = 0
    rejected: int = 0

    @property
    def cash_cents(self) -> int:
        """Cash taken: cash sales minus cash voids."""
        return self.cash_sales_cents - self.cash_voids_cents

    @property
    def card_total_cents(self) -> int:
        """Card sales minus card voids."""
        return self.card_sales_cents - self.card_voids_cents

    @property
    def net_cents(self) -> int:
        return self.sales_cents - self.voids_cents

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "cash_cents": self.cash_cents,
            "card_total_cents": self.card_total_cents,
            "net_cents": self.net_cents,
        }


@dataclass(frozen=True)
class ShiftReport:
    """The end-of-shift report of one device (see the module docstring for each figure)."""

    device_id: str
    venue_id: str
    currency: str
    since_ms: int
    until_ms: int
    opening_float_cents: int
    device: ShiftTotals
    sellers: tuple[ShiftTotals, ...] = field(default_factory=tuple)

    @property
    def cash_expected_cents(self) -> int:
        """What the drawer should hold: the opening float plus cash sales minus cash voids."""
        return self.opening_float_cents + self.device.cash_cents

    def money(self, cents: int) -> str:
        return format_money(cents, self.currency) if self.currency else str(cents)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "venue_id": self.venue_id,
            "currency": self.currency,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "opening_float_cents": self.opening_float_cents,
            "cash_expected_cents": self.cash_expected_cents,
            "device": self.device.to_dict(),
            "sellers": [s.to_dict() for s in self.sellers],
        }

    def _block(self, totals: ShiftTotals, *, device: bool) -> list[tuple[str, str]]:
        rows = [
            ("Sales", f"{totals.sales}  {self.money(totals.sales_cents)}"),
            ("Voids", f"{totals.voids}  {self.money(totals.voids_cents)}"),
            ("Net", self.money(totals.net_cents)),
        ]
        if device:
            rows.append(("Opening float", self.money(self.opening_float_cents)))
            rows.append(("Cash expected", self.money(self.cash_expected_cents)))
        else:
            rows.append(("Cash taken", self.money(totals.cash_cents)))
        rows.append(("Card total", self.money(totals.card_total_cents)))
        rows.append(("Unsynced", str(totals.unsynced)))
        if totals.rejected:
            rows.append(("Rejected (refund)", str(totals.rejected)))
        return rows

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The report as titled blocks of ``(label, value)`` rows: the device first, then each seller."""
        out = [(f"Device {self.device_id}", self._block(self.device, device=True))]
        for seller in self.sellers:
            title = f"Seller {seller.name}" + (f" ({seller.who})" if seller.who and seller.who != seller.name else "")
            out.append((title, self._block(seller, device=False)))
        return out

    def text(self, width: int = LINE_WIDTH) -> str:
        """The plain-text report (the app shows it; ``tombola-pos shift`` prints it)."""
        lines = ["END OF SHIFT".center(width).rstrip()]
        lines.append(f"Venue {self.venue_id}")
        lines.append(f"From  {_receipt.when_text(self.since_ms)}" if self.since_ms else "From  the first sale")
        lines.append(f"To    {_receipt.when_text(self.until_ms)}")
        for title, rows in self.sections():
            lines.append("-" * width)
            lines.append(title)
            label = max(len(k) for k, _ in rows) + 1
            lines.extend(f"  {k + ':':<{label}} {v}" for k, v in rows)
        lines.append("-" * width)
        return "\n".join(lines) + "\n"


def _seller_names(store: Store) -> dict[str, str]:
    with store.read() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute("SELECT seller_id, name FROM sellers")}


def build_report(
    store: Store,
    records: Iterable[tuple[SaleRecord | VoidRecord, bool, bool]],
    *,
    opening_float_cents: int,
    since_ms: int,
    until_ms: int,
    currency: str | None = None,
) -> ShiftReport:
    """The report over ``records`` (each with whether the server acknowledged it and rejected it).

    Raises:
        BadInput: a negative float or window start, or sales in several currencies and no ``currency``.
    """
    _check_float(opening_float_cents)
    if type(since_ms) is not int or since_ms < 0:
        raise BadInput("a shift starts at a time, in ms since the epoch, 0 or more")
    device = store.enrolled_device()
    names = _seller_names(store)
    sales: dict[str, SaleRecord] = {}
    window: list[tuple[SaleRecord | VoidRecord, bool, bool]] = []
    for record, acked, rejected in records:
        if isinstance(record, SaleRecord):
            sales[record.sale_id] = record
        if record.anchored_time_ms >= since_ms:
            window.append((record, acked, rejected))
    currencies: set[str] = set()
    for record, _acked, _rejected in window:
        sale = _sale_of(record, sales)
        if sale is not None:
            currencies.add(sale.currency)
    if currency is None:
        if len(currencies) > 1:
            shown = ", ".join(sorted(currencies))
            raise BadInput(f"this shift sold in {shown}: ask for one currency's report at a time")
        currency = currencies.pop() if currencies else _first_raffle_currency(store)
    total = ShiftTotals(who=device.device_id, name=device.device_id)
    by_seller: dict[str, ShiftTotals] = {}
    for record, acked, rejected in window:
        sale = _sale_of(record, sales)
        if sale is None or sale.currency != currency:
            continue
        seller = by_seller.setdefault(
            record.seller_id,
            ShiftTotals(who=record.seller_id, name=names.get(record.seller_id, record.seller_id or "-")),
        )
        for totals in (total, seller):
            _count(totals, record, sale, acked=acked, rejected=rejected)
    return ShiftReport(
        device_id=device.device_id,
        venue_id=device.venue_id,
        currency=currency,
        since_ms=since_ms,
        until_ms=until_ms,
        opening_float_cents=opening_float_cents,
        device=total,
        sellers=tuple(sorted(by_seller.values(), key=lambda t: (t.name, t.who))),
    )


def _first_raffle_currency(store: Store) -> str:
    """A shift without sales is in the currency of the device's raffles (``""`` without any)."""
    with store.read() as conn:
        row = conn.execute("SELECT currency FROM raffles ORDER BY sales_close_at_ms DESC LIMIT 1").fetchone()
    return str(row[0]) if row else ""


def device_records(store: Store, chunk: int = 500) -> Iterator[tuple[SaleRecord | VoidRecord, bool, bool]]:
    """Every record of the device in ``seq`` order, with whether the server acknowledged it and
    whether it rejected it; read in chunks, each in its own short read."""
    last = 0
    while True:
        acked = store.enrolled_device().acked_seq
        with store.read() as conn:
            rows = conn.execute(
                "SELECT seq, body, rejected_code FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, chunk)
            ).fetchall()
        if not rows:
            return
        for seq, body, rejected in rows:
            yield parse_record(orjson.loads(body)), int(seq) <= acked, bool(rejected)
        last = int(rows[-1][0])


def _sale_of(record: SaleRecord | VoidRecord, sales: dict[str, SaleRecord]) -> SaleRecord | None:
    """The sale a record is about: itself, or the sale a void voids (``None`` when not on the device)."""
    return record if isinstance(record, SaleRecord) else sales.get(record.voids)


def _count(
    totals: ShiftTotals, record: SaleRecord | VoidRecord, sale: SaleRecord, *, acked: bool, rejected: bool
) -> None:
    cash = sale.payment.method == "cash"
    if isinstance(record, SaleRecord):
        totals.sales += 1
        totals.sales_cents += sale.amount_cents
        if cash:
            totals.cash_sales_cents += sale.amount_cents
        else:
            totals.card_sales_cents += sale.amount_cents
        totals.rejected += int(rejected)
    else:
        totals.voids += 1
        totals.voids_cents += sale.amount_cents
        if cash:
            totals.cash_voids_cents += sale.amount_cents
        else:
            totals.card_voids_cents += sale.amount_cents
    totals.unsynced += int(not acked)


# --------------------------------------------------------------------------- ESC/POS


def render(report: ShiftReport) -> bytes:
    """The report as ESC/POS bytes (no I/O), for :func:`pos_client.printing.send`."""
    from escpos import printer

    p = printer.Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.textln("END OF SHIFT")
    p.set(align="left", bold=False, normal_textsize=True)
    text = report.text(LINE_WIDTH).splitlines()[1:]  # the title is printed large above
    for line in text:
        is_title = line.startswith(("Device ", "Seller "))
        p.set(align="left", bold=is_title, normal_textsize=True)
        p.textln(line)
    p.set(align="left", bold=False, normal_textsize=True)
    p.textln("")
    p.textln("Counted cash: ______________")
    p.textln("Signature:    ______________")
    p.cut()
    return bytes(p.output)
