"""Who calls the HTTP API: principals, roles, API tokens and break-glass access.

A request carries ``Authorization: Bearer <token>``. Three kinds of token authenticate:

* the **installation admin token** (``TOMBOLA_ADMIN_TOKEN`` or ``var/admin-token``): principal
  ``user:admin``, role ``admin``, installation-wide — the system admin;
* an **API token** (``tmb_`` + 32 random bytes, URL-safe base64) from the ``api_token`` table:
  a role of :data:`ROLES`, installation-wide (``tenant`` ``""``) or bound to one organisation
  (the audit log's tenant). Only its SHA-256 is stored; the token is found by that hash, so
  nothing of the token is compared byte by byte. Principal ``user:<token id>``;
* a **person's access token** (a JWT from ``POST /auth/login``), read by :mod:`server.accounts`
  (which registers its reader with :func:`set_user_token_reader`): principal ``user:<user id>``,
  the role, organisation and venues of the person's grants as they are now (``docs/accounts.md``).

A refused authentication (no token, unknown, revoked, expired) answers 401 ``unauthorized``
and logs ``auth.login_failed`` with the reason, the path and the client address — at most
:data:`FAILED_PER_CLIENT` per client and :data:`FAILED_OVERALL` in all per process
(:class:`FailureThrottle`), the next logged event counting the ones left out (``suppressed``).
A successful use of an API token moves its ``last_used_at_ms`` at most once a minute and logs
``auth.login`` at most once an hour per token (once a minute for break-glass tokens); both are
conditional updates of the token's row, so they hold across server processes. The installation
admin token has no row: its uses are not logged as ``auth.login`` (its actions are, as
``user:admin``).

Creating and revoking a token logs ``auth.permission_changed`` in the same transaction;
break-glass (a short-lived installation-wide admin token, :func:`break_glass`) logs
``auth.break_glass`` with the reason and the expiry. No event ever carries a token, nor its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import or_, select, update
from sqlalchemy.engine import Row

from gli_core.api import AuditEvent
from server.audit import drain, record, record_now
from server.context import Tombola, new_id
from server.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from server.models import ApiToken, Organisation
from sync_protocol.errors import TombolaError

TOKEN = ApiToken.__table__  # type: ignore[attr-defined]
ORG = Organisation.__table__  # type: ignore[attr-defined]

#: The roles a token can hold, with what they may do. A new role (e.g. ``operator``) is added here
#: and given to routes with :func:`server.deps.require_role`; the table stores the name.
ROLES: dict[str, str] = {
    "admin": (
        "system admin (GLI admin): every admin and core route when installation-wide; "
        "only its organisation's audit entries otherwise"
    ),
    "business_admin": "manages one organisation (tenant): its venues, raffles, devices, sellers, users and reports",
    "venue_manager": "manages the venues named on the grant (Principal.venues) of one organisation",
    "salesperson": "sells on a POS (signs in with a PIN); reads its own sales",
    "customer": "buys tickets online and reads its own tickets",
    "auditor": (
        "reads the audit log (checkpoints, entries, proofs) and reports — its organisation's only when bound to one"
    ),
}
#: The spec's role names (section 3.2, 5.2) and the stored name of each: "system admin" is ``admin``.
SYSTEM_ADMIN = "admin"
#: Roles that may read the audit log (``server.deps.audit_scope_of``).
AUDIT_ROLES = frozenset({"admin", "auditor"})

TOKEN_PREFIX = "tmb_"  # noqa: S105 - the prefix that marks a Tombola API token, not a secret
INSTALLATION_ADMIN_ID = "user:admin"
LAST_USED_EVERY_MS = 60_000
LOGIN_LOG_EVERY_MS = 3_600_000
BREAK_GLASS_LOGIN_EVERY_MS = 60_000
BREAK_GLASS_MAX_MINUTES = 240  # spec 5.2: emergency access expires after at most four hours
FAILED_PER_CLIENT = "10/minute"
FAILED_OVERALL = "120/minute"
FAILURE_REASONS = (
    "no_token",
    "unknown_token",
    "revoked",
    "expired",
    "unknown_role",
    "bad_access_token",
    "user_disabled",
    "session_ended",
    "mfa_required",
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``id`` is its audit actor; ``tenant`` None means installation-wide.

    ``via`` is ``admin_token`` (the installation admin token), ``api_token``, ``user`` (a person's
    access token from ``/auth/login``; ``token_id`` is then its session) or ``break_glass`` (an
    emergency token, or a person holding an approved break-glass grant).
    """

    id: str
    role: str
    tenant: str | None
    via: str
    token_id: str | None = None
    #: the venues a venue manager or salesperson is limited to; None: every venue of ``tenant``
    venues: frozenset[str] | None = None

    @property
    def installation_wide(self) -> bool:
        return self.tenant is None

    def sees_venue(self, organisation_id: str, venue_id: str) -> bool:
        """Whether this principal may see (and, role permitting, act on) ``venue_id`` of ``organisation_id``."""
        if self.tenant is not None and self.tenant != organisation_id:
            return False
        return self.venues is None or venue_id in self.venues


