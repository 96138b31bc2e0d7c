"""Accounts: users, their roles, logins, sessions, TOTP, lockout and password resets.

One function per state change; the CLI (``tombola user ...``) and the HTTP API (``/auth/*``,
``/v1/users``) both call these. Each change and its audit event commit in one transaction
(invariant I7): ``auth.login`` for a login, ``auth.login_failed`` for a refused one (with the
user id when the account is known), ``auth.permission_changed`` (``action``: ``user_created``,
``role_changed``, ``user_disabled``, ``user_enabled``, ``seller_linked``, ``mfa_enabled``,
``mfa_reset``, ``password_reset_requested``, ``password_reset``, ``refresh_reused``) for the rest.
No event carries a password, a token, a TOTP secret or an email address of an unknown account.

``docs/accounts.md`` is the specification a client is written from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from server import audit, mail
from server.accounts import mfa, passwords, tokens
from server.accounts.errors import (
    AccountDisabled,
    AccountLocked,
    EmailTaken,
    LoginFailed,
    MfaAlreadyEnabled,
    MfaInvalid,
    MfaRequired,
    MfaSetupRequired,
    PasswordUnchanged,
    RefreshInvalid,
    ResetTokenInvalid,
)
from server.accounts.models import (
    AuthSession,
    LoginLockout,
    PasswordReset,
    RefreshToken,
    RoleGrant,
    TotpSecret,
    UserAccount,
)
from server.auth import ROLES, SYSTEM_ADMIN, FailureThrottle, Principal, TokenRefused
from server.context import Tombola, new_id
from server.errors import Forbidden, InvalidRequest, NotFound
from server.models import Organisation, Seller, Venue

USER = UserAccount.__table__  # type: ignore[attr-defined]
GRANT = RoleGrant.__table__  # type: ignore[attr-defined]
SESSION = AuthSession.__table__  # type: ignore[attr-defined]
REFRESH = RefreshToken.__table__  # type: ignore[attr-defined]
TOTP = TotpSecret.__table__  # type: ignore[attr-defined]
LOCKOUT = LoginLockout.__table__  # type: ignore[attr-defined]
RESET = PasswordReset.__table__  # type: ignore[attr-defined]
ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
SELLER = Seller.__table__  # type: ignore[attr-defined]

SESSION_TTL_MS = 30 * 86_400_000  # refresh tokens: 30 days from the login (spec 3.2)
RESET_TTL_MS = 30 * 60_000  # a password-reset token lasts 30 minutes
LOCK_AFTER = 5  # failed logins in a row that lock the account
LOCK_BASE_S = 60  # the first lock lasts a minute; each further one twice the last
LOCK_MAX_S = 3600
#: roles bound to an organisation (and, for the last two, to venues of it)
ORG_ROLES = frozenset({"business_admin", "venue_manager", "salesperson"})
VENUE_ROLES = frozenset({"venue_manager", "salesperson"})
#: the roles a business admin may give, within its own organisation
BUSINESS_GIVES = frozenset({"business_admin", "venue_manager", "salesperson", "customer"})
EMAIL_MAX = 254


def lock_seconds(lockouts: int) -> int:
    """How long the ``lockouts``-th lock (0-based) lasts: 60 s, doubling, at most an hour."""
    return int(min(LOCK_BASE_S * 2 ** min(lockouts, 16), LOCK_MAX_S))


def normalise_email(email: str) -> tuple[str, str]:
    """(the address as given, stripped; its key: lower-cased) or :class:`InvalidRequest`."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > EMAIL_MAX
        or any(c.isspace() or c in "\x00<>," for c in email)
    ):
        raise InvalidRequest("an email address such as name@example.org is needed", field="email")
    return email, email.lower()


