"""View-models of the seller sign-in and void screens (Kivy ``EventDispatcher``, no window needed).

Both sit beside the app's :class:`~pos_client.app.viewmodels.PosViewModel` and act through its
:class:`~pos_client.PosClient`, which decides every rule: the PIN check, the lockout and the idle
lock (:mod:`pos_client.sellers`), the supervisor PIN and the void itself (:meth:`PosClient.void`,
which records ``sale.voided``). What is added here is the screens' state and each refusal as a
sentence that says what to do.

The app's client is made with ``require_seller=True`` and ``void_needs_supervisor=True``: nothing
sells or voids without a signed-in seller, and a void needs a supervisor's PIN.
"""

from __future__ import annotations

from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, DictProperty, ListProperty, StringProperty

from pos_client.app.viewmodels import PosViewModel, clock_text
from pos_client.errors import (
    AlreadyRejected,
    AlreadyVoided,
    LeaseExpired,
    PinWrong,
    RaffleClosed,
    SellerLocked,
    SellerUnknown,
    SignInRequired,
    SupervisorRequired,
    UnknownSale,
)
from pos_client.sellers import LOCK_BASE_MS, MAX_FAILURES
from sync_protocol.errors import TombolaError
from sync_protocol.messages import SaleRecord
from sync_protocol.money import format_money

#: a PIN is 4 to 8 digits (``sync_protocol.pins``)
PIN_MIN, PIN_MAX = 4, 8
#: the reasons offered for a void; "Other" asks for a typed one
VOID_REASONS = (
    "Customer changed their mind",
    "Wrong quantity or raffle",
    "Wrong payment",
    "Receipt did not print",
    "Other",
)
OTHER = "Other"


def add_seller_hint(venue_id: str, *, supervisor: bool = False) -> str:
    """The command an administrator runs on the server to add a seller to this venue."""
    flag = " --supervisor" if supervisor else ""
    return f"tombola seller add --venue {venue_id or 'VENUE_ID'} --name NAME{flag} --pin-stdin"


def tries(n: int) -> str:
    return f"{n} try" if n == 1 else f"{n} tries"


