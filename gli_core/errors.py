"""Errors of the certified core, each with a stable code (see ``docs/errors.md``)."""

from __future__ import annotations

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
