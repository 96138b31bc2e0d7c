"""Errors the POS SDK raises, each with a stable machine-readable ``code``.

Every error is a :class:`sync_protocol.errors.TombolaError`, so the CLI (and the Kivy app) catch
one base class and print ``code: detail``. Codes are part of the SDK's contract: they never
change once released, whatever the classes are called. ``docs/pos-client.md`` lists them.

Two trees:

- :class:`SaleRefused` — the device refuses to sell or void *locally*, before anything is
  written (lease expired, raffle closed, no numbers left...).
- :class:`SyncFailed` — a sync did not complete (server unreachable, server refused the batch,
  the server's acknowledgement contradicts the device's chain).

Codes are unique across Tombola (``tests/test_error_codes.py``), so a local refusal never
shares a code with the server's rejection of a synced record: ``offline_lease_expired`` here
(nothing was written) is not ``lease_expired`` there (a record exists and must be refunded).
"""

from __future__ import annotations

from typing import Any

from sync_protocol.errors import TombolaError


class PosError(TombolaError):
    """Base of every error of the POS SDK."""

    code = "pos_error"


# --------------------------------------------------------------------------- device state


class NotEnrolled(PosError):
    """The device has no identity yet: run ``enroll`` first."""

    code = "not_enrolled"
    status = 409


class AlreadyEnrolled(PosError):
    """The database already belongs to an enrolled device."""

    code = "already_enrolled"
    status = 409


class StoreError(PosError):
    """The SQLite file cannot be used (written by a newer SDK, not a Tombola POS database...)."""

    code = "store_error"
    status = 500


class NotAPosDatabase(StoreError):
    """The file given as the device database is not one (another SQLite database, not SQLite at
    all); it was left as it was."""

    code = "not_a_pos_database"
    status = 422


class ServerKeyNotPinned(PosError):
    """The enrollment response does not carry the grant key the operator pinned out of band
    (``--server-key``): wrong server, or an answer altered on the way. Nothing was written."""

    code = "server_key_not_pinned"
    status = 409


class ExportFailed(PosError):
    """The export file could not be written."""

    code = "export_failed"
    status = 500


# --------------------------------------------------------------------------- local refusals


class SaleRefused(PosError):
    """The device refuses a sale or a void; nothing was written."""

    code = "sale_refused"
    status = 409


class DeviceRevoked(SaleRefused):
    """The server revoked this device: it sells nothing more (it may still sync)."""

    code = "revoked"
    status = 403


class LeaseExpired(SaleRefused):
    """More than ``lease_s`` since the last server time anchor: sync before selling again."""

    code = "offline_lease_expired"


class RaffleClosed(SaleRefused):
    """The raffle's sales close time has passed, or it is closed or cancelled."""

    code = "raffle_closed"


class SalesNotOpen(SaleRefused):
    code = "sales_not_open"


class ClockBackwards(SaleRefused):
    """The wall clock is earlier than a time the device already recorded, beyond the tolerance."""

    code = "clock_backwards"


class NumbersExhausted(SaleRefused):
    """No verified, non-revoked grant of the raffle has enough numbers left."""

    code = "numbers_exhausted"


class BadQuantity(SaleRefused):
    """The quantity is out of range, or not a price point and no amount was given."""

    code = "bad_quantity"
    status = 422


class BadAmount(SaleRefused):
    code = "bad_amount"
    status = 422


class BadPayment(SaleRefused):
    code = "bad_payment"
    status = 422


class BadInput(SaleRefused):
    """A seller id or a void reason out of bounds."""

    code = "bad_input"
    status = 422


class UnknownRaffle(SaleRefused):
    """The device has no information on the raffle (not at its venue, or not synced yet)."""

    code = "raffle_not_known"
    status = 404


class UnknownSale(SaleRefused):
    """A void names a sale this device did not make."""

    code = "sale_not_found"
    status = 404


class AlreadyVoided(SaleRefused):
    code = "already_voided"


class AlreadyRejected(SaleRefused):
    """A void names a sale the server rejected: there is nothing to void, refund it instead."""

    code = "already_rejected"


