"""Errors of the business side, each with a stable code (listed in ``docs/errors.md``)."""

from __future__ import annotations

from sync_protocol.errors import TombolaError


class ServerError(TombolaError):
    code = "server_error"
    status = 400


class NotFound(ServerError):
    code = "not_found"
    status = 404


class UnknownDevice(ServerError):
    code = "unknown_device"
    status = 401


class DeviceRevoked(ServerError):
    code = "device_revoked"
    status = 403


class EnrollmentCodeInvalid(ServerError):
    code = "enrollment_code_invalid"
    status = 403


class EnrollmentCodeUsed(ServerError):
    code = "enrollment_code_used"
    status = 409


class EnrollmentCodeExpired(ServerError):
    code = "enrollment_code_expired"
    status = 403


class InvalidRequest(ServerError):
    code = "invalid_request"
    status = 422


class NoHome(ServerError):
    """``TOMBOLA_HOME`` (default ``./var``) is not an installation: ``tombola init`` makes one."""

    code = "no_home"
    status = 404


class Unauthorized(ServerError):
    code = "unauthorized"
    status = 401


class Forbidden(ServerError):
    code = "forbidden"
    status = 403


class IngestFileInvalid(ServerError):
    code = "ingest_file_invalid"
    status = 422


class MethodNotAllowed(ServerError):
    code = "method_not_allowed"
    status = 405


class HttpRefused(ServerError):
    """A refusal by the HTTP framework itself other than 404 and 405 (the answer has its status)."""

    code = "http_error"
    status = 400


class ValueOutOfRange(ServerError):
    """The database refused a value of the request (a safety net: the models bound every field)."""

    code = "value_out_of_range"
    status = 422


class Conflict(ServerError):
    """The database refused the request as conflicting with what it holds (a safety net)."""

    code = "conflict"
    status = 409


class JurisdictionRule(ServerError):
    """A raffle, sale, grant or draw that the raffle's jurisdiction profile forbids
    (``server/jurisdictions.py``): ``rule`` names the rule, ``jurisdiction`` the profile; the
    sentence cites the rule's source (``docs/jurisdictions.md``)."""

    code = "jurisdiction_rule"
    status = 422


class TermsFixedAfterSale(ServerError):
    """The price, bundles or prizes of a raffle that has sold a ticket (WAC 230-11-320): ``field``."""

    code = "terms_fixed_after_sale"
    status = 409


class RaffleFieldFixed(ServerError):
    """A raffle field that cannot change once the raffle exists (the core holds it): ``field``."""

    code = "raffle_field_fixed"
    status = 409


class SecondPersonRequired(ServerError):
    """The approver of a two-person request must be a named person other than its requester."""

    code = "second_person_required"
    status = 403


class SecondApprovalRequired(ServerError):
    """An extension above its venue's cap needs a second admin's approval (request it, then approve)."""

    code = "second_approval_required"
    status = 409