INSTALLATION_ADMIN = Principal(id=INSTALLATION_ADMIN_ID, role="admin", tenant=None, via="admin_token")

#: the shape of a JWS compact serialisation whose header is a JSON object (``eyJ`` = ``{"``): a
#: person's access token, never an API token (``tmb_``) nor the installation admin token
JWT_SHAPE = re.compile(r"^eyJ[A-Za-z0-9_-]{0,2000}\.[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{0,200}$")


class TokenRefused(Exception):
    """A person's access token that does not authenticate: ``reason`` (one of
    :data:`FAILURE_REASONS`) is logged with ``user_id`` when known."""

    def __init__(self, reason: str, user_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user_id = user_id


#: reads a person's access token into a principal, or raises :class:`TokenRefused`; set by
#: :mod:`server.accounts` (which builds on this module) when it is imported. Unset, such tokens are
#: unknown tokens.
_user_token_reader: Callable[[Tombola, str], Principal] | None = None


def set_user_token_reader(reader: Callable[[Tombola, str], Principal] | None) -> None:
    """Let :func:`authenticate` accept persons' access tokens through ``reader``."""
    global _user_token_reader
    _user_token_reader = reader


def new_token() -> str:
    """A fresh API token: ``tmb_`` and 32 random bytes (URL-safe base64, 43 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization`` header (``Bearer <token>``; a bare token is accepted too)."""
    text = (authorization or "").strip()
    scheme, _, rest = text.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    return text


class FailureThrottle:
    """How many ``auth.login_failed`` events one process logs: ``per_client`` per client address
    and ``overall`` in all (moving windows, in memory), so a flood of bad requests cannot flood
    the audit log. Events left out are counted per client and reported by the next logged one."""

    def __init__(self, per_client: str = FAILED_PER_CLIENT, overall: str = FAILED_OVERALL, max_clients: int = 10_000):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client: RateLimitItem = parse(per_client)
        self._overall: RateLimitItem = parse(overall)
        self._suppressed: dict[str, int] = {}
        self._max_clients = max_clients
        self._lock = threading.Lock()

    def admit(self, client: str) -> int | None:
        """None when this failure is not to be logged; else how many were left out before it."""
        with self._lock:
            if self._limiter.hit(self._per_client, "auth_failed", client) and self._limiter.hit(
                self._overall, "auth_failed"
            ):
                return self._suppressed.pop(client, 0)
            if client not in self._suppressed and len(self._suppressed) >= self._max_clients:
                self._suppressed.clear()  # a flood from many addresses: keep the memory bounded
            self._suppressed[client] = self._suppressed.get(client, 0) + 1
            return None


def _loggable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, digits masked if the log would take them for card data."""
    text = text[:limit]
    try:
        AuditEvent(type="auth.login_failed", actor="user:anonymous", payload={"v": text}).check()
    except TombolaError:
        return re.sub(r"\d", "#", text)
    return text


def authenticate(
    app: Tombola,
    authorization: str | None,
    *,
    path: str = "",
    client: str = "",
    throttle: FailureThrottle | None = None,
) -> Principal:
    """The principal of an ``Authorization`` header, or :class:`Unauthorized` (logged, throttled).

    Blocking (database): async callers run it in a thread.
    """
    given = bearer(authorization)
    if not given:
        _refuse(app, "no_token", path=path, client=client, throttle=throttle)
    admin = app.settings.effective_admin_token()
    if admin and hmac.compare_digest(given.encode(), admin.encode()):
        return INSTALLATION_ADMIN
    if _user_token_reader is not None and JWT_SHAPE.match(given):  # a person's access token (docs/accounts.md)
        try:
            return _user_token_reader(app, given)
        except TokenRefused as exc:
            _refuse(app, exc.reason, path=path, client=client, throttle=throttle, user_id=exc.user_id)
    digest = token_digest(given)
    with app.engine.connect() as conn:
        row = conn.execute(select(TOKEN).where(TOKEN.c.token_sha256 == digest)).first()
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        _refuse(app, "unknown_token", path=path, client=client, throttle=throttle)
    now = app.now_ms()
    if row.revoked_at_ms is not None:
        _refuse(app, "revoked", path=path, client=client, throttle=throttle, token=row)
    if row.expires_at_ms is not None and now >= row.expires_at_ms:
        _refuse(app, "expired", path=path, client=client, throttle=throttle, token=row)
    if row.role not in ROLES:
        _refuse(app, "unknown_role", path=path, client=client, throttle=throttle, token=row)
    principal = Principal(
        id=f"user:{row.id}",
        role=row.role,
        tenant=row.tenant or None,
        via="break_glass" if row.kind == "break_glass" else "api_token",
        token_id=row.id,
    )
    _note_use(app, row, principal, now, path=path, client=client)
    return principal


def _refuse(
    app: Tombola,
    reason: str,
    *,
    path: str,
    client: str,
    throttle: FailureThrottle | None,
    token: Row[Any] | None = None,
    user_id: str | None = None,
) -> NoReturn:
    left_out = throttle.admit(client or "unknown") if throttle is not None else 0
    if left_out is not None:
        payload: dict[str, Any] = {"reason": reason, "path": _loggable(path), "client": _loggable(client, 100)}
        if left_out:
            payload["suppressed"] = left_out
        if token is not None:
            payload |= {"token_id": token.id, "role": token.role, "kind": token.kind}
        if user_id is not None:
            payload["user_id"] = user_id
        actor = f"user:{token.id}" if token is not None else f"user:{user_id or 'anonymous'}"
        record_now(app, "auth.login_failed", payload, tenant=token.tenant if token is not None else "", actor=actor)
    detail = {
        "no_token": "this call needs a token: Authorization: Bearer <token>",
        "unknown_token": "the token is not known here",
        "revoked": "the token was revoked",
        "expired": "the token has expired",
        "unknown_role": "the token's role is not known to this version",
        "bad_access_token": "the access token is not valid here (signature, algorithm or claims)",
        "user_disabled": "the account of this access token is disabled",
        "session_ended": "the login of this access token has ended (logout, or its refresh token was reused)",
        "mfa_required": "the role of this account needs a login with its second factor (TOTP): log in again",
    }[reason]
    raise Unauthorized(detail)


def _note_use(app: Tombola, row: Row[Any], principal: Principal, now: int, *, path: str, client: str) -> None:
    """Move ``last_used_at_ms`` (at most once a minute) and log ``auth.login`` (at most hourly)."""
    if row.last_used_at_ms is not None and now - row.last_used_at_ms < LAST_USED_EVERY_MS:
        return
    every = BREAK_GLASS_LOGIN_EVERY_MS if row.kind == "break_glass" else LOGIN_LOG_EVERY_MS
    logged = False
    with app.engine.begin() as conn:
        moved = conn.execute(
            update(TOKEN)
            .where(
                TOKEN.c.id == row.id,
                or_(TOKEN.c.last_used_at_ms.is_(None), TOKEN.c.last_used_at_ms <= now - LAST_USED_EVERY_MS),
            )
            .values(last_used_at_ms=now)
        ).rowcount
        if moved and (row.login_logged_at_ms is None or now - row.login_logged_at_ms >= every):
            claimed = conn.execute(
                update(TOKEN)
                .where(
                    TOKEN.c.id == row.id,
                    or_(TOKEN.c.login_logged_at_ms.is_(None), TOKEN.c.login_logged_at_ms <= now - every),
                )
                .values(login_logged_at_ms=now)
            ).rowcount
            if claimed:
                payload = {
                    "token_id": row.id,
                    "name": row.name,
                    "role": row.role,
                    "via": principal.via,
                    "path": _loggable(path),
                    "client": _loggable(client, 100),
                }
                record(conn, app, "auth.login", payload, tenant=row.tenant, actor=principal.id)
                logged = True
    if logged:
        drain(app)


def check_role(principal: Principal, roles: tuple[str, ...], *, tenant_scoped: bool = False) -> Principal:
    """``principal`` if it holds one of ``roles`` (and is installation-wide unless ``tenant_scoped``),
    else :class:`Forbidden`."""
    if principal.role not in roles:
        raise Forbidden(f"the {principal.role} role may not make this call (it needs {' or '.join(roles)})")
    if principal.tenant is not None and not tenant_scoped:
        raise Forbidden(f"a token bound to organisation {principal.tenant} may not make installation-wide calls")
    return principal


# --- the token lifecycle (``tombola access``) ---------------------------------------------------


def _status(row: Row[Any], now: int) -> str:
    if row.revoked_at_ms is not None:
        return "revoked"
    if row.expires_at_ms is not None and now >= row.expires_at_ms:
        return "expired"
    return "active"


def _view(row: Row[Any], now: int) -> dict[str, Any]:
    """A token as listed: everything but its hash."""
    view = {k: v for k, v in row._mapping.items() if k not in ("token_sha256", "login_logged_at_ms")}
    view["status"] = _status(row, now)
    return view


def create_token(
    app: Tombola,
    *,
    name: str,
    role: str,
    created_by: str,
    tenant: str = "",
    expires_at_ms: int | None = None,
    kind: str = "api",
    reason: str = "",
) -> dict[str, Any]:
    """Create an API token; the result's ``token`` is the only time the token is shown.

    Logs ``auth.permission_changed`` (``action`` ``token_created``), or ``auth.break_glass`` for a
    break-glass token, in the same transaction as the token's row.
    """
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidRequest("a token needs a name of 1 to 100 characters (who or what uses it)")
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; roles: {', '.join(sorted(ROLES))}")
    now = app.now_ms()
    if expires_at_ms is not None and expires_at_ms <= now:
        raise InvalidRequest("the token's expiry must be in the future")
    if kind not in ("api", "break_glass"):
        raise InvalidRequest(f"unknown token kind {kind!r}")
    token = new_token()
    values = {
        "id": new_id("tok"),
        "name": name,
        "role": role,
        "tenant": tenant,
        "kind": kind,
        "token_sha256": token_digest(token),
        "created_at_ms": now,
        "created_by": created_by,
        "expires_at_ms": expires_at_ms,
        "revoked_at_ms": None,
        "revoked_by": "",
        "revoke_reason": "",
        "last_used_at_ms": None,
        "login_logged_at_ms": None,
    }
    event = {
        "token_id": values["id"],
        "name": name,
        "role": role,
        "tenant": tenant,
        "kind": kind,
        "expires_at_ms": expires_at_ms,
    }
    with app.engine.begin() as conn:
        if tenant and conn.execute(select(ORG.c.id).where(ORG.c.id == tenant)).first() is None:
            raise NotFound(f"no organisation {tenant}")
        conn.execute(TOKEN.insert().values(**values))
        if kind == "break_glass":
            record(conn, app, "auth.break_glass", event | {"reason": reason}, tenant=tenant, actor=created_by)
        else:
            payload = {"action": "token_created"} | event
            record(conn, app, "auth.permission_changed", payload, tenant=tenant, actor=created_by)
        row = conn.execute(select(TOKEN).where(TOKEN.c.id == values["id"])).one()
    return _view(row, now) | {"token": token}


def list_tokens(app: Tombola) -> list[dict[str, Any]]:
    """Every token (active, expired, revoked), oldest first; never a token or its hash."""
    now = app.now_ms()
    with app.engine.connect() as conn:
        rows = conn.execute(select(TOKEN).order_by(TOKEN.c.created_at_ms, TOKEN.c.id)).all()
    return [_view(r, now) for r in rows]


def revoke_token(app: Tombola, token_id: str, *, reason: str, revoked_by: str) -> dict[str, Any]:
    """Revoke a token at once (every process refuses it from the next request on).

    Logs ``auth.permission_changed`` (``action`` ``token_revoked``) with the reason in the same
    transaction. Revoking a revoked token changes nothing and logs nothing.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("revoking a token needs a reason")
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = conn.execute(select(TOKEN).where(TOKEN.c.id == token_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no token {token_id}")
        if row.revoked_at_ms is None:
            conn.execute(
                update(TOKEN)
                .where(TOKEN.c.id == token_id)
                .values(revoked_at_ms=now, revoked_by=revoked_by, revoke_reason=reason[:500])
            )
            payload = {
                "action": "token_revoked",
                "token_id": row.id,
                "name": row.name,
                "role": row.role,
                "tenant": row.tenant,
                "kind": row.kind,
                "reason": reason[:500],
            }
            record(conn, app, "auth.permission_changed", payload, tenant=row.tenant, actor=revoked_by)
        row = conn.execute(select(TOKEN).where(TOKEN.c.id == token_id)).one()
    return _view(row, now)


def break_glass(app: Tombola, *, reason: str, minutes: int = 60, created_by: str) -> dict[str, Any]:
    """A short-lived installation-wide admin token for an emergency; logs ``auth.break_glass``.

    ``reason`` is required; ``minutes`` is at most :data:`BREAK_GLASS_MAX_MINUTES`.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("break-glass access needs a reason")
    if not 1 <= minutes <= BREAK_GLASS_MAX_MINUTES:
        raise InvalidRequest(f"break-glass access lasts 1 to {BREAK_GLASS_MAX_MINUTES} minutes")
    return create_token(
        app,
        name="break-glass",
        role="admin",
        created_by=created_by,
        expires_at_ms=app.now_ms() + minutes * 60_000,
        kind="break_glass",
        reason=reason[:500],
    )