def _email_ref(key: str) -> str:
    """What the audit log keeps of an address with no account: 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --- users and their roles -----------------------------------------------------------------------


def _check_scope(conn: Connection, role: str, organisation_id: str, venue_ids: Sequence[str]) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; roles: {', '.join(sorted(ROLES))}", field="role")
    if role in ORG_ROLES and not organisation_id:
        raise InvalidRequest(f"a {role} belongs to an organisation: give its id", field="organisation_id")
    if role in VENUE_ROLES and not venue_ids:
        raise InvalidRequest(f"a {role} works at venues: give at least one", field="venue_ids")
    if role == "salesperson" and len(venue_ids) != 1:
        raise InvalidRequest("a salesperson sells at one venue", field="venue_ids")
    if venue_ids and role not in VENUE_ROLES:
        raise InvalidRequest(f"a {role} is not limited to venues", field="venue_ids")
    if organisation_id and conn.execute(select(ORG.c.id).where(ORG.c.id == organisation_id)).first() is None:
        raise NotFound(f"no organisation {organisation_id}")
    for venue_id in venue_ids:
        org = conn.execute(select(VENUE.c.organisation_id).where(VENUE.c.id == venue_id)).scalar_one_or_none()
        if org is None or org != organisation_id:
            raise NotFound(f"no venue {venue_id} in organisation {organisation_id}")


def check_may_manage(principal: Principal, role: str, organisation_id: str) -> None:
    """Whether ``principal`` may create or change an account of ``role`` in ``organisation_id``:
    an installation-wide system admin any; a business admin the roles of :data:`BUSINESS_GIVES`
    in its own organisation; nobody else. :class:`Forbidden` otherwise."""
    if principal.role == SYSTEM_ADMIN and principal.tenant is None:
        return
    if principal.role == "business_admin" and principal.tenant is not None:
        if role in BUSINESS_GIVES and organisation_id == principal.tenant:
            return
        raise Forbidden(f"a business admin manages {', '.join(sorted(BUSINESS_GIVES))} of its own organisation")
    raise Forbidden(f"the {principal.role} role may not manage accounts")


def _grants(conn: Connection, user_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(GRANT).where(GRANT.c.user_id == user_id, GRANT.c.revoked_at_ms.is_(None)).order_by(GRANT.c.id)
        ).all()
    )


def _insert_grants(
    conn: Connection, user_id: str, role: str, organisation_id: str, venue_ids: Sequence[str], now: int, by: str
) -> None:
    for venue_id in list(dict.fromkeys(venue_ids)) or [""]:
        conn.execute(
            insert(GRANT).values(
                id=new_id("rg"),
                user_id=user_id,
                role=role,
                organisation_id=organisation_id,
                venue_id=venue_id,
                created_at_ms=now,
                created_by=by,
                expires_at_ms=None,
                approval_id="",
                revoked_at_ms=None,
                revoked_by="",
            )
        )


def _view(conn: Connection, row: Any, now: int) -> dict[str, Any]:
    """A user as operators see it: no password hash, no TOTP secret."""
    grants = _grants(conn, row.id)
    access = tokens.access_of(grants, now)
    totp = conn.execute(select(TOTP.c.confirmed_at_ms).where(TOTP.c.user_id == row.id)).first()
    lock = conn.execute(select(LOCKOUT).where(LOCKOUT.c.user_id == row.id)).first()
    return {
        "id": row.id,
        "email": row.email,
        "status": row.status,
        "role": access.role if access else None,
        "organisation_id": access.org if access else None,
        "venue_ids": sorted(access.venues) if access and access.venues is not None else None,
        "break_glass_until_ms": max(
            (g.expires_at_ms for g in grants if g.approval_id and g.expires_at_ms and g.expires_at_ms > now),
            default=None,
        ),
        "seller_id": row.seller_id or None,
        "mfa": bool(totp is not None and totp.confirmed_at_ms is not None),
        "locked_until_ms": (
            lock.locked_until_ms if lock and lock.locked_until_ms and lock.locked_until_ms > now else None
        ),
        "created_at_ms": row.created_at_ms,
        "created_by": row.created_by,
        "disabled_at_ms": row.disabled_at_ms,
        "last_login_at_ms": row.last_login_at_ms,
    }


def _user_row(conn: Connection, user_id: str, *, lock: bool = False) -> Any:
    query = select(USER).where(USER.c.id == user_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no user {user_id}")
    return row


def _tenant_of(conn: Connection, user_id: str, now: int) -> str:
    access = tokens.access_of(_grants(conn, user_id), now)
    return access.org or "" if access else ""


def create_user(
    app: Tombola,
    *,
    email: str,
    password: str,
    role: str,
    created_by: str,
    organisation_id: str = "",
    venue_ids: Sequence[str] = (),
    seller_id: str = "",
) -> dict[str, Any]:
    """Create an active account with one role (``auth.permission_changed``, ``user_created``).

    Raises:
        InvalidRequest: a bad address, role or scope (``field`` names it).
        WeakPassword: the password breaks the policy (``missing``).
        EmailTaken: an account with this address (in any case) exists.
        NotFound: no such organisation, venue (of that organisation) or seller.
    """
    email, key = normalise_email(email)
    passwords.check_policy(password)
    stored = passwords.hash_password(password)
    now = app.now_ms()
    user_id = new_id("usr")
    with app.engine.begin() as conn:
        _check_scope(conn, role, organisation_id, venue_ids)
        if conn.execute(select(USER.c.id).where(USER.c.email_key == key)).first() is not None:
            raise EmailTaken(f"an account with the address {email} exists")
        if seller_id:
            _check_seller(conn, seller_id, role, venue_ids)
        conn.execute(
            insert(USER).values(
                id=user_id,
                email=email,
                email_key=key,
                password_hash=stored,
                status="active",
                seller_id=seller_id,
                created_at_ms=now,
                created_by=created_by,
                password_changed_at_ms=now,
                disabled_at_ms=None,
                disabled_by="",
                disable_reason="",
                last_login_at_ms=None,
            )
        )
        conn.execute(insert(LOCKOUT).values(user_id=user_id, failures=0, lockouts=0))
        _insert_grants(conn, user_id, role, organisation_id, venue_ids, now, created_by)
        payload = {
            "action": "user_created",
            "user_id": user_id,
            "role": role,
            "organisation_id": organisation_id,
            "venue_ids": list(venue_ids),
            "seller_id": seller_id,
        }
        audit.record(conn, app, "auth.permission_changed", payload, tenant=organisation_id, actor=created_by)
        return _view(conn, _user_row(conn, user_id), now)


def _check_seller(conn: Connection, seller_id: str, role: str, venue_ids: Sequence[str]) -> None:
    if role != "salesperson":
        raise InvalidRequest("only a salesperson is linked to a seller of the POS roster", field="seller_id")
    row = conn.execute(select(SELLER.c.venue_id, SELLER.c.status).where(SELLER.c.id == seller_id)).first()
    if row is None or row.venue_id not in venue_ids:
        raise NotFound(f"no seller {seller_id} at venue {', '.join(venue_ids)}")
    taken = conn.execute(select(USER.c.id).where(USER.c.seller_id == seller_id)).first()
    if taken is not None:
        raise InvalidRequest(f"seller {seller_id} is the account {taken.id} already", field="seller_id")


def get_user(app: Tombola, user_id: str) -> dict[str, Any]:
    with app.engine.connect() as conn:
        return _view(conn, _user_row(conn, user_id), app.now_ms())


def find_user(app: Tombola, email: str) -> dict[str, Any]:
    """The account of ``email`` (any case), or :class:`NotFound`."""
    _, key = normalise_email(email)
    with app.engine.connect() as conn:
        row = conn.execute(select(USER).where(USER.c.email_key == key)).first()
        if row is None:
            raise NotFound(f"no account {email.strip()}")
        return _view(conn, row, app.now_ms())


def list_users(app: Tombola, *, organisation_id: str | None = None) -> list[dict[str, Any]]:
    """Every account, oldest first; with ``organisation_id``, only those whose role is in it."""
    now = app.now_ms()
    with app.engine.connect() as conn:
        rows = conn.execute(select(USER).order_by(USER.c.created_at_ms, USER.c.id)).all()
        views = [_view(conn, r, now) for r in rows]
    if organisation_id is not None:
        views = [v for v in views if v["organisation_id"] == organisation_id]
    return views


def set_role(
    app: Tombola, user_id: str, *, role: str, by: str, organisation_id: str = "", venue_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """Replace the user's role grants (``auth.permission_changed``, ``role_changed``, old and new).

    A live break-glass grant stays until it expires. The change applies from the user's next request.
    """
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = _user_row(conn, user_id, lock=True)
        _check_scope(conn, role, organisation_id, venue_ids)
        before = tokens.access_of([g for g in _grants(conn, user_id) if not g.approval_id], now)
        conn.execute(
            update(GRANT)
            .where(GRANT.c.user_id == user_id, GRANT.c.revoked_at_ms.is_(None), GRANT.c.approval_id == "")
            .values(revoked_at_ms=now, revoked_by=by)
        )
        _insert_grants(conn, user_id, role, organisation_id, venue_ids, now, by)
        payload = {
            "action": "role_changed",
            "user_id": user_id,
            "from_role": before.role if before else None,
            "from_organisation_id": before.org if before else None,
            "role": role,
            "organisation_id": organisation_id,
            "venue_ids": list(venue_ids),
        }
        audit.record(conn, app, "auth.permission_changed", payload, tenant=organisation_id, actor=by)
        return _view(conn, row, now)


def _revoke_sessions(conn: Connection, user_id: str, now: int, reason: str, *, keep: str | None = None) -> int:
    """End every live login of the account (but ``keep``); how many."""
    live = (SESSION.c.user_id == user_id) & SESSION.c.revoked_at_ms.is_(None)
    if keep is not None:
        live = live & (SESSION.c.id != keep)
    return int(conn.execute(update(SESSION).where(live).values(revoked_at_ms=now, revoke_reason=reason)).rowcount)


def disable_user(app: Tombola, user_id: str, *, reason: str, by: str) -> dict[str, Any]:
    """Disable the account: its sessions end and its access tokens stop at the next request.
    Idempotent (a second call changes and logs nothing)."""
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("disabling an account needs a reason", field="reason")
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = _user_row(conn, user_id, lock=True)
        if row.status != "disabled":
            conn.execute(
                update(USER)
                .where(USER.c.id == user_id)
                .values(status="disabled", disabled_at_ms=now, disabled_by=by, disable_reason=reason[:500])
            )
            ended = _revoke_sessions(conn, user_id, now, "user_disabled")
            payload = {"action": "user_disabled", "user_id": user_id, "reason": reason[:500], "sessions_ended": ended}
            audit.record(conn, app, "auth.permission_changed", payload, tenant=_tenant_of(conn, user_id, now), actor=by)
        return _view(conn, _user_row(conn, user_id), now)


def enable_user(app: Tombola, user_id: str, *, by: str) -> dict[str, Any]:
    """Enable a disabled account again (it logs in anew). Idempotent."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = _user_row(conn, user_id, lock=True)
        if row.status != "active":
            conn.execute(
                update(USER)
                .where(USER.c.id == user_id)
                .values(status="active", disabled_at_ms=None, disabled_by="", disable_reason="")
            )
            payload = {"action": "user_enabled", "user_id": user_id}
            audit.record(conn, app, "auth.permission_changed", payload, tenant=_tenant_of(conn, user_id, now), actor=by)
        return _view(conn, _user_row(conn, user_id), now)


