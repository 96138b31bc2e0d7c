"""Access tokens (JWT, RFC 7519, HS256 with ``pyjwt``), refresh and password-reset tokens.

An **access token** lasts :data:`ACCESS_TTL_S` (one hour). Its claims: ``sub`` (user id),
``role``, ``org`` (organisation id or null), ``venues`` (list of venue ids or null = all of
``org``), ``sid`` (the session: the login it comes from), ``typ`` (``access``), ``iat``, ``exp``
and ``jti``. Only HS256 with the installation's key is accepted (``alg: none`` or another
algorithm or key is refused), and ``exp``, ``iat``, ``sub``, ``sid`` and ``typ`` are required.

The server does not trust the claims for authorisation: on every request it reads the user, its
session and its role grants again (:func:`principal_of`), so disabling a user, a logout, a
refresh-token reuse or a role change takes effect at the next request, in every process. The
claims are for the client (which role am I, which venues). A role that needs TOTP (now: after a
promotion or a break-glass approval) is refused for a login made without it (``mfa_required``).

A token of ``typ`` ``mfa_setup`` (10 minutes) is what a login of a role that needs TOTP gets
before TOTP is set up: it opens ``/auth/mfa/setup`` and ``/auth/mfa/confirm`` only.

The key is ``TOMBOLA_JWT_KEY`` or, when unset, ``var/jwt-key`` (32 random bytes, URL-safe base64,
mode 0600), made on first use. Every server process of an installation must share it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select

from server.accounts.mfa import MFA_ROLES
from server.accounts.models import AuthSession, RoleGrant, UserAccount
from server.auth import JWT_SHAPE, Principal, TokenRefused
from server.context import Tombola

ACCESS_TTL_S = 3600
MFA_SETUP_TTL_S = 600
ALGORITHM = "HS256"
REFRESH_PREFIX = "tmr_"
RESET_PREFIX = "tmw_"

USER = UserAccount.__table__  # type: ignore[attr-defined]
SESSION = AuthSession.__table__  # type: ignore[attr-defined]
GRANT = RoleGrant.__table__  # type: ignore[attr-defined]

_key_lock = threading.Lock()
_key_cache: dict[str, bytes] = {}


def looks_like_jwt(token: str) -> bool:
    return JWT_SHAPE.match(token) is not None


def signing_key(app: Tombola) -> bytes:
    """The HS256 key: ``TOMBOLA_JWT_KEY``, else ``var/jwt-key`` (made once, 0600, shared by processes)."""
    if app.settings.jwt_key:
        return app.settings.jwt_key.encode()
    path = app.settings.jwt_key_file
    cache_key = str(path.resolve())
    with _key_lock:
        found = _key_cache.get(cache_key)
        if found is not None:
            return found
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        text = path.read_text().strip()
        if len(text) < 32:  # a process is writing it right now: it appears whole in a moment
            raise RuntimeError(f"{path} holds no key; remove it to have a new one made")
        _key_cache[cache_key] = text.encode()
        return _key_cache[cache_key]


def digest(token: str) -> str:
    """What the database keeps of a refresh or reset token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_reset_token() -> str:
    return RESET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Access:
    """What a user may do now: its role, organisation (None: installation-wide) and venues."""

    role: str
    org: str | None
    venues: frozenset[str] | None
    break_glass: bool = False


def access_of(grants: list[Any], now: int) -> Access | None:
    """The access the user's role grants give at ``now`` (None: no live grant).

    An unexpired break-glass grant (``approval_id``) wins: installation-wide admin. Otherwise a user
    holds one role (:func:`server.accounts.service.set_role` replaces them all): for one
    organisation or installation-wide, and limited to the venues of its grants when every grant
    names a venue.
    """
    live = [g for g in grants if g.revoked_at_ms is None and (g.expires_at_ms is None or g.expires_at_ms > now)]
    for g in live:
        if g.approval_id:
            return Access(role=g.role, org=g.organisation_id or None, venues=None, break_glass=True)
    if not live:
        return None
    first = live[0]
    venues = frozenset(g.venue_id for g in live) if all(g.venue_id for g in live) else None
    return Access(role=first.role, org=first.organisation_id or None, venues=venues)


