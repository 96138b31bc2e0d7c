"""View-models of the POS app: Kivy ``EventDispatcher`` objects over :class:`~pos_client.PosClient`.

The screens (``pos_client/app/kv/*.kv``) only bind to these properties and call these methods;
everything here runs without a window, so plain pytest tests it. Nothing here decides a rule:
the price is :func:`sync_protocol.rules.sale_amount`, a sale is :meth:`PosClient.sell` (which
refuses what the server would refuse), the lease and alerts are :meth:`PosClient.status`.

Threads: the UI thread calls every method of :class:`PosViewModel`. Network work (enrollment,
sync) runs on worker threads with a :class:`PosClient` of their own, and hands its result back
through ``post``, which the app sets to ``Clock.schedule_once`` so properties only ever change
on the UI thread (tests pass a function that runs the callback at once or queues it).

Seams to the other parts of the SDK, used when present (``getattr``): ``PosClient.record_event``
(device events), ``PosClient.print_receipt`` and ``PosClient.printer_blocked`` (receipts),
``RaffleInfo.offline_sales`` (a raffle that may not be sold offline).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import (
    BooleanProperty,
    DictProperty,
    ListProperty,
    NumericProperty,
    OptionProperty,
    StringProperty,
)

from pos_client.client import PosClient
from pos_client.clock import Clock
from pos_client.errors import NetworkError
from pos_client.status import Status
from pos_client.transport import RetryPolicy
from sync_protocol.codes import ticket_codes
from sync_protocol.enrollment_link import EnrollmentLink, parse_enrollment_link
from sync_protocol.errors import TombolaError
from sync_protocol.messages import RaffleInfo, SaleRecord
from sync_protocol.money import MINOR_UNITS, format_money
from sync_protocol.rules import RaffleTerms, sale_amount

Callback = Callable[[], None]
Post = Callable[[Callback], None]

#: the numbers-left warning: 80 % of the granted numbers used (as ``pos_client.status`` alerts)
WARN_USED_FRACTION = (4, 5)
#: a background sync every this many seconds (and at once after each sale)
DEFAULT_SYNC_INTERVAL_S = 15.0
#: stepper bounds for singles
MAX_SINGLES = 100


def run_now(callback: Callback) -> None:
    """A ``post`` that runs the callback at once (tests without a window)."""
    callback()


def duration_text(seconds: int) -> str:
    """``2h05m``, ``4m10s``, ``0s``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def clock_text(ms: int | None) -> str:
    """A local time of day (and date when not today) for people, ``never`` for ``None``."""
    if ms is None:
        return "never"
    when = datetime.fromtimestamp(ms / 1000).astimezone()
    if when.date() == datetime.now().astimezone().date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


def parse_money(text: str, currency: str) -> int | None:
    """``"20"``, ``"20.5"``, ``"20,50"`` in ``currency``'s minor units; ``None`` when not an amount."""
    digits = MINOR_UNITS.get(currency, 2)
    cleaned = text.strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    minor = value * (10**digits)
    if value < 0 or minor != minor.to_integral_value():
        return None
    return int(minor)


def is_selling(info: RaffleInfo, server_now_ms: int) -> bool:
    """Whether a raffle is on sale now (not cancelled, inside its sales window)."""
    return info.status != "cancelled" and info.sales_open_at_ms <= server_now_ms < info.sales_close_at_ms


@dataclass(frozen=True)
class Receipt:
    """What the receipt screen shows of one sale."""

    sale_id: str
    raffle_id: str
    raffle_name: str
    numbers: list[int]
    codes: list[str]
    amount: str
    payment: str
    reference: str | None
    change_due: str
    at_ms: int
    copy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sale_id": self.sale_id,
            "raffle_id": self.raffle_id,
            "raffle_name": self.raffle_name,
            "numbers": list(self.numbers),
            "codes": list(self.codes),
            "amount": self.amount,
            "payment": self.payment,
            "reference": self.reference,
            "change_due": self.change_due,
            "at_ms": self.at_ms,
            "copy": self.copy,
        }