def link_seller(app: Tombola, user_id: str, seller_id: str, *, by: str) -> dict[str, Any]:
    """Link a salesperson's account to its seller of the venue's POS roster (who signs in on the
    devices with a PIN, set with ``tombola seller add``, apart from the password)."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = _user_row(conn, user_id, lock=True)
        access = tokens.access_of(_grants(conn, user_id), now)
        if access is None or access.role != "salesperson":
            raise InvalidRequest("only a salesperson is linked to a seller of the POS roster", field="seller_id")
        _check_seller(conn, seller_id, access.role, sorted(access.venues or ()))
        conn.execute(update(USER).where(USER.c.id == user_id).values(seller_id=seller_id))
        payload = {"action": "seller_linked", "user_id": user_id, "seller_id": seller_id}
        audit.record(conn, app, "auth.permission_changed", payload, tenant=access.org or "", actor=by)
        return _view(conn, _user_row(conn, row.id), now)


def mfa_reset(app: Tombola, user_id: str, *, by: str) -> dict[str, Any]:
    """Remove the user's TOTP (a lost phone) and end its sessions; a role that needs TOTP sets it
    up again at its next login (``mfa_setup_required``)."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        _user_row(conn, user_id, lock=True)
        removed = conn.execute(delete(TOTP).where(TOTP.c.user_id == user_id)).rowcount
        ended = _revoke_sessions(conn, user_id, now, "mfa_reset")
        payload = {"action": "mfa_reset", "user_id": user_id, "had_mfa": bool(removed), "sessions_ended": ended}
        audit.record(conn, app, "auth.permission_changed", payload, tenant=_tenant_of(conn, user_id, now), actor=by)
        return _view(conn, _user_row(conn, user_id), now)


