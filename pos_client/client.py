"""``PosClient``: the SDK's one entry point over one SQLite file.

Example::

    from pos_client import PosClient

    with PosClient("pos.db") as pos:
        pos.enroll("ABCD-1234", "https://tombola.example")
        sale = pos.sell("raffle-1", 5, payment="cash")
        print(sale.numbers, sale.codes)
        pos.sync()

Every method that changes something commits it durably before it returns. The object is
thread-safe (one lock around the connection); several processes may open the same file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from pos_client import enroll as _enroll
from pos_client import events as _events
from pos_client import export as _export
from pos_client import ledger
from pos_client import printing as _printing
from pos_client import receipt as _receipt
from pos_client import sellers as _sellers
from pos_client import selling as _selling
from pos_client import shift as _shift
from pos_client import status as _status
from pos_client import ticket_check as _ticket_check
from pos_client import voids as _voids
from pos_client import wallet as _wallet
from pos_client.clock import Clock, SystemClock
from pos_client.enroll import Enrollment
from pos_client.errors import (
    ClockBackwards,
    NetworkError,
    NotEnrolled,
    PrinterNotSet,
    PrintFailed,
    ServerError,
    SignInRefused,
    SignInRequired,
    SupervisorRequired,
    SyncFailed,
)
from pos_client.events import DeviceEvent
from pos_client.export import ExportResult
from pos_client.online import check_offline_sales
from pos_client.receipt import Receipt
from pos_client.selling import DEFAULT_CLOCK_TOLERANCE_MS, Sale
from pos_client.status import Status
from pos_client.store import Store
from pos_client.sync_engine import DEFAULT_BATCH_SIZE, SyncEngine, SyncResult
from pos_client.transport import RetryPolicy, Transport
from pos_client.voids import Void
from sync_protocol.errors import TombolaError
from sync_protocol.messages import MAX_BATCH_RECORDS, RaffleInfo, SaleRecord, VoidRecord, parse_record
from sync_protocol.signing import SoftwareSigner, b64u_decode

DEFAULT_TIMEOUT_S = 10.0


class PosClient:
    """A POS device's SDK over the SQLite file ``db_path``.

    Args:
        db_path: the device database (created on first use).
        clock: time source; :class:`~pos_client.clock.SystemClock` by default.
        http: an ``httpx.Client`` to talk to the server with (tests pass a Starlette
            ``TestClient``); by default one is built on first use.
        server_url: overrides the server URL stored at enrollment.
        retry: retry policy for requests to the server.
        batch_size: records per sync batch (at most 1000, the protocol's cap).
        timeout_s: per-request timeout of the default HTTP client.
        clock_tolerance_ms: how far the wall clock may go back before sales are refused.
        require_seller: sell and void only for a signed-in seller (the app; ``sign_in_required``
            otherwise); without it a sale records ``seller_id`` as given (the CLI's ``--seller``).
        void_needs_supervisor: a void needs a supervisor's PIN (``supervisor_required`` otherwise).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
        server_url: str | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock_tolerance_ms: int = DEFAULT_CLOCK_TOLERANCE_MS,
        require_seller: bool = False,
        void_needs_supervisor: bool = False,
    ) -> None:
        self.db_path = Path(db_path)
        #: the file did not exist before this object made it (a failed enrollment removes it again)
        self._made_file = not self.db_path.exists()
        self._store: Store | None = Store(self.db_path)
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.batch_size = min(max(1, batch_size), MAX_BATCH_RECORDS)
        self.timeout_s = timeout_s
        self.clock_tolerance_ms = clock_tolerance_ms
        self._http = http
        self._own_http = False
        self._server_url = server_url
        self._signer: SoftwareSigner | None = None
        self.require_seller = require_seller
        self.void_needs_supervisor = void_needs_supervisor
        #: the signed-in seller and the monotonic time of their last activity (memory only: a
        #: restarted app asks for a PIN again)
        self._session: tuple[_sellers.Seller, int] | None = None
        #: what the last sync, ping or the app found of the server: None = nothing yet
        self._reachable: bool | None = None
        self._last_contact_ms: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database (and the HTTP client if this object built it)."""
        if self._own_http and self._http is not None:
            self._http.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        """The open device database (opened again, and made, after a failed enrollment removed it)."""
        if self._store is None:
            self._made_file = not self.db_path.exists()
            self._store = Store(self.db_path)
        return self._store

    def _remove_unused_file(self) -> None:
        """Remove the database file this object made when nothing was kept in it (no device key)."""
        if not self._made_file or self._store is None or self._store.device() is not None:
            return
        self._store.close()
        self._store = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> PosClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ identity

    @property
    def device_id(self) -> str | None:
        """The device id, ``None`` before enrollment."""
        state = self.store.device()
        return state.device_id if state else None

    @property
    def public_key(self) -> bytes:
        """The device's raw Ed25519 public key (the private key never leaves the database)."""
        state = self.store.device()
        if state is None:
            raise NotEnrolled("this device has no key yet: enroll it first")
        return b64u_decode(state.public_key)

    def _signing_key(self) -> SoftwareSigner:
        if self._signer is None:
            device = self.store.enrolled_device()
            self._signer = SoftwareSigner.from_pem(device.key_pem.encode("ascii"))
        return self._signer

    def _transport(self, server_url: str | None = None) -> Transport:
        url = server_url or self._server_url or self.store.enrolled_device().server_url
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout_s)
            self._own_http = True
        return Transport(self._http, url, self.retry)

    # ------------------------------------------------------------------ operations

    def enroll(self, code: str, server_url: str, device_name: str = "", *, server_key: str | None = None) -> Enrollment:
        """Enroll with a one-time ``code`` at ``server_url`` (see :mod:`pos_client.enroll`).

        ``server_key`` pins the server's grant key out of band: its key id or public key as
        ``tombola init`` printed it on the server. An answer without that key is refused
        (``server_key_not_pinned``) and nothing is written. An enrollment that certainly
        failed leaves nothing behind: no key, and no database file if this object made it.
        """
        try:
            result = _enroll.enroll(
                self.store,
                self.clock,
                self._transport(server_url),
                code=code,
                server_url=server_url,
                device_name=device_name,
                server_key=server_key,
            )
        except TombolaError:
            self._remove_unused_file()
            raise
        self._signer = None
        return result

    def sell(
        self,
        raffle_id: str,
        quantity: int,
        payment: str = "cash",
        reference: str | None = None,
        seller_id: str = "",
        amount_cents: int | None = None,
    ) -> Sale:
        """Sell ``quantity`` numbers of ``raffle_id`` at the raffle's price, durably (see :mod:`pos_client.selling`).

        The device computes the amount (:func:`sync_protocol.rules.sale_amount`). ``amount_cents``,
        when given, is the amount shown to the customer: any other amount is refused (``bad_amount``).

        The signed-in seller (:meth:`sign_in`) is recorded when ``seller_id`` is not given. A raffle
        that may not be sold offline is refused (``offline_sales_not_allowed``) unless the server
        answered within :data:`pos_client.online.ONLINE_WINDOW_MS`. While a receipt failed to print
        (:meth:`print_receipt`) and its sale is not voided, every sale is refused (``printer_failed``).
        """
        seller_id = self._seller_for(seller_id)
        self._check_online(raffle_id)
        with self.store.read() as conn:
            _printing.check_not_blocked(conn)  # printer_failed: a receipt to reprint, or its sale to void
        try:
            return _selling.sell(
                self.store,
                self.clock,
                raffle_id=raffle_id,
                quantity=quantity,
                payment=payment,
                reference=reference,
                seller_id=seller_id,
                amount_cents=amount_cents,
                clock_tolerance_ms=self.clock_tolerance_ms,
            )
        except ClockBackwards as exc:
            self._clock_jump(exc, "sale", seller_id)
            raise

    def void(
        self,
        sale_id: str,
        reason: str,
        seller_id: str = "",
        *,
        supervisor_pin: str | None = None,
        supervisor_id: str | None = None,
    ) -> Void:
        """Void an earlier sale of this device, durably (see :mod:`pos_client.voids`).

        ``supervisor_pin``, when given (and always when the device's policy
        ``void_needs_supervisor`` asks for it), must be a supervisor's PIN: ``supervisor_id``'s, or
        any supervisor's on the roster; a wrong one counts towards that supervisor's lock.

        Raises:
            SupervisorRequired: the policy asks for a supervisor's PIN and none was given.
            PinWrong, SellerLocked, SellerUnknown: the supervisor PIN was not accepted.
        """
        seller_id = self._seller_for(seller_id)
        self._authorise_void(sale_id, supervisor_pin, supervisor_id)
        try:
            return _voids.void(
                self.store,
                self.clock,
                sale_id=sale_id,
                reason=reason,
                seller_id=seller_id,
                clock_tolerance_ms=self.clock_tolerance_ms,
            )
        except ClockBackwards as exc:
            self._clock_jump(exc, "void", seller_id)
            raise

    def _clock_jump(self, exc: ClockBackwards, source: str, seller_id: str) -> None:
        """``clock.jump``: the wall clock was found behind a time already recorded (the refusal stands)."""
        detail: dict[str, str | int] = {"source": source}
        behind = exc.extra.get("behind_ms")
        if isinstance(behind, int):
            detail["behind_ms"] = behind
        _events.record_event(self.store, self.clock, "clock.jump", detail, seller_id=seller_id[:64])

    def sync(self, max_batches: int | None = None) -> SyncResult:
        """Upload pending records and events, refresh grants, raffles and time (see :mod:`pos_client.sync_engine`).

        A failure is recorded as a device event before it is raised: ``connection.lost`` when the
        server cannot be reached (once, until it answers again), ``sync.failed`` otherwise.
        """
        engine = SyncEngine(self.store, self.clock, self._transport(), self._signing_key(), batch_size=self.batch_size)
        try:
            result = engine.sync(max_batches=max_batches)
        except NetworkError as exc:
            self._reachable = False
            _events.note_reachable(self.store, self.clock, reachable=False, detail={"reason": exc.detail})
            raise
        except SyncFailed as exc:
            if isinstance(exc, ServerError):
                self._reachable = False
            detail: dict[str, str | int] = {"code": exc.code, "reason": exc.detail}
            status = getattr(exc, "http_status", None)
            if isinstance(status, int):
                detail["status"] = status
            _events.record_event(self.store, self.clock, "sync.failed", detail)
            raise
        self._server_answered()
        return result

    # ------------------------------------------------------------------ sellers (pos_client.sellers)

    def sellers(self) -> list[_sellers.Seller]:
        """The sellers of the device's venue as the last sync delivered them, by name."""
        with self.store.read() as conn:
            return _sellers.roster(conn)

    def sign_in(self, seller_id: str, pin: str) -> _sellers.Seller:
        """Sign ``seller_id`` in with their PIN, offline; the seller then goes on each sale and void.

        Records ``seller.sign_in``, or ``seller.pin_failed`` for a wrong PIN or a locked seller.

        Raises:
            SellerUnknown: not on this device's roster (sync first; disabled sellers are dropped).
            SellerLocked: 5 wrong PINs in a row; ``locked_for_s`` says how long.
            PinWrong: not the seller's PIN; ``attempts_left`` before a lock.
        """
        try:
            seller = _sellers.check_pin(self.store, self.clock, seller_id, pin)
        except SignInRefused as exc:
            self._pin_failed(seller_id, exc, purpose="sign_in")
            raise
        self._session = (seller, self.clock.monotonic_ms())
        self.record_event("seller.sign_in", {"name": seller.name}, seller_id=seller.seller_id)
        return seller

    def sign_out(self) -> None:
        """Sign the current seller out (nothing is recorded on the device for it)."""
        self._session = None

    def current_seller(self) -> _sellers.Seller | None:
        """The signed-in seller, or ``None`` (none signed in, or the idle lock fell: :meth:`session_expired`)."""
        if self._session is None or self.session_expired():
            return None
        return self._session[0]

    def session_expired(self, now_monotonic_ms: int | None = None) -> bool:
        """Whether a seller is signed in and idle for :data:`pos_client.sellers.IDLE_LOCK_MS` (5 minutes) or more.

        The app calls this (on a timer) and shows the sign-in screen when it is true; sales and
        voids then need a new :meth:`sign_in`. Activity is a sign-in, a sale, a void or
        :meth:`note_activity`.
        """
        if self._session is None:
            return False
        now = self.clock.monotonic_ms() if now_monotonic_ms is None else now_monotonic_ms
        return now - self._session[1] >= _sellers.IDLE_LOCK_MS

    def note_activity(self) -> None:
        """The seller touched the app: the idle lock counts from now (no effect once it fell)."""
        if self._session is not None and not self.session_expired():
            self._session = (self._session[0], self.clock.monotonic_ms())

    def _seller_for(self, seller_id: str) -> str:
        """The seller a sale or void records: ``seller_id`` if given, else the signed-in seller."""
        current = self.current_seller()
        if self.require_seller:
            if current is None:
                why = "the screen locked after 5 idle minutes" if self._session is not None else "no seller signed in"
                raise SignInRequired(f"{why}: sign in with your PIN to sell")
            if seller_id and seller_id != current.seller_id:
                raise SignInRequired(f"seller {seller_id} is not the one signed in: sign in as {seller_id} first")
        if current is not None:
            self.note_activity()
            return seller_id or current.seller_id
        return seller_id

    def _authorise_void(self, sale_id: str, pin: str | None, supervisor_id: str | None) -> None:
        if pin is None:
            if self.void_needs_supervisor:
                raise SupervisorRequired("a void on this device needs a supervisor's PIN", sale_id=sale_id)
            return
        try:
            _sellers.check_supervisor(self.store, self.clock, pin, supervisor_id)
        except SignInRefused as exc:
            self._pin_failed(supervisor_id or _sellers.ANY_SUPERVISOR, exc, purpose="void")
            raise

    def _pin_failed(self, seller_id: str, exc: SignInRefused, *, purpose: str) -> None:
        detail: dict[str, str | int] = {"code": exc.code, "purpose": purpose}
        left = exc.extra.get("attempts_left")
        if isinstance(left, int):
            detail["attempts_left"] = left
        self.record_event("seller.pin_failed", detail, seller_id=seller_id[:64])

    # ------------------------------------------------------------------ reachability (pos_client.online)

    def note_online(self, reachable: bool) -> None:
        """The app's word on the server: ``True`` = it answered just now, ``False`` = it did not.

        A raffle that may not be sold offline (``RaffleInfo.offline_sales`` false) stops selling
        at once on ``False``; syncs and :meth:`check_server` report the same way on their own.
        """
        if reachable:
            self._server_answered()
        else:
            self._reachable = False

    def check_server(self, timeout_s: float = 3.0) -> bool:
        """Ping the server (``GET /healthz``, one try); note and return whether it answered 2xx."""
        url = (self._server_url or self.store.enrolled_device().server_url).rstrip("/") + "/healthz"
        self._transport()  # builds the default HTTP client when none was given
        assert self._http is not None
        try:
            ok = self._http.get(url, timeout=timeout_s).is_success
        except httpx.HTTPError:
            ok = False
        self.note_online(ok)
        return ok

    def last_server_contact_ms(self) -> int | None:
        """Wall-clock time of the server's last answer (sync, enrollment or ping), or ``None``."""
        state = self.store.device()
        synced = state.last_sync_ms if state is not None else None
        times = [t for t in (synced, self._last_contact_ms) if t is not None]
        return max(times) if times else None

    def _server_answered(self) -> None:
        self._reachable = True
        self._last_contact_ms = self.clock.wall_ms()

    def _check_online(self, raffle_id: str) -> None:
        with self.store.read() as conn:
            raffle = _wallet.raffle(conn, raffle_id)
        last = self.last_server_contact_ms()
        check_offline_sales(raffle, reachable=self._reachable, last_contact_ms=last, now_ms=self.clock.wall_ms())

    # ------------------------------------------------------------------ receipts and the printer

    def receipt(self, sale_id: str, *, copy: bool = False) -> Receipt:
        """The receipt of sale ``sale_id`` of this device, from its own records (offline; see
        :mod:`pos_client.receipt`); ``.text()`` is what the app shows. ``copy`` marks it ``COPY``,
        as it is too once a receipt of the sale has printed."""
        with self.store.read() as conn:
            copy = copy or _printing.printed_before(conn, sale_id)
        return _receipt.build_receipt(self.store, sale_id, copy=copy)

    def print_receipt(self, sale_id: str, copy: bool = False) -> _printing.PrintOutcome:
        """Print the receipt of ``sale_id`` on the device's printer and record the outcome durably.

        A reprint (``copy``, or any print after one that succeeded) is marked ``COPY``. A failure is
        recorded (the ``printer.error`` event too) and blocks selling until a print of that receipt
        succeeds or the sale is voided (:meth:`printer_blocked`).

        Raises:
            PrinterNotSet: no printer is set (``printer_not_set``).
            PrintFailed: the printer failed (``print_failed``); selling is now blocked.
            UnknownSale: no such sale of this device.
        """
        receipt = self.receipt(sale_id, copy=copy)
        try:
            return _printing.print_receipt(self.store, receipt, self.clock.wall_ms())
        except PrintFailed as exc:
            self.record_event("printer.error", {"sale_id": sale_id, "printer": str(exc.extra.get("printer", ""))})
            raise

    def printer_blocked(self) -> tuple[str, str] | None:
        """``(sale_id, error)`` of the receipt whose failed print blocks selling, or ``None``."""
        with self.store.read() as conn:
            return _printing.blocking_receipt(conn)

    def set_printer(self, printer: str) -> _printing.PrinterSpec:
        """Set the device's printer: ``file:PATH``, ``network:HOST[:PORT]``, ``usb:VID:PID``,
        ``serial:DEV`` or ``bluetooth:MAC`` (``bad_printer`` otherwise); durable on return.

        Raises:
            SignInRequired: see :meth:`_may_change_printer`.
        """
        self._may_change_printer()
        return _printing.set_printer(self.store, printer)

    def _may_change_printer(self) -> None:
        """Where receipts go changes only for a signed-in seller once the device is enrolled, when
        the client sells only for one (``require_seller``, the app); before enrollment nothing sells."""
        if self.require_seller and self.device_id is not None and self.current_seller() is None:
            raise SignInRequired("no seller signed in: sign in with your PIN to change the printer")
        self.note_activity()

    def printer(self) -> _printing.PrinterSpec | None:
        """The device's printer, ``None`` when none is set."""
        return _printing.get_printer(self.store)

    def clear_printer(self) -> None:
        """Set no printer: receipts are shown on screen only; durable on return (``sign_in_required``
        as :meth:`set_printer`)."""
        self._may_change_printer()
        _printing.clear_printer(self.store)

    def print_test_page(self) -> str:
        """Print a short test page on the device's printer; returns the printer. It is no receipt:
        nothing is recorded and selling is never blocked, but a failure records ``printer.error``.

        Raises:
            PrinterNotSet: no printer is set.
            PrintFailed: the printer failed.
        """
        spec = _printing.get_printer(self.store)
        if spec is None:
            raise PrinterNotSet("no printer is set: `tombola-pos printer set file:PATH | network:HOST[:PORT] | ...`")
        try:
            _printing.send(spec, _printing.render_test_page(spec, _receipt.when_text(self.clock.wall_ms())))
        except PrintFailed as exc:
            self.record_event("printer.error", {"report": "test_page", "printer": str(exc.extra.get("printer", ""))})
            raise
        return str(spec)

    # ------------------------------------------------------------------ ticket check (pos_client.ticket_check)

    def check_ticket(
        self, raffle_id: str, number: int, code: str, *, online: bool = True, timeout_s: float = 3.0
    ) -> _ticket_check.TicketCheck:
        """Check ticket ``number`` of ``raffle_id`` with its verification ``code`` (as typed).

        The server's public check first (``GET /v1/tickets/check``, one try of ``timeout_s``) when
        ``online`` and enrolled; when it does not answer, the device's own records (sold here,
        voided, rejected, unknown here), with a note saying so. A sale of this device the server
        does not have yet is answered from the device. ``.source`` says who answered.

        Raises:
            BadInput: a raffle id, number or code out of bounds (nothing is asked).
        """
        raffle_id, number, code = _ticket_check.check_input(raffle_id, number, code)
        local = _ticket_check.check_local(self.store, raffle_id, number, code)
        state = self.store.device()
        base = self._server_url or (state.server_url if state is not None else None)
        if not online or not base:
            return local
        self._transport(base)  # builds the default HTTP client when none was given
        assert self._http is not None
        params = {"raffle": raffle_id, "number": str(number), "code": code}
        try:
            resp = self._http.get(base.rstrip("/") + _ticket_check.CHECK_PATH, params=params, timeout=timeout_s)
        except httpx.HTTPError:
            self.note_online(False)
            return _ticket_check.offline(local, "it cannot be reached")
        self.note_online(resp.status_code < 500)
        try:
            body = resp.json() if resp.status_code == 200 else None
        except ValueError:
            body = None
        answer = _ticket_check.from_server(body, raffle_id, number) if isinstance(body, dict) else None
        if answer is None:
            return _ticket_check.offline(local, f"HTTP {resp.status_code}")
        return _ticket_check.combine(answer, local)

    # ------------------------------------------------------------------ end of shift (pos_client.shift)

    def start_shift(self, opening_float_cents: int) -> _shift.Shift:
        """Start a shift with ``opening_float_cents`` in the drawer, now; kept in the device's settings."""
        return _shift.start_shift(self.store, opening_float_cents, self._now_server_ms())

    def current_shift(self) -> _shift.Shift | None:
        """The shift started last on this device (:meth:`start_shift`), ``None`` when none was."""
        return _shift.current_shift(self.store)

    def shift_report(
        self, opening_float_cents: int | None = None, since_ms: int | None = None, *, currency: str | None = None
    ) -> _shift.ShiftReport:
        """The end-of-shift report from the device's own records (offline; see :mod:`pos_client.shift`):
        per seller and for the device, sales, voids, cash expected, card total, unsynced count.

        ``opening_float_cents`` and ``since_ms`` default to the current shift's (:meth:`start_shift`);
        without a shift, the float is 0 and the report covers every record.

        Raises:
            BadInput: a negative float or start, or sales in several currencies and no ``currency``.
            NotEnrolled: the device has no records to report on.
        """
        shift = self.current_shift()
        if opening_float_cents is None:
            opening_float_cents = shift.opening_float_cents if shift is not None else 0
        if since_ms is None:
            since_ms = shift.started_at_ms if shift is not None else 0
        return _shift.build_report(
            self.store,
            _shift.device_records(self.store),
            opening_float_cents=opening_float_cents,
            since_ms=since_ms,
            until_ms=self._now_server_ms(),
            currency=currency,
        )

    def print_shift_report(self, report: _shift.ShiftReport) -> str:
        """Print ``report`` on the device's receipt printer; returns the printer. A failure records
        ``printer.error`` but does not block selling (no receipt is owed).

        Raises:
            PrinterNotSet: no printer is set.
            PrintFailed: the printer failed.
        """
        spec = _printing.get_printer(self.store)
        if spec is None:
            raise PrinterNotSet("no printer is set: `tombola-pos printer set file:PATH | network:HOST[:PORT] | ...`")
        try:
            _printing.send(spec, _shift.render(report))
        except PrintFailed as exc:
            self.record_event("printer.error", {"report": "shift", "printer": str(exc.extra.get("printer", ""))})
            raise
        return str(spec)

    def _now_server_ms(self) -> int:
        """Now on the server's clock as the device estimates it (its wall clock before enrollment)."""
        return self.status().server_time_ms or self.clock.wall_ms()

    # ------------------------------------------------------------------ device events

    def record_event(
        self, type: str, detail: Mapping[str, Any] | None = None, *, seller_id: str = ""
    ) -> DeviceEvent | None:
        """Record a device event (GLI-31 significant event) durably; see :mod:`pos_client.events`.

        ``type`` is one of :data:`pos_client.events.EVENT_TYPES` (``app.start``, ``app.stop``,
        ``seller.sign_in``, ``seller.pin_failed``, ``printer.error``...); ``detail`` a small flat
        object (at most 8 members; strings are cut to 200 characters); never a PIN. The event
        goes to the server with the next sync. Before enrollment nothing is recorded (``None``).

        Raises:
            BadInput: an unknown type or a detail out of bounds.
        """
        return _events.record_event(self.store, self.clock, type, detail, seller_id=seller_id)

    def events(self, *, after_seq: int = 0, type: str | None = None, limit: int = 1000) -> list[DeviceEvent]:
        """The device's events after ``after_seq`` (of one ``type`` if given), oldest first."""
        return _events.list_events(self.store, after_seq=after_seq, type=type, limit=limit)

    def status(self) -> Status:
        """Pending records, lease, numbers per raffle, rejected records and alerts."""
        return _status.status(self.store, self.clock)

    def raffles(self) -> list[RaffleInfo]:
        """The raffles this device knows, as the server last sent them (prices, sales window, receipt members)."""
        with self.store.read() as conn:
            return _wallet.raffles(conn)

    def export(self, path: str | Path) -> ExportResult:
        """Write the signed NDJSON export of every record to ``path``."""
        return _export.export(self.store, self.clock, self._signing_key(), path)

    def records(self) -> Iterator[SaleRecord | VoidRecord]:
        """Every record of the chain, in ``seq`` order.

        Read in chunks, each in its own short read, so the caller may sell or sync while
        iterating (records are append-only and never change).
        """
        last = 0
        while True:
            with self.store.read() as conn:
                bodies = ledger.bodies_after(conn, last, 500)
            if not bodies:
                return
            for body in bodies:
                yield parse_record(body)
            last = int(bodies[-1]["seq"])
