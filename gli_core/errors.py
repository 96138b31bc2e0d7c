"""Errors of the certified core, each with a stable code (see ``docs/errors.md``)."""

from __future__ import annotations

from sync_protocol import errors as protocol
from sync_protocol.errors import TombolaError


class CoreError(TombolaError):
    code = "core_error"
    status = 400


class RaffleNotFound(CoreError):
    code = "raffle_not_found"
    status = 404


class RaffleExists(CoreError):
    code = "raffle_exists"
    status = 409


class TicketNotFound(CoreError):
    code = "ticket_not_found"
    status = 404


class NumbersExhausted(CoreError):
    code = "raffle_numbers_exhausted"
    status = 409


class DeviceCapReached(CoreError):
    code = "device_cap_reached"
    status = 409


class RaffleNotOpen(CoreError):
    code = "raffle_not_open"
    status = 409


class InvalidStatusChange(CoreError):
    code = "invalid_status_change"
    status = 409


class SaleConflict(CoreError):
    """A sale id already recorded with other numbers: the device or server is confused."""

    code = "sale_conflict"
    status = 409


class NumberTaken(CoreError):
    """A ticket number of the recording is on record already (the unique constraint said so)."""

    code = "number_taken"
    status = 409


class RateLimited(CoreError):
    code = "rate_limited"
    status = 429


class NotEnoughNumbers(CoreError):
    """A grant of an exact size (an admin's extension) asks for more numbers than the raffle has
    left to grant; ``left`` says how many there are. Nothing is granted (no silent cut)."""

    code = "not_enough_numbers"
    status = 409


class NumberOutsideSpace(CoreError):
    """A recording names a number outside the raffle's number space (1..number_space)."""

    code = "number_outside_space"
    status = 422


# The core's own guards of sale rules the server judges first (sync_protocol's sale rejections):
# the same errors, raised by the core inside the recording's transaction when a caller asks it to
# record what the rule refuses. Nothing of the recording is written.


class TicketSetFrozen(protocol.TicketSetFrozen, CoreError):
    """The raffle's ticket set is frozen for its draw. The same error (code and meaning) as the sale
    rejection :class:`sync_protocol.errors.TicketSetFrozen`: the core's own guard of the rule."""


class SaleAfterClose(protocol.SaleAfterClose, CoreError):
    """A sale made at or after the raffle's sales close, or of a cancelled raffle."""


class SaleBeforeOpen(protocol.SaleBeforeOpen, CoreError):
    """A sale made before the raffle's sales opened."""


class OutsideGrant(protocol.OutsideGrant, CoreError):
    """A sale names a number outside every active grant of the recording device for the raffle."""