# --- logins --------------------------------------------------------------------------------------


def _fail(
    app: Tombola,
    reason: str,
    *,
    user_id: str | None,
    tenant: str = "",
    client: str,
    throttle: FailureThrottle | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Log a refused login (throttled per client like other authentication failures)."""
    left_out = throttle.admit(client or "unknown") if throttle is not None else 0
    if left_out is None:
        return
    payload: dict[str, Any] = {"reason": reason, "path": "/auth/login", "client": client[:100]} | (extra or {})
    if left_out:
        payload["suppressed"] = left_out
    if user_id is not None:
        payload["user_id"] = user_id
    audit.record_now(app, "auth.login_failed", payload, tenant=tenant, actor=f"user:{user_id or 'anonymous'}")


def _count_failure(app: Tombola, user_id: str, tenant: str, reason: str, client: str) -> int | None:
    """Count a failed login of a known user (atomically, in the database, so it holds across
    processes), lock the account at :data:`LOCK_AFTER`, and log it in the same transaction.
    Returns the seconds of a lock this failure started, else None."""
    now = app.now_ms()
    locked_for = None
    with app.engine.begin() as conn:
        conn.execute(
            update(LOCKOUT)
            .where(LOCKOUT.c.user_id == user_id)
            .values(failures=LOCKOUT.c.failures + 1, last_failure_at_ms=now)
        )
        row = conn.execute(select(LOCKOUT).where(LOCKOUT.c.user_id == user_id)).one()
        if row.failures >= LOCK_AFTER:
            locked_for = lock_seconds(row.lockouts)
            conn.execute(
                update(LOCKOUT)
                .where(LOCKOUT.c.user_id == user_id)
                .values(failures=0, lockouts=row.lockouts + 1, locked_until_ms=now + locked_for * 1000)
            )
        payload: dict[str, Any] = {"reason": reason, "path": "/auth/login", "client": client[:100], "user_id": user_id}
        if locked_for is not None:
            payload["locked_for_s"] = locked_for
        audit.record(conn, app, "auth.login_failed", payload, tenant=tenant, actor=f"user:{user_id}")
    audit.drain(app)
    return locked_for


def _refuse(app: Tombola, user_id: str, tenant: str, reason: str, client: str, refusal: Exception) -> NoReturn:
    """A wrong secret of a known account (password or TOTP code): count it toward the lockout, then
    raise ``AccountLocked`` when this failure locked the account, else ``refusal``."""
    locked_for = _count_failure(app, user_id, tenant, reason, client)
    if locked_for is not None:
        raise _locked(locked_for * 1000)
    raise refusal


def _locked(retry_ms: int) -> AccountLocked:
    seconds = max(1, -(-retry_ms // 1000))
    return AccountLocked(
        f"too many failed logins: the account is locked for {seconds} more seconds", retry_after_s=seconds
    )


def _start_session(conn: Connection, app: Tombola, user_id: str, *, with_mfa: bool) -> tuple[str, str, int]:
    """A new session (login) and its first refresh token: (session id, refresh token, expiry)."""
    now = app.now_ms()
    session_id = new_id("ses", 16)
    expires = now + SESSION_TTL_MS
    conn.execute(
        insert(SESSION).values(
            id=session_id,
            user_id=user_id,
            created_at_ms=now,
            expires_at_ms=expires,
            mfa=with_mfa,
            revoked_at_ms=None,
            revoke_reason="",
        )
    )
    refresh = _new_refresh(conn, session_id, now, expires)
    return session_id, refresh, expires


def _new_refresh(conn: Connection, session_id: str, now: int, expires: int) -> str:
    token = tokens.new_refresh_token()
    conn.execute(
        insert(REFRESH).values(
            id=new_id("rt", 16),
            session_id=session_id,
            token_sha256=tokens.digest(token),
            created_at_ms=now,
            expires_at_ms=expires,
            used_at_ms=None,
        )
    )
    return token


def _tokens_answer(
    app: Tombola,
    user: Any,
    session_id: str,
    refresh: str,
    refresh_expires: int,
    access: tokens.Access,
    *,
    with_mfa: bool,
) -> dict[str, Any]:
    access_token, ttl = tokens.issue_access_token(app, user.id, session_id, access)
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "refresh_expires_at_ms": refresh_expires,
        "user_id": user.id,
        "email": user.email,
        "role": access.role,
        "organisation_id": access.org,
        "venue_ids": sorted(access.venues) if access.venues is not None else None,
        "mfa": with_mfa,
    }


def login(
    app: Tombola,
    email: str,
    password: str,
    *,
    totp: str | None = None,
    client: str = "",
    throttle: FailureThrottle | None = None,
) -> dict[str, Any]:
    """Log in with email and password (and a TOTP code when the account has one): a one-hour
    access token and a refresh token of a new session. Logs ``auth.login`` or ``auth.login_failed``.

    Raises:
        LoginFailed: unknown email or wrong password (the same answer, in about the same time).
        AccountLocked: too many failures (``retry_after_s``); the password is not even tried.
        AccountDisabled: the password is right and the account is disabled.
        MfaRequired / MfaInvalid: the account has TOTP and the code is missing / wrong or used.
        MfaSetupRequired: the role needs TOTP and none is set up (``mfa_setup_token``).
    """
    try:
        _, key = normalise_email(email)
    except InvalidRequest:
        key = email.strip().lower()[:EMAIL_MAX]
    now = app.now_ms()
    with app.engine.connect() as conn:
        user = conn.execute(select(USER).where(USER.c.email_key == key)).first()
        lock = conn.execute(select(LOCKOUT).where(LOCKOUT.c.user_id == user.id)).first() if user else None
        grants = _grants(conn, user.id) if user else []
        secret = conn.execute(select(TOTP).where(TOTP.c.user_id == user.id)).first() if user else None
    if user is None:
        passwords.spend_dummy(password)
        ref = {"email_ref": _email_ref(key)}
        _fail(app, "unknown_email", user_id=None, client=client, throttle=throttle, extra=ref)
        raise LoginFailed("the email or the password is wrong")
    access = tokens.access_of(grants, now)
    tenant = access.org or "" if access else ""
    if lock is not None and lock.locked_until_ms is not None and lock.locked_until_ms > now:
        _fail(app, "locked", user_id=user.id, tenant=tenant, client=client, throttle=throttle)
        raise _locked(lock.locked_until_ms - now)
    if not passwords.verify(user.password_hash, password):
        _refuse(app, user.id, tenant, "bad_password", client, LoginFailed("the email or the password is wrong"))
    if user.status != "active":
        _fail(app, "user_disabled", user_id=user.id, tenant=tenant, client=client, throttle=throttle)
        raise AccountDisabled("this account is disabled; ask an administrator")
    if access is None:
        _fail(app, "unknown_role", user_id=user.id, tenant=tenant, client=client, throttle=throttle)
        raise AccountDisabled("this account holds no role; ask an administrator")
    confirmed = secret is not None and secret.confirmed_at_ms is not None
    step = None
    if secret is not None and secret.confirmed_at_ms is not None:
        if not totp:
            _fail(app, "mfa_required", user_id=user.id, tenant=tenant, client=client, throttle=throttle)
            raise MfaRequired("this account has a second factor: send the 6-digit code of its authenticator as totp")
        step = mfa.accepted_step(secret.secret, totp, now, secret.last_step)
        if step is None:
            wrong = MfaInvalid("the code is wrong, too old, or was used already; wait for the next one")
            _refuse(app, user.id, tenant, "mfa_invalid", client, wrong)
    elif access.role in mfa.MFA_ROLES:
        _fail(app, "mfa_setup_required", user_id=user.id, tenant=tenant, client=client, throttle=throttle)
        raise MfaSetupRequired(
            f"the {access.role} role needs a second factor: set it up with mfa_setup_token "
            "(POST /auth/mfa/setup, then /auth/mfa/confirm with a code), within 10 minutes",
            mfa_setup_token=tokens.issue_mfa_setup_token(app, user.id),
        )
    new_hash = passwords.hash_password(password) if passwords.needs_rehash(user.password_hash) else None
    return _complete_login(app, user, access, client=client, step=step, with_mfa=confirmed, new_hash=new_hash)


def _complete_login(
    app: Tombola,
    user: Any,
    access: tokens.Access,
    *,
    client: str,
    step: int | None,
    with_mfa: bool,
    new_hash: str | None = None,
) -> dict[str, Any]:
    now = app.now_ms()
    with app.engine.begin() as conn:
        if step is not None:
            used = conn.execute(
                update(TOTP).where(TOTP.c.user_id == user.id, TOTP.c.last_step < step).values(last_step=step)
            ).rowcount
            if not used:  # another login took this code a moment ago
                raise MfaInvalid("the code was used already; wait for the next one")
        values: dict[str, Any] = {"last_login_at_ms": now}
        if new_hash is not None:  # argon2's parameters grew since the password was set
            values["password_hash"] = new_hash
        conn.execute(update(USER).where(USER.c.id == user.id).values(**values))
        conn.execute(
            update(LOCKOUT).where(LOCKOUT.c.user_id == user.id).values(failures=0, lockouts=0, locked_until_ms=None)
        )
        session_id, refresh, expires = _start_session(conn, app, user.id, with_mfa=with_mfa)
        payload = {
            "user_id": user.id,
            "role": access.role,
            "via": "break_glass" if access.break_glass else "password",
            "mfa": with_mfa,
            "session_id": session_id,
            "path": "/auth/login",
            "client": client[:100],
        }
        audit.record(conn, app, "auth.login", payload, tenant=access.org or "", actor=f"user:{user.id}")
    return _tokens_answer(app, user, session_id, refresh, expires, access, with_mfa=with_mfa)


def refresh(app: Tombola, refresh_token: str, *, client: str = "") -> dict[str, Any]:
    """Trade a refresh token for a new access token and a new refresh token (rotation).

    A refresh token works once. Presenting one that was used already is taken as theft: the
    whole session (every refresh token of the login, and its access tokens) is revoked, and
    ``auth.permission_changed`` (``refresh_reused``) is logged.

    Raises:
        RefreshInvalid: unknown, expired, used (session revoked now) or of an ended session.
        AccountDisabled: the user was disabled.
    """
    now = app.now_ms()
    reused = None
    with app.engine.begin() as conn:
        row = conn.execute(
            select(REFRESH, SESSION.c.user_id, SESSION.c.revoked_at_ms, SESSION.c.mfa)
            .select_from(REFRESH.join(SESSION, SESSION.c.id == REFRESH.c.session_id))
            .where(REFRESH.c.token_sha256 == tokens.digest(refresh_token))
        ).first()
        if row is None:
            raise RefreshInvalid("the refresh token is not known here")
        if row.revoked_at_ms is not None:
            raise RefreshInvalid("the session of this refresh token has ended; log in again")
        if row.expires_at_ms <= now:
            raise RefreshInvalid("the refresh token has expired; log in again")
        taken = conn.execute(
            update(REFRESH).where(REFRESH.c.id == row.id, REFRESH.c.used_at_ms.is_(None)).values(used_at_ms=now)
        ).rowcount
        if not taken:
            reused = row
        else:
            user = _user_row(conn, row.user_id)
            if user.status != "active":
                raise AccountDisabled("this account is disabled; ask an administrator")
            access = tokens.access_of(_grants(conn, user.id), now)
            if access is None:
                raise AccountDisabled("this account holds no role; ask an administrator")
            new_token = _new_refresh(conn, row.session_id, now, row.expires_at_ms)
    if reused is not None:
        with app.engine.begin() as conn:
            conn.execute(
                update(SESSION)
                .where(SESSION.c.id == reused.session_id, SESSION.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=now, revoke_reason="refresh_reused")
            )
            payload = {
                "action": "refresh_reused",
                "user_id": reused.user_id,
                "session_id": reused.session_id,
                "client": client[:100],
            }
            tenant = _tenant_of(conn, reused.user_id, now)
            audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{reused.user_id}")
        audit.drain(app)
        raise RefreshInvalid("this refresh token was used already: the session is revoked; log in again")
    if access is None:  # pragma: no cover - refused above
        raise AccountDisabled("this account holds no role; ask an administrator")
    return _tokens_answer(app, user, row.session_id, new_token, row.expires_at_ms, access, with_mfa=bool(row.mfa))


def logout(app: Tombola, session_id: str, *, user_id: str) -> None:
    """End the session: its refresh tokens and access tokens stop working. Idempotent."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        ended = conn.execute(
            update(SESSION)
            .where(SESSION.c.id == session_id, SESSION.c.user_id == user_id, SESSION.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now, revoke_reason="logout")
        ).rowcount
        if ended:
            payload = {"action": "logout", "user_id": user_id, "session_id": session_id}
            tenant = _tenant_of(conn, user_id, now)
            audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{user_id}")


