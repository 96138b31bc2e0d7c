"""How the server serves the portal and the public pages (:func:`install`, called by
``server.app.create_app``): the public pages at ``/``, the portal's routers (``admin.pages.ROUTERS``)
under ``/admin``, the static files at ``/static``, the portal's cookies, and HTML error pages
for the HTML routes (the JSON API keeps its JSON error body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from admin import web
from admin.pages import ROUTERS
from admin.public import router as public_router
from sync_protocol.errors import TombolaError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class PortalCookies:
    """Adds the cookies a portal request set (:func:`admin.web.set_cookie`) to its response."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(web.PORTAL):
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies: dict[str, str] = scope.get(web.COOKIES_KEY) or {}
                if cookies:
                    headers = list(message.get("headers") or [])
                    headers.extend((b"set-cookie", c.encode("latin-1")) for c in cookies.values())
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _html_endpoints() -> set[Any]:
    found = {
        route.endpoint for router in [*ROUTERS, public_router] for route in router.routes if hasattr(route, "endpoint")
    }
    return found


def install(app: FastAPI) -> None:
    """Serve the public pages, the portal and their static files on ``app``."""
    html_endpoints = _html_endpoints()

    def wants_html(request: Request) -> bool:
        if request.scope.get("endpoint") in html_endpoints:
            return True
        path = request.url.path
        is_portal = path == web.PORTAL or path.startswith(web.PORTAL + "/")
        return is_portal and "text/html" in request.headers.get("accept", "")

    previous_tombola: Handler = app.exception_handlers[TombolaError]
    previous_http: Handler = app.exception_handlers[StarletteHTTPException]

    async def tombola_error(request: Request, exc: TombolaError) -> Response:
        if wants_html(request):
            return _error_page(request, exc.status, exc.code, exc.detail)
        return await _call(previous_tombola, request, exc)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request):
            if exc.status_code == 404:
                return _error_page(request, 404, "not_found", "There is no page at this address.")
            if exc.status_code == 405:
                return _error_page(request, 405, "method_not_allowed", "This address does not take that request.")
            return _error_page(request, exc.status_code, "refused", str(exc.detail))
        return await _call(previous_http, request, exc)

    async def login_required(request: Request, exc: web.LoginRequired) -> Response:
        return web.login_redirect(request, exc.next_url)

    async def portal_error(request: Request, exc: web.PortalError) -> Response:
        return _error_page(request, exc.status, exc.code, exc.detail)

    app.add_exception_handler(TombolaError, tombola_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(web.LoginRequired, login_required)  # type: ignore[arg-type]
    app.add_exception_handler(web.PortalError, portal_error)  # type: ignore[arg-type]

    app.include_router(public_router)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(web.STATIC_URL, StaticFiles(directory=str(web.STATIC)), name="static")
    app.add_middleware(PortalCookies)


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return answer if isinstance(answer, Response) else await answer


def _error_page(request: Request, status: int, code: str, detail: str) -> Response:
    if not request.url.path.startswith(web.PORTAL):
        return web.render_public(request, "public/error.html", status_code=status, code=code, detail=detail)
    return web.render(request, "error.html", status_code=status, code=code, detail=detail)