def block_reason(
    status: Status,
    raffle: RaffleInfo | None,
    *,
    online: bool | None,
    printer_blocked: bool = False,
    signed_in: bool = True,
) -> str:
    """Why selling ``raffle`` is blocked now, as a sentence that says what to do; ``""`` when it is not.

    The order is the order a seller can act on: device, lease, seller, printer, raffle, numbers.
    ``online`` is ``None`` while the server's state is not known yet (no sync has answered since
    the app started): that does not block a raffle sold only online (the SDK still judges the sale).
    """
    if status.device_status == "not_enrolled":
        return "This device is not enrolled: enter the server address and enrollment code on the setup screen."
    if status.device_status == "revoked":
        return "The server revoked this device: it may not sell. Call your supervisor."
    if status.lease_left_s is not None and status.lease_left_s <= 0:
        return "The offline lease ran out: connect this device to the network so it syncs, then sell again."
    if not signed_in:
        return "No seller is signed in: tap Sign in, tap your name and type your PIN, then sell."
    if printer_blocked:
        return "The printer failed: reprint the last receipt (or void that sale), then sell again."
    if raffle is None:
        return "No raffle is on sale on this device: connect so it syncs, or ask your supervisor."
    now = status.server_time_ms or 0
    if raffle.status == "cancelled":
        return f"{raffle.name} was cancelled: do not sell; ask your supervisor."
    if now >= raffle.sales_close_at_ms:
        return f"Sales for {raffle.name} closed at {clock_text(raffle.sales_close_at_ms)}: no more tickets for it."
    if now < raffle.sales_open_at_ms:
        return f"Sales for {raffle.name} open at {clock_text(raffle.sales_open_at_ms)}: wait until then."
    if getattr(raffle, "offline_sales", None) is False and online is False:
        return f"{raffle.name} may only be sold while the server is reachable: reconnect, then sell."
    left = next((r.numbers_left for r in status.raffles if r.raffle_id == raffle.raffle_id), 0)
    if left <= 0:
        return f"No numbers left on this device for {raffle.name}: connect so it syncs for more."
    return ""


#: selling waits while the receipt of the last sale prints (its outcome may block selling)
PRINTING_SENTENCE = "The receipt is printing: wait a moment, then sell."
#: what a volunteer reads when a receipt did not print
PRINT_FAILED_SENTENCE = (
    "The receipt did not print: check the printer is on, has paper and is connected, then tap Reprint. "
    "Selling is blocked until this receipt prints or the sale is voided."
)
#: ... when the printer is of a kind this device cannot reach (a Bluetooth printer without Bluetooth)
PRINTER_UNSUPPORTED_SENTENCE = (
    "This device cannot reach that printer: choose another one in Setup > Printer, then tap Reprint. "
    "Selling is blocked until this receipt prints or the sale is voided."
)


def print_failure_text(error: Exception) -> tuple[str, str]:
    """``(sentence, detail)`` for a print that failed: what to do, and the technical detail (small)."""
    if isinstance(error, TombolaError):
        detail = f"{error.detail} ({error.code})"
        if error.code == "printer_not_set":
            return "No printer is set up on this device.", detail
        if error.code == "print_failed":
            return PRINT_FAILED_SENTENCE, detail
        if error.code == "printer_unsupported":
            return PRINTER_UNSUPPORTED_SENTENCE, detail
        return f"The receipt did not print: {error.detail}", detail
    return "The receipt did not print: tap Reprint to try again.", f"{type(error).__name__}: {error}"


def record_event(client: PosClient, kind: str, detail: dict[str, Any] | None = None) -> None:
    """``PosClient.record_event`` when the SDK has it (device events); never fails the caller's action."""
    record = getattr(client, "record_event", None)
    if record is None:
        return
    with contextlib.suppress(TombolaError):
        record(kind, detail)


