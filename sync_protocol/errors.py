"""Device-facing errors: every rejection has a stable machine-readable ``code`` and a sentence.

The server renders these as ``{"error": code, "detail": sentence, ...}`` with ``status``. Codes
are part of the protocol (``docs/errors.md`` lists them all; a test checks the list), so they
never change once released, whatever the classes are called.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Exit statuses of both command lines (``tombola`` and ``tombola-pos``), docs/operations.md:
#: done; refused, or failed verification (``code: detail`` on stderr); usage (click's message).
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class TombolaError(Exception):
    """Base of every error Tombola reports to a caller.

    Attributes:
        code: stable machine-readable code.
        status: HTTP status the server answers with.
        detail: a sentence for people.
        extra: further machine-readable facts (``seq``, ``sale_id``, ``missing_seq``...).
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{"error": code, "detail": sentence, **extra}``."""
        return {"error": self.code, "detail": self.detail, **self.extra}

    def diagnostics(self) -> str:
        """A line for a terminal."""
        return f"{self.code}: {self.detail}"


class ProtocolError(TombolaError):
    """The message itself is unacceptable (format, version, signature, chain)."""

    code = "protocol_error"


class Malformed(ProtocolError):
    code = "malformed"
    status = 422


class UnsupportedVersion(ProtocolError):
    code = "unsupported_version"


class BadSignature(ProtocolError):
    code = "bad_signature"
    status = 401


class UnknownKey(ProtocolError):
    code = "unknown_key"
    status = 401


class BrokenChain(ProtocolError):
    code = "broken_chain"
    status = 409


class SequenceGap(ProtocolError):
    code = "sequence_gap"
    status = 409


class DeviceMismatch(ProtocolError):
    code = "device_mismatch"
    status = 403


class EventChainBroken(ProtocolError):
    """An event of the batch does not follow the event before it, or its hash does not match its
    content, or it differs from the event the server holds at its seq (names ``event_seq``)."""

    code = "event_chain_broken"
    status = 409


class EventSequenceGap(ProtocolError):
    """The batch's events do not start right after the last event the server holds, or skip one
    (``missing_event_seq``: the event the device must send from)."""

    code = "event_sequence_gap"
    status = 409


class SaleIdReused(ProtocolError):
    """A record's ``sale_id`` is the id of an earlier record (of the batch, or one the server
    holds, accepted or rejected). A sale id links tickets to their sale and must be unique, and
    the server cannot keep a second record under it, so the batch is refused whole."""

    code = "sale_id_reused"
    status = 409


class PayloadTooLarge(ProtocolError):
    code = "payload_too_large"
    status = 413


class GrantInvalid(ProtocolError):
    code = "grant_invalid"


class SaleRejected(TombolaError):
    """One record of a batch breaks a business rule; the batch is refused whole.

    The device marks the record as rejected and re-sends the batch listing it in
    ``rejected`` (see ``docs/sync-protocol.md``), so the chain goes on and nothing is lost.
    """

    code = "sale_rejected"
    status = 422


class OutsideGrant(SaleRejected):
    code = "outside_grant"


class TicketSoldTwice(SaleRejected):
    code = "ticket_sold_twice"
    status = 409


class SaleAfterClose(SaleRejected):
    code = "sale_after_close"


class SaleBeforeOpen(SaleRejected):
    code = "sale_before_open"


class LeaseExpired(SaleRejected):
    code = "lease_expired"


class UnknownRaffle(SaleRejected):
    code = "unknown_raffle"
    status = 404


class AmountMismatch(SaleRejected):
    code = "amount_mismatch"


class UnknownSale(SaleRejected):
    code = "unknown_sale"


class BadAnchor(SaleRejected):
    code = "bad_anchor"


class TicketSetFrozen(SaleRejected):
    """The record's raffle has its ticket set frozen for the draw: no sale or void can change it."""

    code = "ticket_set_frozen"
    status = 409


SALE_REJECTION_CODES: frozenset[str] = frozenset(
    cls.code
    for cls in (
        OutsideGrant,
        TicketSoldTwice,
        SaleAfterClose,
        SaleBeforeOpen,
        LeaseExpired,
        UnknownRaffle,
        AmountMismatch,
        UnknownSale,
        BadAnchor,
        TicketSetFrozen,
    )
)
