"""HTTP security headers (OWASP Secure Headers) and CORS, on every response of the server.

:class:`SecurityHeaders` is a plain ASGI middleware (no per-request Python objects beyond a header
list), so the public reads it wraps stay fast. It sets, unless the endpoint set them itself:

* ``Content-Security-Policy``: :data:`CSP` — scripts and styles from the server itself only, no
  inline script or style, no plugins, never framed. The interactive API documentation
  (``/docs``, ``/redoc``) is the one exception: Swagger UI and ReDoc start from an inline script,
  so those pages alone get :data:`DOCS_CSP` (inline script allowed, everything else the same);
* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers without
  ``frame-ancestors``), ``Referrer-Policy: no-referrer`` (a ticket-check URL carries a
  verification code: it must not leak to another site), ``Permissions-Policy`` turning off
  what the pages never use, ``Cross-Origin-Opener-Policy: same-origin``;
* ``Strict-Transport-Security`` only when the request came over TLS (``scheme`` https, as a TLS
  terminating proxy forwards it with uvicorn's ``--proxy-headers``) or :attr:`Settings.hsts` is
  set: sent over plain HTTP it would be ignored, and on ``http://127.0.0.1`` it would be wrong.

CORS (:func:`add_cors`): off unless :attr:`Settings.cors_origins` names origins; then Starlette's
``CORSMiddleware`` admits exactly those, with credentials off (the API authenticates by bearer
token, never by cookie, so a cross-origin page gains nothing it could not do with the token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
HSTS = "max-age=63072000; includeSubDomains"

_COMMON: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Add the security headers above to every HTTP response that does not carry them already."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    def headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        path: str = scope.get("path", "")
        docs = path in DOCS_PATHS or path.startswith("/docs/") or path.startswith("/static-offline-docs")
        added = [*_COMMON, (b"content-security-policy", (DOCS_CSP if docs else CSP).encode())]
        if self.hsts or scope.get("scheme") == "https":
            added.append((b"strict-transport-security", HSTS.encode()))
        return added

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in added if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Admit cross-origin calls from exactly ``origins`` (none: CORS stays off)."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        max_age=600,
    )
