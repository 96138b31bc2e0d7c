"""Errors of accounts and access, each with a stable code (``docs/errors.md``, ``docs/accounts.md``)."""

from __future__ import annotations

from server.errors import ServerError


class LoginFailed(ServerError):
    """The email or the password is wrong (one answer for both: no account enumeration)."""

    code = "login_failed"
    status = 401


class AccountLocked(ServerError):
    """Too many failed logins: refused until ``retry_after_s`` seconds have passed."""

    code = "account_locked"
    status = 429


class AccountDisabled(ServerError):
    code = "account_disabled"
    status = 403


class MfaRequired(ServerError):
    """The account has TOTP on: send ``totp`` (a 6-digit code) with the login."""

    code = "mfa_required"
    status = 401


class MfaSetupRequired(ServerError):
    """The role needs TOTP and the account has none yet: ``mfa_setup_token`` (10 minutes) opens
    ``/auth/mfa/setup`` and ``/auth/mfa/confirm``, which ends in a login."""

    code = "mfa_setup_required"
    status = 401


class MfaInvalid(ServerError):
    """The TOTP code is wrong, too old, or was used already."""

    code = "mfa_invalid"
    status = 401


class MfaAlreadyEnabled(ServerError):
    code = "mfa_already_enabled"
    status = 409


class WeakPassword(ServerError):
    """The password breaks the policy; ``missing`` lists what it lacks."""

    code = "weak_password"
    status = 422


class PasswordUnchanged(ServerError):
    """A password change to the password the account already has."""

    code = "password_unchanged"
    status = 422


class EmailTaken(ServerError):
    code = "email_taken"
    status = 409


class RefreshInvalid(ServerError):
    """The refresh token is unknown, expired, of an ended session, or was used already (then its
    whole session is revoked)."""

    code = "refresh_invalid"
    status = 401


class ResetTokenInvalid(ServerError):
    code = "reset_token_invalid"
    status = 400


class ApprovalNotPending(ServerError):
    """The two-person request was decided already, or expired undecided."""

    code = "approval_not_pending"
    status = 409