class PosViewModel(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """The device as the screens see it: enrollment, status bar, the sale being made, the receipt.

    Args:
        db_path: the device database.
        post: runs a callback on the UI thread (``Clock.schedule_once`` in the app).
        clock: the device's time source (:class:`~pos_client.clock.SystemClock` by default).
        client: the UI thread's :class:`PosClient` (made from ``db_path`` by default).
        worker_client: factory of the :class:`PosClient` worker threads use (one short retry,
            so an offline device learns it in seconds).
    """

    # ---- device and status bar
    enrolled = BooleanProperty(False)
    device_id = StringProperty("")
    venue_id = StringProperty("")
    server_url = StringProperty("")
    online = BooleanProperty(False)
    checking = BooleanProperty(True)  # no sync has answered since start: online or not is unknown
    syncing = BooleanProperty(False)
    pending = NumericProperty(0)
    last_sync = StringProperty("never")
    lease = StringProperty("")
    numbers = StringProperty("")
    numbers_warning = BooleanProperty(False)
    closes = StringProperty("")
    block = StringProperty("")
    alerts = ListProperty([])
    # ---- the signed-in seller (pos_client.app.seller_viewmodels has the sign-in and void screens)
    needs_seller = BooleanProperty(False)  # the client sells only for a signed-in seller (the app's does)
    signed_in = BooleanProperty(False)
    seller_name = StringProperty("")
    # ---- setup
    setup_message = StringProperty("")
    # the setup form (typed, or filled by a scanned enrollment link: docs/sync-protocol.md 8.1)
    setup_server_url = StringProperty("")
    setup_code = StringProperty("")
    setup_server_key = StringProperty("")  # the grant key a scanned link pins ("" = none)
    busy = BooleanProperty(False)
    setup_summary = ListProperty([])
    # ---- sell
    raffles = ListProperty([])  # [{"raffle_id", "name", "selling"}]
    raffle_id = StringProperty("")
    raffle_name = StringProperty("")
    currency = StringProperty("")
    price_points = ListProperty([])  # [{"quantity", "amount_cents", "label"}]
    singles_allowed = BooleanProperty(True)
    single_qty = NumericProperty(1)
    single_price = StringProperty("")
    quantity = NumericProperty(0)  # what the seller picked, 0 = nothing yet
    amount_cents = NumericProperty(0)
    amount = StringProperty("")
    payment = OptionProperty("cash", options=["cash", "card"])
    tendered = StringProperty("")
    change_due = StringProperty("")
    reference = StringProperty("")
    error = StringProperty("")
    # ---- receipt
    receipt = DictProperty({})
    can_print = BooleanProperty(False)
    print_message = StringProperty("")  # a sentence a volunteer can act on
    print_detail = StringProperty("")  # the technical detail, small, under it
    print_failed = BooleanProperty(False)
    printing = BooleanProperty(False)  # a print runs on a worker thread

    def __init__(
        self,
        db_path: str | Path,
        *,
        post: Post = run_now,
        clock: Clock | None = None,
        client: PosClient | None = None,
        worker_client: Callable[[], PosClient] | None = None,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db_path = Path(db_path)
        self.post = post
        self.clock = clock
        # The app's policy: a seller signs in to sell or void, and a void needs a supervisor's PIN.
        self.client = client or PosClient(self.db_path, clock=clock, require_seller=True, void_needs_supervisor=True)
        self._worker_client = worker_client or self._default_worker_client
        self.sync_interval_s = sync_interval_s
        self._infos: dict[str, RaffleInfo] = {}
        self._status: Status | None = None
        self._sync_wake = threading.Event()
        self._stopping = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.can_print = hasattr(self.client, "print_receipt")
        self.bind(tendered=self._update_change, amount_cents=self._update_change, payment=self._update_change)
        self.bind(single_qty=self._update_single_price)
        self.refresh()

    def _default_worker_client(self) -> PosClient:
        return PosClient(self.db_path, clock=self.clock, retry=RetryPolicy(attempts=1), timeout_s=5.0)

    # ------------------------------------------------------------------ status

    def refresh(self) -> None:
        """Read the device's status and raffles again (cheap: a few SQLite reads)."""
        status = self.client.status()
        self._status = status
        self.enrolled = status.device_status != "not_enrolled"
        self.device_id = status.device_id or ""
        self.venue_id = status.venue_id or ""
        self.server_url = status.server_url or ""
        self.pending = status.pending
        self.last_sync = clock_text(status.last_sync_ms)
        self.lease = "" if status.lease_left_s is None else duration_text(status.lease_left_s)
        self.alerts = list(status.alerts)
        seller = self.client.current_seller()  # None once the 5-minute idle lock fell
        self.needs_seller = self.client.require_seller
        self.signed_in = seller is not None
        self.seller_name = seller.name if seller else ""
        self._infos = {info.raffle_id: info for info in self.client.raffles()} if self.enrolled else {}
        now = status.server_time_ms or 0
        shown = [info for info in self._infos.values() if info.status != "cancelled"]
        shown.sort(key=lambda i: (not is_selling(i, now), i.sales_close_at_ms, i.name))
        self.raffles = [{"raffle_id": i.raffle_id, "name": i.name, "selling": is_selling(i, now)} for i in shown]
        if self.raffle_id not in self._infos and shown:
            self.select_raffle(shown[0].raffle_id)
        else:
            self._update_raffle_facts()

    def _update_raffle_facts(self) -> None:
        status = self._status
        info = self._infos.get(self.raffle_id)
        if status is None:
            return
        if info is None:
            self.numbers = ""
            self.numbers_warning = False
            self.closes = ""
        else:
            counts = next((r for r in status.raffles if r.raffle_id == info.raffle_id), None)
            granted = counts.numbers_granted if counts else 0
            used = counts.numbers_used if counts else 0
            left = counts.numbers_left if counts else 0
            self.numbers = f"{left} of {granted} numbers left"
            num, den = WARN_USED_FRACTION
            self.numbers_warning = bool(granted) and used * den >= granted * num
            close_in_s = (info.sales_close_at_ms - (status.server_time_ms or 0)) // 1000
            self.closes = f"closes in {duration_text(close_in_s)}" if close_in_s > 0 else "sales closed"
        self.block = block_reason(
            status,
            info,
            online=None if self.checking else self.online,
            printer_blocked=self.printer_blocked(),
            signed_in=self.signed_in or not self.needs_seller,
        ) or (PRINTING_SENTENCE if self.printing else "")

    def note_activity(self) -> None:
        """A touch or a key: the idle lock counts from now (:meth:`PosClient.note_activity`)."""
        self.client.note_activity()

    def sign_out(self) -> None:
        """Sign the seller out; the app shows the sign-in screen (nothing typed so far is lost)."""
        self.client.sign_out()
        self.refresh()

    def printer_blocked(self) -> bool:
        blocked = getattr(self.client, "printer_blocked", None)
        return bool(blocked()) if blocked is not None else False

    def printer_set(self) -> bool:
        """Whether the device has a printer (``PosClient.printer``)."""
        printer = getattr(self.client, "printer", None)
        return printer is not None and printer() is not None

    # ------------------------------------------------------------------ setup

    def use_enrollment_link(self, link: EnrollmentLink) -> None:
        """Fill the setup form from an enrollment link (scanned, or typed into the code field)."""
        self.setup_server_url, self.setup_code = link.server_url, link.code
        self.setup_server_key = link.server_key or ""
        self.setup_message = "Scanned the enrollment code: check the server address, then tap Enroll this device."

    def enroll(self, server_url: str, code: str) -> None:
        """Enroll in a worker thread; ``setup_message`` and ``enrolled`` change on the UI thread after.

        ``code`` may be a whole enrollment link (a handheld scanner types it into the code field):
        its server address, code and pinned key are used. A key from a scanned link
        (``setup_server_key``) is pinned as ``tombola-pos enroll --server-key`` pins it.
        """
        server_url, code = server_url.strip(), code.strip()
        if "://" in code:
            try:
                link = parse_enrollment_link(code)
            except TombolaError as exc:
                self.setup_message = f"That is not an enrollment code: {exc.detail} ({exc.code})"
                return
            self.use_enrollment_link(link)
            server_url, code = link.server_url, link.code
        server_key = self.setup_server_key or None
        if not server_url or not code:
            self.setup_message = "Enter the server address and the enrollment code."
            return
        self.busy = True
        self.setup_message = "Enrolling..."

        def work() -> None:
            client = self._worker_client()
            try:
                result = client.enroll(code, server_url, server_key=server_key)
                outcome: Callback = lambda: self._enrolled(result.venue_id, None)  # noqa: E731
            except TombolaError as exc:
                failure = exc
                outcome = lambda: self._enrolled("", failure)  # noqa: E731
            finally:
                client.close()
            self.post(outcome)

        threading.Thread(target=work, name="pos-enroll", daemon=True).start()

    def _enrolled(self, venue_id: str, error: TombolaError | None) -> None:
        self.busy = False
        if error is not None:
            self.setup_message = f"Enrollment failed: {error.detail} ({error.code})"
            return
        self.online = True
        self.checking = False
        self.refresh()
        status = self._status
        lines = [f"Venue {venue_id}"]
        for raffle in status.raffles if status else []:
            lines.append(f"{raffle.name}: {raffle.numbers_granted} numbers granted")
        self.setup_summary = lines
        self.setup_message = f"Enrolled as device {self.device_id}."
        self.start_sync()

    # ------------------------------------------------------------------ sell

    def select_raffle(self, raffle_id: str) -> None:
        info = self._infos.get(raffle_id)
        if info is None:
            return
        self.raffle_id = raffle_id
        self.raffle_name = info.name
        self.currency = info.currency
        terms = RaffleTerms.of(info)
        self.price_points = [
            {
                "quantity": q,
                "amount_cents": terms.prices[q],
                "label": f"{q} for {format_money(terms.prices[q], info.currency)}",
            }
            for q in terms.quantities
        ]
        self.singles_allowed = sale_amount(terms, 2) is not None or 1 in terms.prices
        self.clear_sale()
        self._update_single_price()
        self._update_raffle_facts()

    def _terms(self) -> RaffleTerms | None:
        info = self._infos.get(self.raffle_id)
        return RaffleTerms.of(info) if info else None

    def _update_single_price(self, *_: Any) -> None:
        terms = self._terms()
        amount = sale_amount(terms, int(self.single_qty)) if terms else None
        self.single_price = "" if amount is None else format_money(amount, self.currency)

    def step_singles(self, delta: int) -> None:
        self.single_qty = min(MAX_SINGLES, max(1, int(self.single_qty) + delta))
        if self.quantity and self.quantity == self._picked_singles:
            self.choose(int(self.single_qty), singles=True)

    _picked_singles = 0

    def choose(self, quantity: int, *, singles: bool = False) -> None:
        """Pick ``quantity`` tickets at the raffle's price for it (the shared price rule)."""
        terms = self._terms()
        amount = sale_amount(terms, quantity) if terms else None
        self.error = ""
        if amount is None:
            self.error = f"{self.raffle_name} does not sell {quantity} ticket(s) at any price."
            return
        self._picked_singles = quantity if singles else 0
        self.quantity = quantity
        self.amount_cents = amount
        self.amount = format_money(amount, self.currency)

    def set_payment(self, method: str) -> None:
        self.payment = method
        self.error = ""

    def _update_change(self, *_: Any) -> None:
        if self.payment != "cash" or not self.quantity:
            self.change_due = ""
            return
        given = parse_money(self.tendered, self.currency) if self.tendered.strip() else int(self.amount_cents)
        if given is None:
            self.change_due = "not an amount"
        elif given < self.amount_cents:
            self.change_due = f"{format_money(int(self.amount_cents) - given, self.currency)} short"
        else:
            self.change_due = format_money(given - int(self.amount_cents), self.currency)

    def clear_sale(self) -> None:
        self.quantity = 0
        self.amount_cents = 0
        self.amount = ""
        self.tendered = ""
        self.reference = ""
        self.change_due = ""
        self.error = ""
        self._picked_singles = 0

    def confirm(self) -> bool:
        """Sell what was picked; ``True`` and ``receipt`` set when the SDK committed the sale."""
        self.error = ""
        self.refresh()
        if self.block:
            self.error = self.block
            return False
        if not self.quantity:
            self.error = "Pick a bundle or a number of single tickets first."
            return False
        change = ""
        reference: str | None = None
        if self.payment == "cash":
            given = parse_money(self.tendered, self.currency) if self.tendered.strip() else int(self.amount_cents)
            if given is None or given < self.amount_cents:
                self.error = f"Take at least {self.amount} in cash (amount tendered: {self.tendered or 'none'})."
                return False
            change = format_money(given - int(self.amount_cents), self.currency)
        else:
            reference = self.reference.strip()
            if not reference:
                self.error = "Type the card terminal's reference for this payment."
                return False
        try:
            sale = self.client.sell(
                self.raffle_id,
                int(self.quantity),
                payment=self.payment,
                reference=reference,
                amount_cents=int(self.amount_cents),
            )
        except TombolaError as exc:
            self.error = f"{exc.detail} ({exc.code})"
            self.refresh()
            return False
        self.receipt = Receipt(
            sale_id=sale.sale_id,
            raffle_id=sale.raffle_id,
            raffle_name=self.raffle_name,
            numbers=list(sale.numbers),
            codes=list(sale.codes),
            amount=sale.amount,
            payment=sale.payment,
            reference=sale.reference,
            change_due=change,
            at_ms=sale.anchored_time_ms,
        ).to_dict()
        self.print_message = ""
        self.print_detail = ""
        self.print_failed = False
        self.clear_sale()
        self.refresh()
        self._sync_wake.set()
        if self.printer_set():  # as commercial terminals do: the receipt prints at once
            self.print_receipt()
        return True

    # ------------------------------------------------------------------ receipt

    def show_last_sale(self) -> bool:
        """Load the device's last sale that was not voided into ``receipt`` (after a restart, too)."""
        last: SaleRecord | None = None
        voided: set[str] = set()
        for record in self.client.records():
            if isinstance(record, SaleRecord):
                last = record
            else:
                voided.add(record.voids)
        if last is None or last.sale_id in voided:
            self.receipt = {}
            return False
        info = self._infos.get(last.raffle_id)
        self.receipt = Receipt(
            sale_id=last.sale_id,
            raffle_id=last.raffle_id,
            raffle_name=info.name if info else last.raffle_id,
            numbers=list(last.numbers),
            codes=ticket_codes(last.raffle_id, last.numbers, last.hash),
            amount=format_money(last.amount_cents, last.currency),
            payment=last.payment.method,
            reference=last.payment.reference,
            change_due="",
            at_ms=last.anchored_time_ms,
            copy=True,
        ).to_dict()
        return True

    def print_receipt(self) -> None:
        """Print (or reprint, marked COPY) the receipt shown, through the SDK's printer when it has one.

        The print runs on a worker thread with a :class:`PosClient` of its own (a network printer
        may take seconds to answer or time out); ``printing`` is true and selling waits until its
        outcome comes back through ``post``, which sets ``print_message`` (and ``print_detail``).
        """
        if not hasattr(self.client, "print_receipt") or not self.receipt:
            self.print_message = "No printer is set up on this device."
            return
        if self.printing:
            return
        sale_id, copy = str(self.receipt["sale_id"]), bool(self.receipt.get("copy"))
        self.printing = True
        self.print_failed = False
        self.print_message = "Printing..."
        self.print_detail = ""
        self.refresh()

        def work() -> None:
            error: Exception | None = None
            client = self._worker_client()
            try:
                client.print_receipt(sale_id, copy=copy)
            except Exception as exc:  # any failure must come back, or selling would wait forever
                error = exc
            finally:
                client.close()
            self.post(lambda: self._printed(sale_id, copy, error))

        threading.Thread(target=work, name="pos-print", daemon=True).start()

    def _printed(self, sale_id: str, copy: bool, error: Exception | None) -> None:
        self.printing = False
        if self.receipt.get("sale_id") == sale_id:
            if error is None:
                self.print_message = "Reprinted (COPY)." if copy else "Printed."
                self.receipt = {**self.receipt, "copy": True}
            else:
                self.print_message, self.print_detail = print_failure_text(error)
                self.print_failed = True
        self.refresh()

    # ------------------------------------------------------------------ background sync

    def start_sync(self) -> None:
        """Start the background sync thread (once; only on an enrolled device)."""
        if self._sync_thread is not None or not self.enrolled:
            return
        self._sync_thread = threading.Thread(target=self._sync_loop, name="pos-sync", daemon=True)
        self._sync_thread.start()

    def sync_now(self) -> None:
        self._sync_wake.set()

    def stop(self) -> None:
        """Stop the sync thread and close the database."""
        self._stopping.set()
        self._sync_wake.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=10)
        self.client.close()

    def _sync_loop(self) -> None:
        client = self._worker_client()
        try:
            while not self._stopping.is_set():
                self.post(lambda: setattr(self, "syncing", True))
                error: TombolaError | None = None
                try:
                    client.sync()
                except TombolaError as exc:
                    error = exc
                self.post(lambda e=error: self._synced(e))  # type: ignore[misc]
                self._sync_wake.wait(self.sync_interval_s)
                self._sync_wake.clear()
        finally:
            client.close()

    def _synced(self, error: TombolaError | None) -> None:
        self.syncing = False
        self.online = not isinstance(error, NetworkError)
        self.checking = False
        note_online = getattr(self.client, "note_online", None)  # offline_sales: the UI's client hears it too
        if note_online is not None:
            note_online(self.online)
        self.refresh()