def issue_access_token(app: Tombola, user_id: str, session_id: str, access: Access) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    now_s = app.now_ms() // 1000
    claims = {
        "sub": user_id,
        "role": access.role,
        "org": access.org,
        "venues": sorted(access.venues) if access.venues is not None else None,
        "sid": session_id,
        "typ": "access",
        "iat": now_s,
        "exp": now_s + ACCESS_TTL_S,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, signing_key(app), algorithm=ALGORITHM), ACCESS_TTL_S


def issue_mfa_setup_token(app: Tombola, user_id: str) -> str:
    now_s = app.now_ms() // 1000
    claims = {"sub": user_id, "typ": "mfa_setup", "iat": now_s, "exp": now_s + MFA_SETUP_TTL_S, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, signing_key(app), algorithm=ALGORITHM)


def decode(app: Tombola, token: str, typ: str) -> dict[str, Any]:
    """The claims of a token of type ``typ`` signed with this installation's key, checked against
    the app's clock; :class:`TokenRefused` (``expired`` or ``bad_access_token``) otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key(app),
            algorithms=[ALGORITHM],
            # exp and iat are checked below against the app's clock (tests move it; production: the system clock)
            options={"require": ["exp", "iat", "sub", "typ"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenRefused("bad_access_token") from exc
    exp, iat, sub = claims.get("exp"), claims.get("iat"), claims.get("sub")
    if not isinstance(exp, int) or not isinstance(iat, int) or not isinstance(sub, str) or claims.get("typ") != typ:
        raise TokenRefused("bad_access_token")
    now = app.now_ms()
    if now >= exp * 1000:
        raise TokenRefused("expired", user_id=sub)
    if iat * 1000 > now + app.settings.clock_skew_ms:  # issued in the future: not by this installation's clock
        raise TokenRefused("bad_access_token", user_id=sub)
    return claims


def principal_of(app: Tombola, token: str) -> Principal:
    """The :class:`server.auth.Principal` of a valid access token of a live session of an active user.

    Raises:
        TokenRefused: the token is invalid or expired, the session ended, the user is disabled or
            holds no live role.
    """
    claims = decode(app, token, "access")
    user_id = str(claims["sub"])
    session_id = claims.get("sid")
    if not isinstance(session_id, str):
        raise TokenRefused("bad_access_token", user_id)
    now = app.now_ms()
    with app.engine.connect() as conn:
        row = conn.execute(
            select(USER.c.status, SESSION.c.revoked_at_ms, SESSION.c.expires_at_ms, SESSION.c.mfa)
            .select_from(USER.join(SESSION, SESSION.c.user_id == USER.c.id))
            .where(USER.c.id == user_id, SESSION.c.id == session_id)
        ).first()
        if row is None:
            raise TokenRefused("bad_access_token", user_id)
        if row.status != "active":
            raise TokenRefused("user_disabled", user_id)
        if row.revoked_at_ms is not None or row.expires_at_ms <= now:
            raise TokenRefused("session_ended", user_id)
        grants = conn.execute(select(GRANT).where(GRANT.c.user_id == user_id, GRANT.c.revoked_at_ms.is_(None))).all()
    access = access_of(list(grants), now)
    if access is None:
        raise TokenRefused("unknown_role", user_id)
    if access.role in MFA_ROLES and not row.mfa:  # promoted (or break-glass) since a login without TOTP
        raise TokenRefused("mfa_required", user_id)
    return Principal(
        id=f"user:{user_id}",
        role=access.role,
        tenant=access.org,
        via="break_glass" if access.break_glass else "user",
        token_id=session_id,
        venues=access.venues,
    )
