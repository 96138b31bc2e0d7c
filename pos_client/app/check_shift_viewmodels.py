"""View-models of the ticket-check and end-of-shift screens, beside the app's
:class:`~pos_client.app.viewmodels.PosViewModel` and acting through its :class:`~pos_client.PosClient`.

Nothing here decides a rule: the check is :meth:`PosClient.check_ticket` (the server first, the
device's own records when it does not answer), the URL is read by
:func:`sync_protocol.codes.parse_ticket_check_url`, the report is :meth:`PosClient.shift_report`.
The check and a print run on a worker thread (a network round trip, a printer that may hang for
seconds) and hand their result back through the app view-model's ``post``, so the UI never
freezes; plain pytest tests these classes without a window.

Scanning, two ways: the URL field takes what a handheld barcode scanner types (it acts as a
keyboard and types the QR code's URL, then Enter); and where the device has a camera, the Scan
button beside the code opens :mod:`pos_client.app.scanner` (Kivy's ``Camera`` frames decoded by
zbar on a worker thread), which hands the URL it read to :meth:`TicketCheckViewModel.use_url`,
the same path as the typed URL.
"""

from __future__ import annotations

import threading
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from pos_client.app.viewmodels import PosViewModel, clock_text, parse_money
from pos_client.shift import ShiftReport
from pos_client.ticket_check import TicketCheck
from sync_protocol.codes import parse_ticket_check_url
from sync_protocol.errors import TombolaError
from sync_protocol.money import format_money

#: the colour name of each answer (the kv file maps it to a colour)
TONES = {"valid": "ok", "void": "danger", "rejected": "danger", "unknown": "warn"}


