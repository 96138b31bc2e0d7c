"""The FastAPI application: one process serving devices, admins and the core's ticket API."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from admin.site import install as install_portal
from gli_core.router import audit_router, audit_scope, draw_router, get_core, raffle_canceller
from gli_core.router import router as core_ticket_router
from server import audit
from server.accounts.endpoints import auth_router, users_router
from server.config import Settings
from server.context import Tombola
from server.contract import Health, malformed
from server.contract import install as install_openapi
from server.deps import AdminDep, audit_scope_of
from server.draws.endpoints import router as public_draw_router
from server.endpoints import admin_router, cancel_through_service, device_router, interface_router
from server.errors import Conflict, HttpRefused, MethodNotAllowed, NotFound, ValueOutOfRange
from server.maintenance import AuditUpkeep
from server.payments.endpoints import router as online_sales_router
from server.raffles.endpoints import admin_raffles, draw_rules, public_raffles
from server.reports.endpoints import router as reports_router
from server.security import SecurityHeaders, add_cors
from server.sellers.endpoints import router as seller_router
from server.tickets.endpoints import page_router as public_check_page
from server.tickets.endpoints import router as public_ticket_router
from server.tickets.endpoints import spec_router as public_ticket_check
from sync_protocol.errors import PayloadTooLarge, TombolaError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("tombola.server")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 ``payload_too_large``, declared or streamed."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = PayloadTooLarge(f"the body is over the {self.limit}-byte cap; send smaller batches")
        await JSONResponse(err.to_dict(), status_code=err.status)(scope, receive, send)


class _TooLarge(Exception):
    pass


class AuditDrain:
    """After a request that may have written, move its audit events from the business outbox into
    the core's log, before the response starts (so an event is in the log when its request ends).

    Concurrent requests share drains: a request is covered by any drain that *started* after its
    writes committed, so under load one drain moves the rows of many requests and the others
    answer at once. A failed drain is logged and left to the next one (the rows stay in the
    outbox; the background upkeep drains every second).

    Device syncs (``background_paths``) are the exception: they are the bulk of the traffic, a
    drain costs a core transaction, and their events (``sync.accepted``) reach the log within
    the upkeep's second. Their effect and its outbox row still commit together (I7).
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        tombola: Callable[[], Tombola],
        background_paths: tuple[str, ...] = ("/v1/sync",),
    ) -> None:
        self.app = app
        self.tombola = tombola
        self.background_paths = background_paths
        self._lock = threading.Lock()
        self._covered_from = 0  # monotonic start of the last finished drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or scope["path"] in self.background_paths
        ):
            await self.app(scope, receive, send)
            return

        async def send_after_drain(message: Message) -> None:
            if message["type"] == "http.response.start":
                await run_in_threadpool(self._drain, time.monotonic_ns())
            await send(message)

        await self.app(scope, receive, send_after_drain)

    def _drain(self, written_by: int) -> None:
        with self._lock:
            if self._covered_from >= written_by:
                return
            started = time.monotonic_ns()
            try:
                audit.drain(self.tombola())
            except Exception:
                log.exception("audit outbox drain failed; the rows stay for the next drain")
                return
            self._covered_from = started


