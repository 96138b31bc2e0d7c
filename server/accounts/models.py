"""Tables of accounts and access (business database, migration ``0008``; docs/accounts.md).

The two-person requests and the venues' extension caps are in :mod:`server.models` (``approval``,
``venue_extension_cap``), since the extension service consults them too.

Secrets are kept only as hashes: passwords (argon2id), refresh tokens and password-reset tokens
(SHA-256 of 32 random bytes, found by that hash). The TOTP secret is the exception (the server
must compute codes from it); it never leaves the server after ``/auth/mfa/setup``. Times are
integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field

from server.models import BusinessBase


def _ms(nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


class UserAccount(BusinessBase, table=True):
    """A person who logs in. ``email_key`` is the address lower-cased: unique, so two accounts
    never differ only by case. ``seller_id`` links a salesperson to the POS roster's seller."""

    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("email_key"),)

    id: str = Field(primary_key=True, max_length=32)
    email: str = Field(max_length=254)
    email_key: str = Field(max_length=254)
    password_hash: str = Field(max_length=200)
    status: str = Field(default="active", max_length=16)
    seller_id: str = Field(default="", max_length=32)
    created_at_ms: int = Field(sa_column=_ms())
    created_by: str = Field(max_length=100)
    password_changed_at_ms: int = Field(sa_column=_ms())
    disabled_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    disabled_by: str = Field(default="", max_length=100)
    disable_reason: str = Field(default="", max_length=500)
    last_login_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class RoleGrant(BusinessBase, table=True):
    """A role a user holds: installation-wide (``organisation_id`` ""), for one organisation, or for
    one venue of it (``venue_id``; a venue manager holds one grant per venue). A break-glass grant
    has ``expires_at_ms`` and the approval it came from."""

    __tablename__ = "role_grant"
    __table_args__ = (Index("ix_role_grant_user", "user_id", "revoked_at_ms"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="user_account.id", max_length=32)
    role: str = Field(max_length=16)
    organisation_id: str = Field(default="", max_length=32)
    venue_id: str = Field(default="", max_length=32)
    created_at_ms: int = Field(sa_column=_ms())
    created_by: str = Field(max_length=100)
    expires_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    approval_id: str = Field(default="", max_length=32)
    revoked_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoked_by: str = Field(default="", max_length=100)


class AuthSession(BusinessBase, table=True):
    """One login: the family of its rotating refresh tokens. Revoking it (logout, reuse of a used
    refresh token, a disabled user) stops its refresh tokens and its access tokens (``sid``)."""

    __tablename__ = "auth_session"
    __table_args__ = (Index("ix_auth_session_user", "user_id"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="user_account.id", max_length=32)
    created_at_ms: int = Field(sa_column=_ms())
    expires_at_ms: int = Field(sa_column=_ms())
    mfa: bool = False
    revoked_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    revoke_reason: str = Field(default="", max_length=64)


class RefreshToken(BusinessBase, table=True):
    """A refresh token of a session (only its SHA-256): usable once, then replaced."""

    __tablename__ = "refresh_token"
    __table_args__ = (UniqueConstraint("token_sha256"), Index("ix_refresh_token_session", "session_id"))

    id: str = Field(primary_key=True, max_length=32)
    session_id: str = Field(foreign_key="auth_session.id", max_length=32)
    token_sha256: str = Field(max_length=64)
    created_at_ms: int = Field(sa_column=_ms())
    expires_at_ms: int = Field(sa_column=_ms())
    used_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class TotpSecret(BusinessBase, table=True):
    """A user's TOTP secret (RFC 6238, base32); ``confirmed_at_ms`` None until a code proved it.
    ``last_step`` is the last time step accepted, so one code is never accepted twice."""

    __tablename__ = "totp_secret"

    user_id: str = Field(primary_key=True, foreign_key="user_account.id", max_length=32)
    secret: str = Field(max_length=64)
    created_at_ms: int = Field(sa_column=_ms())
    confirmed_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    last_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class LoginLockout(BusinessBase, table=True):
    """Failed logins of a user since the last success, and the lockout they caused."""

    __tablename__ = "login_lockout"

    user_id: str = Field(primary_key=True, foreign_key="user_account.id", max_length=32)
    failures: int = 0
    lockouts: int = 0
    locked_until_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    last_failure_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class PasswordReset(BusinessBase, table=True):
    """A one-time password-reset token (only its SHA-256), short-lived."""

    __tablename__ = "password_reset"
    __table_args__ = (Index("ix_password_reset_user", "user_id"),)

    token_sha256: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", max_length=32)
    created_at_ms: int = Field(sa_column=_ms())
    expires_at_ms: int = Field(sa_column=_ms())
    used_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