class TicketCheckViewModel(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """Number and code typed (or a scanned check URL), the answer in big text."""

    raffle_id = StringProperty("")
    raffles = ListProperty([])  # [{"raffle_id", "name"}], from the app view-model
    number = StringProperty("")
    code = StringProperty("")
    url = StringProperty("")
    busy = BooleanProperty(False)
    headline = StringProperty("")
    tone = StringProperty("")  # ok, danger, warn ("" before an answer)
    note = StringProperty("")
    source = StringProperty("")
    message = StringProperty("")  # what to fix before a check can run

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        app_vm.bind(raffles=self._follow_raffles, raffle_id=self._follow_raffles)
        self._follow_raffles()

    def _follow_raffles(self, *_: Any) -> None:
        self.raffles = [{"raffle_id": r["raffle_id"], "name": r["name"]} for r in self.app_vm.raffles]
        known = {r["raffle_id"] for r in self.raffles}
        if self.raffle_id not in known:
            self.raffle_id = self.app_vm.raffle_id

    def select_raffle(self, raffle_id: str) -> None:
        self.raffle_id = raffle_id
        self.clear_answer()

    def clear_answer(self) -> None:
        self.headline = self.tone = self.note = self.source = self.message = ""

    def clear(self) -> None:
        """Empty the fields and the answer, for the next ticket."""
        self.number = self.code = self.url = ""
        self.clear_answer()

    def use_url(self, text: str | None = None) -> bool:
        """Read a typed or scanned ticket-check URL into raffle, number and code, then check it."""
        text = self.url if text is None else text
        self.clear_answer()
        try:
            ref = parse_ticket_check_url(text)
        except TombolaError as exc:
            self.message = f"{exc.detail} ({exc.code})"
            return False
        self.raffle_id, self.number, self.code = ref.raffle_id, str(ref.number), ref.code
        self.url = ""
        return self.check()

    def check(self) -> bool:
        """Check the ticket in the fields on a worker thread; ``False`` when a field needs fixing first."""
        self.clear_answer()
        if self.url.strip():
            return self.use_url()
        number = self.number.strip()
        if not self.raffle_id:
            self.message = "No raffle on this device yet: sync first."
            return False
        if not (number.isascii() and number.isdigit()) or int(number) < 1:
            self.message = "Type the ticket number (digits only), as printed on the ticket."
            return False
        if not self.code.strip():
            self.message = "Type the verification code printed next to the number (like 7K3M-Q9TX)."
            return False
        self.busy = True
        self.note = "Checking..."
        raffle_id, code = self.raffle_id, self.code.strip()

        def work() -> None:
            client = self.app_vm._worker_client()
            try:
                answer: TicketCheck | TombolaError = client.check_ticket(raffle_id, int(number), code)
            except TombolaError as exc:
                answer = exc
            finally:
                client.close()
            self.app_vm.post(lambda: self._answered(answer))

        threading.Thread(target=work, name="pos-check", daemon=True).start()
        return True

    def _answered(self, answer: TicketCheck | TombolaError) -> None:
        self.busy = False
        if isinstance(answer, TombolaError):
            self.note = ""
            self.message = f"{answer.detail} ({answer.code})"
            return
        self.headline = answer.headline
        self.tone = TONES[answer.result]
        self.note = answer.note
        self.source = "Answered by the server" if answer.source == "server" else "Answered by this device's records"


class ShiftViewModel(EventDispatcher):  # type: ignore[misc]  # kivy has no type information
    """The opening float (kept in the device's settings when the shift starts), the report, its print."""

    float_text = StringProperty("")
    started = StringProperty("")  # "Shift started 18:02 with 100.00 USD", "" before a shift
    report_text = StringProperty("")
    cash_expected = StringProperty("")
    message = StringProperty("")
    busy = BooleanProperty(False)
    #: a shift was started on this device (the button then starts a *new* one)
    running = BooleanProperty(False)

    def __init__(self, app_vm: PosViewModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_vm = app_vm
        self.report: ShiftReport | None = None

    @property
    def currency(self) -> str:
        return self.app_vm.currency or "USD"

    def start_shift(self) -> bool:
        """Start a shift now with the float typed; the report then counts from now."""
        cents = parse_money(self.float_text, self.currency) if self.float_text.strip() else None
        if cents is None:
            self.message = f"Type the cash in the drawer now, like 100 or 100.00 ({self.currency})."
            return False
        try:
            self.app_vm.client.start_shift(cents)
        except TombolaError as exc:
            self.message = f"{exc.detail} ({exc.code})"
            return False
        self.load()
        self.message = "Shift started: the report counts from now."
        return True

    def load(self) -> bool:
        """Read the report again (the current shift's float and start; every sale when none started)."""
        client = self.app_vm.client
        self.message = ""
        if not self.app_vm.enrolled:
            self.report, self.report_text, self.cash_expected = None, "", ""
            self.started = "This device is not enrolled yet."
            return False
        shift = client.current_shift()
        self.running = shift is not None
        if shift is None:
            self.started = "No shift started: type the opening float and tap Start shift."
        else:
            amount = format_money(shift.opening_float_cents, self.currency)
            self.started = f"Shift started {clock_text(shift.started_at_ms)} with {amount} in the drawer."
            if not self.float_text:
                self.float_text = format_money(shift.opening_float_cents, self.currency).split(" ")[0]
        try:
            report = client.shift_report()
        except TombolaError as exc:
            self.report, self.report_text, self.cash_expected = None, "", ""
            self.message = f"{exc.detail} ({exc.code})"
            return False
        self.report = report
        self.report_text = report.text()
        self.cash_expected = f"Cash expected: {report.money(report.cash_expected_cents)}"
        return True

    def print_report(self) -> bool:
        """Print the report shown on the receipt printer (a worker thread; the answer comes back posted)."""
        if self.report is None and not self.load():
            return False
        report = self.report
        assert report is not None
        self.busy = True
        self.message = "Printing..."

        def work() -> None:
            client = self.app_vm._worker_client()
            try:
                printer = client.print_shift_report(report)
                outcome = f"Printed on {printer}."
            except TombolaError as exc:
                outcome = f"Printing failed: {exc.detail} ({exc.code})"
            finally:
                client.close()
            self.app_vm.post(lambda: self._printed(outcome))

        threading.Thread(target=work, name="pos-shift-print", daemon=True).start()
        return True

    def _printed(self, outcome: str) -> None:
        self.busy = False
        self.message = outcome