def session_of(principal: Principal) -> tuple[str, str]:
    """(user id, session id) of a principal that logged in as a user, else :class:`Forbidden`."""
    person = principal.via in ("user", "break_glass") and principal.id.startswith("user:")
    if not person or principal.token_id is None:
        raise Forbidden("this call is for a person logged in with /auth/login, not an API token")
    return principal.id.removeprefix("user:"), principal.token_id


# --- TOTP set-up ---------------------------------------------------------------------------------


def mfa_setup(app: Tombola, user_id: str) -> dict[str, Any]:
    """Start (or restart) TOTP set-up: a new secret and its ``otpauth://`` URI. Not in force until
    :func:`mfa_confirm` gets a valid code. Refused (``mfa_already_enabled``) once confirmed:
    an administrator's ``mfa-reset`` comes first."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        user = _user_row(conn, user_id, lock=True)
        if user.status != "active":
            raise AccountDisabled("this account is disabled; ask an administrator")
        existing = conn.execute(select(TOTP).where(TOTP.c.user_id == user_id)).first()
        if existing is not None and existing.confirmed_at_ms is not None:
            raise MfaAlreadyEnabled("this account has a second factor already; an administrator can reset it")
        secret = mfa.new_secret()
        conn.execute(delete(TOTP).where(TOTP.c.user_id == user_id))
        conn.execute(
            insert(TOTP).values(user_id=user_id, secret=secret, created_at_ms=now, confirmed_at_ms=None, last_step=0)
        )
    return {"secret": secret, "provisioning_uri": mfa.provisioning_uri(secret, user.email), "digits": 6, "period": 30}


def mfa_confirm(app: Tombola, user_id: str, code: str, *, start_session: bool, client: str = "") -> dict[str, Any]:
    """Turn TOTP on with a code of the secret from :func:`mfa_setup` (``mfa_enabled`` logged).
    With ``start_session`` (the set-up of a first login) the answer is a login, as ``/auth/login``'s."""
    now = app.now_ms()
    with app.engine.begin() as conn:
        user = _user_row(conn, user_id, lock=True)
        if user.status != "active":
            raise AccountDisabled("this account is disabled; ask an administrator")
        secret = conn.execute(select(TOTP).where(TOTP.c.user_id == user_id)).first()
        if secret is None:
            raise MfaInvalid("no second factor is being set up: call /auth/mfa/setup first")
        if secret.confirmed_at_ms is not None:
            raise MfaAlreadyEnabled("this account has a second factor already")
        step = mfa.accepted_step(secret.secret, code, now, secret.last_step)
        if step is None:
            raise MfaInvalid("the code is wrong or too old; check the authenticator's clock and try the next one")
        conn.execute(update(TOTP).where(TOTP.c.user_id == user_id).values(confirmed_at_ms=now, last_step=step))
        access = tokens.access_of(_grants(conn, user_id), now)
        payload = {"action": "mfa_enabled", "user_id": user_id}
        tenant = access.org or "" if access else ""
        audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{user_id}")
    if not start_session:
        return {"mfa": True}
    if access is None:
        raise AccountDisabled("this account holds no role; ask an administrator")
    return _complete_login(app, user, access, client=client, step=None, with_mfa=True)