class OfflineSalesNotAllowed(SaleRefused):
    """The raffle sells only while the device reaches the server (``RaffleInfo.offline_sales`` false),
    and the server has not answered recently (Ontario AGCO POS 1.1.5)."""

    code = "offline_sales_not_allowed"
    status = 503


class SignInRequired(SaleRefused):
    """The device sells only for a signed-in seller (the app) and none is, or the idle lock fell."""

    code = "sign_in_required"
    status = 401


class SupervisorRequired(SaleRefused):
    """A void needs a supervisor's PIN on this device, and none was given (or the roster has no supervisor)."""

    code = "supervisor_required"
    status = 403


# --------------------------------------------------------------------------- sellers


class SignInRefused(PosError):
    """A seller's (or supervisor's) PIN was not accepted; nothing but the failure count was written."""

    code = "sign_in_refused"
    status = 403


class SellerUnknown(SignInRefused):
    """No such seller on this device: not on the venue's roster, disabled, or not synced yet."""

    code = "seller_unknown"
    status = 404


class PinWrong(SignInRefused):
    """The PIN is not the seller's; ``attempts_left`` says how many more before a lock."""

    code = "pin_wrong"


class SellerLocked(SignInRefused):
    """Too many wrong PINs in a row: the seller is locked for ``locked_for_s`` seconds."""

    code = "seller_locked"
    status = 423


class PrinterFailed(SaleRefused):
    """A receipt failed to print and its sale is not voided: reprint it or void the sale first
    (``sale_id`` names it; :mod:`pos_client.printing`)."""

    code = "printer_failed"


# --------------------------------------------------------------------------- receipts and printers


class PrintFailed(PosError):
    """The printer could not be reached or failed while printing; recorded, and selling is blocked
    until the receipt is reprinted or the sale voided."""

    code = "print_failed"
    status = 502


class PrinterUnsupported(PrintFailed):
    """The printer's kind cannot be reached from this device at all (``bluetooth:MAC`` on a Python
    or kernel without Bluetooth RFCOMM sockets); a print failure like the others: recorded, and
    selling is blocked until the receipt is reprinted on a printer that works or the sale voided."""

    code = "printer_unsupported"
    status = 501


class PrinterNotSet(PosError):
    """No printer is set on this device (``tombola-pos printer set ...``)."""

    code = "printer_not_set"
    status = 409


class BadPrinter(PosError):
    """A printer setting that is not ``file:PATH``, ``network:HOST[:PORT]``, ``usb:VID:PID``, ``serial:DEV``
    or ``bluetooth:MAC``."""

    code = "bad_printer"
    status = 422


# --------------------------------------------------------------------------- sync


class SyncFailed(PosError):
    """A sync did not complete; what was acknowledged before the failure stays acknowledged."""

    code = "sync_failed"
    status = 502


class ServerError(SyncFailed):
    """The server kept answering 5xx (or 429) until the retry budget ran out."""

    code = "server_unavailable"

    def __init__(self, detail: str, *, http_status: int, server_code: str = "", **extra: Any) -> None:
        super().__init__(detail, http_status=http_status, server_code=server_code, **extra)
        self.http_status = http_status
        self.server_code = server_code


class NetworkError(SyncFailed):
    """The server could not be reached (connection refused or dropped, timeout) after every retry.

    ``maybe_delivered``: some try got past connecting (its answer was lost, or a 5xx came back),
    so the server may have acted on the request although no answer arrived.
    """

    code = "network_error"
    maybe_delivered: bool = False


class ServerRefused(SyncFailed):
    """The server answered a 4xx that is not a sale rejection: a hard error, not retried.

    ``code`` on the instance is the server's own error code (``bad_signature``,
    ``sequence_gap``...), so ``diagnostics()`` prints what the server said;
    ``http_status`` is the HTTP status.
    """

    code = "server_refused"

    def __init__(self, detail: str, *, server_code: str, http_status: int, **extra: Any) -> None:
        super().__init__(detail, http_status=http_status, **extra)
        self.code = server_code or type(self).code  # type: ignore[misc]
        self.http_status = http_status


class SyncConflict(SyncFailed):
    """The server's acknowledgement does not match the device's own chain."""

    code = "sync_conflict"
    status = 409
