"""Portal sessions: the accounts service's token pair, sealed in an HTTP-only cookie.

A signed-in browser holds one cookie (:data:`SESSION_COOKIE`) whose value is the access token,
the refresh token and the person's email, sealed with AES-256-GCM (RFC 5116) under a key derived
(HKDF-SHA256, RFC 5869) from the installation's JWT key, so every server process of an
installation opens it and nobody else can read or forge it. The portal keeps no session table
of its own: the accounts service's session (the ``sid`` of the access token) is the session, so
a logout, a disabled account or a revoked refresh family ends the portal session at its next
request, in every process (``docs/accounts.md``). ``docs/portal.md`` explains the choice.

The cookie lives as long as the access token (``Max-Age`` = its remaining lifetime). A request
made in the last :data:`REFRESH_BEFORE_S` seconds of it trades the refresh token for a new pair
(rotation) and re-sets the cookie, so a person at work stays signed in and an idle browser is
signed out an hour after its last refresh. Concurrent requests of one browser that refresh
together share one refresh (:class:`_RefreshOnce`): a refresh token works once, and a second use
would be taken for theft and end the login.

A login that needs a second step (the TOTP code, or the set-up of TOTP) keeps what that step
needs in a second sealed cookie, :data:`PENDING_COOKIE`, for :data:`PENDING_TTL_S` seconds.

CSRF tokens are HMAC-SHA256 of the session id (signed in) or of the random value of
:data:`ANON_COOKIE` (signed out: the login and password-reset forms), so they need no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.accounts.tokens import signing_key
from server.context import Tombola

SESSION_COOKIE = "tombola_portal"
PENDING_COOKIE = "tombola_portal_login"
ANON_COOKIE = "tombola_portal_anon"
FLASH_COOKIE = "tombola_portal_flash"
COOKIE_PATH = "/admin"
PENDING_TTL_S = 300
ANON_TTL_S = 3600
REFRESH_BEFORE_S = 900
_NONCE = 12


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keys:
    """The portal's keys, derived from the installation's JWT key (one HKDF info per use)."""

    seal: bytes
    csrf: bytes
    flash: bytes

    @classmethod
    def of(cls, app: Tombola) -> Keys:
        cached: Keys | None = getattr(app, "_portal_keys", None)
        if cached is not None:
            return cached
        root = signing_key(app)

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)

        keys = cls(
            seal=derive(b"tombola portal seal v1"),
            csrf=derive(b"tombola portal csrf v1"),
            flash=derive(b"tombola portal flash v1"),
        )
        app._portal_keys = keys  # type: ignore[attr-defined]
        return keys


def seal(app: Tombola, purpose: str, payload: dict[str, Any]) -> str:
    """``payload`` as JSON sealed with AES-GCM; ``purpose`` is bound as associated data, so a
    pending-login cookie never opens as a session cookie."""
    nonce = os.urandom(_NONCE)
    data = json.dumps(payload, separators=(",", ":")).encode()
    return _b64e(nonce + AESGCM(Keys.of(app).seal).encrypt(nonce, data, purpose.encode()))


def unseal(app: Tombola, purpose: str, value: str | None) -> dict[str, Any] | None:
    """The payload of a sealed value, or None when it is missing, forged, or of another purpose."""
    if not value or len(value) > 8000:
        return None
    try:
        raw = _b64d(value)
        data = AESGCM(Keys.of(app).seal).decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode())
        payload = json.loads(data)
    except (InvalidTag, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def csrf_token(app: Tombola, binding: str) -> str:
    """The CSRF token of a session id (``sid:...``) or an anonymous browser (``anon:...``)."""
    return _b64e(hmac.new(Keys.of(app).csrf, binding.encode(), hashlib.sha256).digest())


def csrf_ok(app: Tombola, binding: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(app, binding), given or "")


def sign_flash(app: Tombola, text: str, kind: str) -> str:
    body = _b64e(json.dumps([kind, text[:300]]).encode())
    mac = _b64e(hmac.new(Keys.of(app).flash, body.encode(), hashlib.sha256).digest()[:16])
    return f"{body}.{mac}"


def read_flash(app: Tombola, value: str | None) -> tuple[str, str] | None:
    """(kind, text) of a flash cookie, or None when missing or not ours."""
    if not value or "." not in value or len(value) > 2000:
        return None
    body, mac = value.rsplit(".", 1)
    want = _b64e(hmac.new(Keys.of(app).flash, body.encode(), hashlib.sha256).digest()[:16])
    if not hmac.compare_digest(want, mac):
        return None
    try:
        kind, text = json.loads(_b64d(body))
    except ValueError:
        return None
    return str(kind), str(text)


def new_anon_id() -> str:
    return secrets.token_urlsafe(24)


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT *without* checking its signature: only for reading ``exp`` and ``sid``
    of a token this server issued and then sealed; authentication always checks it in full."""
    try:
        claims = json.loads(_b64d(token.split(".")[1]))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True)
class TokenPair:
    """What the session cookie holds."""

    access: str
    refresh: str
    email: str

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> TokenPair:
        return cls(access=str(answer["access_token"]), refresh=str(answer["refresh_token"]), email=str(answer["email"]))

    def to_dict(self) -> dict[str, str]:
        return {"a": self.access, "r": self.refresh, "e": self.email}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TokenPair | None:
        if not data or not all(isinstance(data.get(k), str) for k in ("a", "r", "e")):
            return None
        return cls(access=data["a"], refresh=data["r"], email=data["e"])

    @property
    def expires_at_s(self) -> int:
        exp = jwt_claims(self.access).get("exp")
        return exp if isinstance(exp, int) else 0

    @property
    def session_id(self) -> str:
        sid = jwt_claims(self.access).get("sid")
        return sid if isinstance(sid, str) else ""


class _RefreshOnce:
    """Refresh a token pair once per refresh token in this process: concurrent requests of one
    browser that find the access token near its end get the same new pair (for 60 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, TokenPair]] = {}

    def get(self, key: str) -> TokenPair | None:
        now = time.monotonic()
        for k in [k for k, (t, _) in self._done.items() if now - t > 60]:
            del self._done[k]
        found = self._done.get(key)
        return found[1] if found else None

    def put(self, key: str, pair: TokenPair) -> None:
        self._done[key] = (time.monotonic(), pair)

    @property
    def lock(self) -> threading.Lock:
        return self._lock


REFRESHES = _RefreshOnce()