def create_app(settings: Settings | None = None, tombola: Tombola | None = None) -> FastAPI:
    """The app over ``tombola`` (or services opened from ``settings`` at start-up)."""
    settings = settings or (tombola.settings if tombola else Settings())
    owned = tombola is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.tombola is None:
            app.state.tombola = Tombola.open(settings, migrate_dbs=True)
        upkeep = None
        if owned:  # a serving process: drain, checkpoint and ship the audit log in the background
            audit.settings_changed(app.state.tombola)
            upkeep = AuditUpkeep(app.state.tombola).start()
        yield
        if upkeep is not None:
            upkeep.stop()
        if owned:
            app.state.tombola.close()

    # /docs and /redoc load Swagger UI and ReDoc from the installed fastapi-offline package
    # (served under /static-offline-docs), never from a CDN: the system is offline-first.
    app = FastAPIOffline(title="Tombola", version="0.1.0", lifespan=lifespan)
    app.state.tombola = tombola
    install_openapi(app)  # /openapi.json: the whole contract, committed as docs/openapi.json

    @app.exception_handler(TombolaError)
    async def tombola_error(_: Request, exc: TombolaError) -> JSONResponse:
        retry = exc.extra.get("retry_after_s")  # a 429 says when to come back (RFC 9110 10.2.3)
        headers = {"Retry-After": str(retry)} if retry else None
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(malformed(exc.errors(), request.headers.get("content-type")), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown URLs and wrong methods answer in the same error body as every other error."""
        err: TombolaError
        if exc.status_code == 404:
            err = NotFound(f"no such URL: {request.url.path}")
        elif exc.status_code == 405:
            err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        else:
            err = HttpRefused(str(exc.detail))
        return JSONResponse(err.to_dict(), status_code=exc.status_code, headers=exc.headers)

    # A safety net: the request models bound every field to fit its column, so the database
    # refusing a value of a request is a missing bound (logged), answered as the client's error.
    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        log.error("the database refused a value of %s %s: %s", request.method, request.url.path, exc.orig)
        err = ValueOutOfRange("a value of the request is out of the range the server can store")
        return JSONResponse(err.to_dict(), status_code=err.status)

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        log.error("the database refused %s %s as a conflict: %s", request.method, request.url.path, exc.orig)
        err = Conflict("the request conflicts with what the server holds")
        return JSONResponse(err.to_dict(), status_code=err.status)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (a load balancer's probe)."""
        return {"status": "ok"}

    app.dependency_overrides[get_core] = lambda: app.state.tombola.core
    app.dependency_overrides[raffle_canceller] = cancel_through_service  # one cancel, both databases
    app.include_router(device_router)
    # The public reads next: a request is matched against the routes in this order, so the
    # busiest paths (devices' syncs, the public pages) are tried first (bench/api.py).
    app.include_router(public_raffles)  # GET /raffles, GET /jurisdictions: public, cacheable
    app.include_router(public_ticket_router)  # public: no token, rate-limited, no personal data
    app.include_router(public_ticket_check)  # the same check at the spec's path GET /tickets/check
    app.include_router(public_check_page)  # the page a receipt's QR code opens (/check)
    app.include_router(public_draw_router)  # published draw results and proofs: public, cacheable
    app.include_router(admin_router)
    app.include_router(seller_router)
    app.include_router(auth_router)  # /auth/*: logins, tokens, TOTP, password reset (docs/accounts.md)
    app.include_router(users_router)  # accounts and two-person requests: role rule per route
    app.include_router(admin_raffles)  # raffle management: role and tenant rule per route
    app.include_router(online_sales_router)  # customers (role rule per route) and Stripe's webhook (signed)
    app.include_router(reports_router)  # GET /reports/...: role and tenant rule per route
    # The interface layer and the core's own API are for operators' systems, never the public.
    app.include_router(interface_router, dependencies=[AdminDep])
    app.include_router(core_ticket_router, prefix="/core", dependencies=[AdminDep])
    # the RNG draw passes the raffle's jurisdiction rules first (tombola draw execute does the same)
    app.include_router(draw_router, prefix="/core", dependencies=[AdminDep, Depends(draw_rules)])
    # The audit log's read rule (auditors and system admins; a tenant's token sees its tenant) is
    # the scope dependency itself, not AdminDep.
    app.dependency_overrides[audit_scope] = audit_scope_of
    app.include_router(audit_router, prefix="/core")
    # The public pages (/, /results/{id}, /verify), the admin portal (/admin/...) and their
    # static files (/static): HTML, after every JSON route so that none is shadowed (docs/portal.md).
    install_portal(app)

    app.add_middleware(AuditDrain, tombola=lambda: app.state.tombola)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    add_cors(app, settings.cors_origin_list())
    app.add_middleware(SecurityHeaders, hsts=settings.hsts)  # outermost: errors of the others get them too
    return app