def mfa_setup_user(app: Tombola, setup_token: str) -> str:
    """The user id of a valid ``mfa_setup`` token, or :class:`server.errors.Unauthorized`."""
    from server.errors import Unauthorized

    try:
        claims = tokens.decode(app, setup_token, "mfa_setup")
    except TokenRefused as exc:
        raise Unauthorized("the MFA set-up token is not valid or has expired; log in again") from exc
    return str(claims["sub"])


def demo_totp_code(app: Tombola, email: str) -> str:
    """The current TOTP code of an account the demo made (``tombola user totp``); refused for others."""
    _, key = normalise_email(email)
    with app.engine.connect() as conn:
        row = conn.execute(
            select(USER.c.created_by, TOTP.c.secret)
            .select_from(USER.join(TOTP, TOTP.c.user_id == USER.c.id))
            .where(USER.c.email_key == key)
        ).first()
    if row is None:
        raise NotFound(f"no account {email} with a second factor")
    if row.created_by != DEMO_ACTOR:
        raise Forbidden("codes are shown only for the demo's accounts; real accounts use their authenticator")
    return mfa.code_at(row.secret, app.now_ms())


DEMO_ACTOR = "service:demo"


# --- password reset ------------------------------------------------------------------------------


def request_password_reset(app: Tombola, email: str, *, client: str = "") -> None:
    """Mail a one-time reset token to the account of ``email``, if there is an active one.

    The caller answers the same (202) either way, so nobody learns which addresses have accounts.
    A new request voids the account's earlier unused tokens.
    """
    try:
        _, key = normalise_email(email)
    except InvalidRequest:
        return
    now = app.now_ms()
    with app.engine.begin() as conn:
        user = conn.execute(select(USER).where(USER.c.email_key == key)).first()
        if user is None or user.status != "active":
            return
        conn.execute(
            update(RESET).where(RESET.c.user_id == user.id, RESET.c.used_at_ms.is_(None)).values(used_at_ms=now)
        )
        token = tokens.new_reset_token()
        conn.execute(
            insert(RESET).values(
                token_sha256=tokens.digest(token),
                user_id=user.id,
                created_at_ms=now,
                expires_at_ms=now + RESET_TTL_MS,
                used_at_ms=None,
            )
        )
        payload = {"action": "password_reset_requested", "user_id": user.id, "client": client[:100]}
        tenant = _tenant_of(conn, user.id, now)
        audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{user.id}")
        # mailed inside the transaction: a failed mail leaves no token behind
        mail.send_mail(
            app,
            user.email,
            "Reset your Tombola password",
            "Someone (we hope you) asked to reset the password of this Tombola account.\n\n"
            f"Reset token: {token}\n\n"
            f"Send it with a new password to POST {app.settings.url()}/auth/password/reset/confirm\n"
            f'(JSON: {{"token": "...", "new_password": "..."}}). It works once, for '
            f"{RESET_TTL_MS // 60_000} minutes.\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n",
        )