class PinEntry(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """A PIN typed on an on-screen pad: digits only, at most :data:`PIN_MAX`; shown as dots."""

    pin = StringProperty("")
    masked = StringProperty("")

    def on_pin(self, _instance: Any, value: str) -> None:
        self.masked = "\u2022 " * len(value)

    def press(self, digit: str) -> None:
        if digit.isdigit() and len(digit) == 1 and len(self.pin) < PIN_MAX:
            self.pin += digit

    def clear_pin(self) -> None:
        self.pin = ""


class SignInViewModel(PinEntry):
    """The sign-in screen: the venue's roster, the seller picked, the PIN pad, what went wrong.

    Args:
        app_vm: the app's view-model (its client, its ``refresh`` after a sign-in).
    """

    roster = ListProperty([])  # [{"seller_id", "name", "supervisor"}], by name
    seller_id = StringProperty("")
    seller_name = StringProperty("")
    message = StringProperty("")
    #: the code of the last refusal (``pin_wrong``, ``seller_locked``...), ``""`` after a success
    code = StringProperty("")
    #: what to do when the device knows no seller yet (``""`` when it knows some)
    empty_message = StringProperty("")

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        # Each sync brings the roster (sellers added or disabled on the server): reload when one ends.
        app_vm.bind(syncing=self._synced, enrolled=self.load_roster, venue_id=self.load_roster)
        self.load_roster()

    def _synced(self, _vm: PosViewModel, syncing: bool) -> None:
        if not syncing:
            self.load_roster()

    def load_roster(self, *_: Any) -> None:
        """Read the roster the last sync delivered (offline: the device's own copy)."""
        sellers = self.app_vm.client.sellers() if self.app_vm.enrolled else []
        self.roster = [{"seller_id": s.seller_id, "name": s.name, "supervisor": s.supervisor} for s in sellers]
        if not any(s.seller_id == self.seller_id for s in sellers):
            self.seller_id = ""
            self.seller_name = ""
        if self.app_vm.enrolled and not sellers:
            self.empty_message = (
                "No seller can sign in on this device yet: the venue has no sellers. An administrator adds one "
                f"on the server with\n{add_seller_hint(self.app_vm.venue_id)}\n(the PIN is typed, not shown); "
                "this device gets the roster at its next sync, so connect it to the network once."
            )
        elif not self.app_vm.enrolled:
            self.empty_message = "Set up this device first: sellers come with the enrollment."
        else:
            self.empty_message = ""

    def select(self, seller_id: str) -> None:
        """Pick the seller who signs in (a tap on their name); the PIN typed so far is dropped."""
        seller = next((s for s in self.roster if s["seller_id"] == seller_id), None)
        if seller is None:
            return
        self.seller_id = seller_id
        self.seller_name = seller["name"]
        self.pin = ""
        self.message = f"{seller['name']}: type your PIN, then OK."
        self.code = ""

    def sign_in(self) -> bool:
        """Sign the picked seller in with the PIN typed; ``True`` when they are signed in."""
        pin, self.pin = self.pin, ""
        if not self.seller_id:
            self.message = "Tap your name first, then type your PIN."
            self.code = "no_seller_picked"
            return False
        if not PIN_MIN <= len(pin) <= PIN_MAX:
            self.message = f"A PIN has {PIN_MIN} to {PIN_MAX} digits: type it again, then OK."
            self.code = "pin_wrong"
            return False
        name = self.seller_name
        try:
            self.app_vm.client.sign_in(self.seller_id, pin)
        except TombolaError as exc:
            self.code = exc.code
            self.message = sign_in_sentence(exc, name)
            if isinstance(exc, SellerUnknown):
                self.load_roster()
            return False
        self.message = ""
        self.code = ""
        self.app_vm.refresh()
        return True


def sign_in_sentence(exc: TombolaError, name: str) -> str:
    """A refused sign-in as a sentence that says what to do."""
    if isinstance(exc, PinWrong):
        left = exc.extra.get("attempts_left")
        locked = exc.extra.get("locked_for_s")
        if isinstance(locked, int) and locked > 0:
            return (
                f"Wrong PIN for {name}. After {MAX_FAILURES} wrong PINs in a row {name} is locked for {locked} s: "
                "wait, then try again, or ask a supervisor."
            )
        if isinstance(left, int):
            return (
                f"Wrong PIN for {name}: {tries(left)} left before a {LOCK_BASE_MS // 1000} s lock. "
                "Type it again, then OK."
            )
    if isinstance(exc, SellerLocked):
        wait = exc.extra.get("locked_for_s")
        return f"{name} is locked after too many wrong PINs: try again in {wait} s, or ask a supervisor."
    if isinstance(exc, SellerUnknown):
        return f"{name} is no longer on this device's roster: ask your supervisor (the roster comes with each sync)."
    return f"{exc.detail} ({exc.code})"


class VoidViewModel(PinEntry):
    """The void screen: the sale (the last one, or found by ticket number), a reason, a supervisor PIN.

    ``sale`` is ``{"sale_id", "raffle_id", "raffle_name", "numbers", "amount", "payment",
    "reference", "at", "seller", "voided"}``; ``voided`` the last void made here
    (``{"sale_id", "numbers", "raffle_name", "amount", "payment"}``).
    """

    sale = DictProperty({})
    number = StringProperty("")
    reasons = ListProperty(list(VOID_REASONS))
    reason_choice = StringProperty("")
    reason_text = StringProperty("")
    message = StringProperty("")
    code = StringProperty("")
    voided = DictProperty({})
    #: a sale is shown, not voided yet, a reason is given and a PIN typed
    ready = BooleanProperty(False)

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        self.bind(sale=self._update_ready, reason_choice=self._update_ready, reason_text=self._update_ready)
        self.bind(pin=self._update_ready)

    def _update_ready(self, *_: Any) -> None:
        self.ready = bool(
            self.sale and not self.sale.get("voided") and self.reason() and PIN_MIN <= len(self.pin) <= PIN_MAX
        )

    # ------------------------------------------------------------------ the sale

    def _sales(self) -> tuple[list[SaleRecord], set[str]]:
        """The device's sales, newest first, and the ids of those voided."""
        sales: list[SaleRecord] = []
        voided: set[str] = set()
        for record in self.app_vm.client.records():
            if isinstance(record, SaleRecord):
                sales.append(record)
            else:
                voided.add(record.voids)
        sales.reverse()
        return sales, voided

    def _show(self, record: SaleRecord | None, voided: set[str]) -> None:
        if record is None:
            self.sale = {}
            return
        names = {s.seller_id: s.name for s in self.app_vm.client.sellers()}
        raffles = {r.raffle_id: r.name for r in self.app_vm.client.raffles()}
        self.sale = {
            "sale_id": record.sale_id,
            "raffle_id": record.raffle_id,
            "raffle_name": raffles.get(record.raffle_id, record.raffle_id),
            "numbers": list(record.numbers),
            "amount": format_money(record.amount_cents, record.currency),
            "payment": record.payment.method,
            "reference": record.payment.reference or "",
            "at": clock_text(record.anchored_time_ms),
            "seller": names.get(record.seller_id, record.seller_id),
            "voided": record.sale_id in voided,
        }

    def reset(self) -> None:
        """A fresh start on the screen: the last sale, no reason, no PIN, no message."""
        self.reason_choice = ""
        self.reason_text = ""
        self.pin = ""
        self.number = ""
        self.voided = {}
        self.message = ""
        self.code = ""
        self.load_last()

    def load_last(self) -> bool:
        """Show the device's last sale that was not voided; ``False`` when there is none."""
        sales, voided = self._sales()
        last = next((s for s in sales if s.sale_id not in voided), None)
        self._show(last, voided)
        if last is None:
            self.message = "This device has no sale left to void. To find an older one, type a ticket number."
            return False
        return True

    def find(self, text: str | None = None) -> bool:
        """Show the sale of ticket number ``text`` (the raffle picked on the sell screen first)."""
        text = (self.number if text is None else text).strip()
        self.number = text
        self.voided = {}
        self.code = ""
        if not text.isdigit():
            self.message = "Type the ticket number printed on the receipt (digits only), then Find."
            return False
        number = int(text)
        sales, voided = self._sales()
        found = [s for s in sales if number in s.numbers]
        found.sort(key=lambda s: s.raffle_id != self.app_vm.raffle_id)  # stable: newest first within
        if not found:
            self._show(None, voided)
            self.message = f"No sale of this device holds number {number}. Check the number on the receipt."
            return False
        self._show(found[0], voided)
        others = {s.raffle_id for s in found[1:]} - {found[0].raffle_id}
        note = f" (it was also sold in {len(others)} other raffle(s): pick that raffle on Sell first)" if others else ""
        self.message = f"Number {number}: {self.sale['raffle_name']}{note}."
        return True

    def choose_reason(self, reason: str) -> None:
        if reason in VOID_REASONS:
            self.reason_choice = reason

    def reason(self) -> str:
        """The reason recorded: the choice, and the text typed (needed for "Other")."""
        text = str(self.reason_text).strip()
        if self.reason_choice == OTHER:
            return text
        if not self.reason_choice:
            return ""
        return f"{self.reason_choice}: {text}" if text else self.reason_choice

    # ------------------------------------------------------------------ the void

    def confirm(self) -> bool:
        """Void the sale shown with the reason and the supervisor PIN; ``True`` when it is voided."""
        pin, self.pin = self.pin, ""
        self.code = ""
        sale = dict(self.sale)
        if not sale:
            self.message = "Show the sale first: the last sale, or type its ticket number and tap Find."
            self.code = "no_sale"
            return False
        if sale.get("voided"):
            self.message = "This sale is already voided: its numbers are out of the draw."
            self.code = "already_voided"
            return False
        reason = self.reason()
        if not reason:
            self.message = (
                "Type the reason for Other." if self.reason_choice == OTHER else "Pick a reason for the void."
            )
            self.code = "bad_input"
            return False
        if not PIN_MIN <= len(pin) <= PIN_MAX:
            self.message = f"A supervisor types their PIN ({PIN_MIN} to {PIN_MAX} digits) to approve the void."
            self.code = "supervisor_required"
            return False
        try:
            self.app_vm.client.void(sale["sale_id"], reason, supervisor_pin=pin)
        except TombolaError as exc:
            self.code = exc.code
            self.message = void_sentence(exc, sale, self.app_vm.venue_id)
            self.app_vm.refresh()  # a lock that fell, a roster or lease that changed
            return False
        self.voided = {
            "sale_id": sale["sale_id"],
            "numbers": sale["numbers"],
            "raffle_name": sale["raffle_name"],
            "amount": sale["amount"],
            "payment": sale["payment"],
        }
        numbers = ", ".join(str(n) for n in sale["numbers"])
        back = f"Refund {sale['amount']} on the card terminal."
        if sale["payment"] == "cash":
            back = f"Give back {sale['amount']} in cash."
        self.message = f"Voided. Numbers {numbers} of {sale['raffle_name']} are out of the draw. {back}"
        self.sale = {**sale, "voided": True}
        self.reason_choice = ""
        self.reason_text = ""
        if self.app_vm.receipt.get("sale_id") == sale["sale_id"]:
            self.app_vm.receipt = {}
        self.app_vm.refresh()
        self.app_vm.sync_now()
        return True


def void_sentence(exc: TombolaError, sale: dict[str, Any], venue_id: str) -> str:
    """A refused void as a sentence that says what to do."""
    raffle = sale.get("raffle_name", "the raffle")
    if isinstance(exc, RaffleClosed):
        return (
            f"Sales for {raffle} have closed: a sale can no longer be voided, and its numbers stay in the draw. "
            "Ask your supervisor about a refund."
        )
    if isinstance(exc, PinWrong):
        locked = exc.extra.get("locked_for_s")
        if isinstance(locked, int) and locked > 0:
            return f"Wrong supervisor PIN: supervisor PINs are locked for {locked} s. Wait, then try again."
        left = exc.extra.get("attempts_left")
        return f"Wrong supervisor PIN: {tries(int(left or 0))} left before a {LOCK_BASE_MS // 1000} s lock."
    if isinstance(exc, SellerLocked):
        return f"Supervisor PINs are locked after too many wrong tries: try again in {exc.extra.get('locked_for_s')} s."
    if isinstance(exc, SupervisorRequired):
        return (
            "This device knows no supervisor, so nothing can be voided. An administrator adds one on the server "
            f"with {add_seller_hint(venue_id, supervisor=True)}; the device gets it at its next sync."
        )
    if isinstance(exc, SignInRequired):
        return "Sign in again with your PIN (the screen locked), then void."
    if isinstance(exc, AlreadyVoided):
        return "This sale is already voided: its numbers are out of the draw."
    if isinstance(exc, AlreadyRejected):
        return "The server rejected this sale, so there is nothing to void: refund the customer."
    if isinstance(exc, UnknownSale):
        return "This device did not make that sale: void it on the device that sold it."
    if isinstance(exc, LeaseExpired):
        return "The offline lease ran out: connect this device so it syncs, then void."
    return f"{exc.detail} ({exc.code})"