def confirm_password_reset(app: Tombola, token: str, new_password: str) -> None:
    """Set a new password with a reset token: the token is spent, every session of the account
    ends, and the lockout is lifted (``password_reset`` logged).

    Raises:
        WeakPassword: the new password breaks the policy (the token stays usable).
        ResetTokenInvalid: unknown, used or expired token.
    """
    passwords.check_policy(new_password)
    stored = passwords.hash_password(new_password)
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = conn.execute(select(RESET).where(RESET.c.token_sha256 == tokens.digest(token))).first()
        if row is None or row.used_at_ms is not None or row.expires_at_ms <= now:
            raise ResetTokenInvalid("the reset token is unknown, used or expired; ask for a new one")
        spent = conn.execute(
            update(RESET)
            .where(RESET.c.token_sha256 == row.token_sha256, RESET.c.used_at_ms.is_(None))
            .values(used_at_ms=now)
        ).rowcount
        if not spent:
            raise ResetTokenInvalid("the reset token was used already; ask for a new one")
        conn.execute(
            update(USER).where(USER.c.id == row.user_id).values(password_hash=stored, password_changed_at_ms=now)
        )
        conn.execute(
            update(LOCKOUT).where(LOCKOUT.c.user_id == row.user_id).values(failures=0, lockouts=0, locked_until_ms=None)
        )
        ended = _revoke_sessions(conn, row.user_id, now, "password_reset")
        payload = {"action": "password_reset", "user_id": row.user_id, "sessions_ended": ended}
        tenant = _tenant_of(conn, row.user_id, now)
        audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{row.user_id}")


def change_password(
    app: Tombola, user_id: str, session_id: str, current: str, new: str, *, client: str = ""
) -> dict[str, Any]:
    """A person changes their own password, proving the current one: every *other* session of the
    account ends (a stolen login stops working), this one stays, and ``password_changed`` is
    logged. A wrong current password counts toward the lockout like a failed login.

    Raises:
        AccountLocked: too many failures (the current password is not even tried).
        LoginFailed: the current password is wrong.
        WeakPassword: the new password breaks the policy.
        PasswordUnchanged: the new password is the current one.
    """
    now = app.now_ms()
    with app.engine.connect() as conn:
        user = _user_row(conn, user_id)
        lock = conn.execute(select(LOCKOUT).where(LOCKOUT.c.user_id == user_id)).first()
        tenant = _tenant_of(conn, user_id, now)
    if lock is not None and lock.locked_until_ms is not None and lock.locked_until_ms > now:
        raise _locked(lock.locked_until_ms - now)
    if not passwords.verify(user.password_hash, current):
        _refuse(app, user_id, tenant, "bad_password", client, LoginFailed("the current password is wrong"))
    passwords.check_policy(new)
    if new == current:
        raise PasswordUnchanged("the new password is the current one: choose another")
    stored = passwords.hash_password(new)
    with app.engine.begin() as conn:
        conn.execute(update(USER).where(USER.c.id == user_id).values(password_hash=stored, password_changed_at_ms=now))
        ended = _revoke_sessions(conn, user_id, now, "password_changed", keep=session_id)
        payload = {"action": "password_changed", "user_id": user_id, "sessions_ended": ended}
        audit.record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=f"user:{user_id}")
    audit.drain(app)
    return {"status": "password_changed", "sessions_ended": ended}
