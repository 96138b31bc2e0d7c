"""The portal's foundation: templates, the signed-in session, roles, CSRF, flash messages.

Page modules (``admin/pages/*.py``) use only this module's names:

* :func:`render` ``(request, "area/page.html", **ctx)``: a Jinja2 page (autoescaped), with the
  layout's menu for the signed-in role, the flash message, the CSRF token and :func:`static`;
* :data:`Page`: the dependency of every portal page: requires a portal session (a browser
  without one is sent to the login page) and gives a :class:`Portal` (the :class:`Principal`
  as the server sees it now, the CSRF token, the email);
* :func:`require_portal_role` ``("admin", "business_admin", ...)``: the same, for those roles
  only (others get a 403 page);
* :data:`CheckedForm` / :func:`check_csrf`: every POST of the portal: its ``csrf_token`` form
  field (or the ``X-CSRF-Token`` header htmx sends, from the ``hx-headers`` of the layout's
  ``<body>``) must be the session's;
* :func:`redirect` ``(request, url, flash=...)``: 303 after a POST, with a message for the next page;
* :class:`PortalError`: raise it for a page-level refusal (status, code, sentence); a
  :class:`sync_protocol.errors.TombolaError` of a service renders the same error page.

Another tenant's object must be 404 (raise ``server.errors.NotFound``): check
``portal.principal.sees_venue(org, venue)`` on every page and every POST.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from admin import session as sess
from admin.menu import menu_for
from server.accounts import service as accounts
from server.auth import ROLES, Principal
from server.context import Tombola
from server.deps import current_principal
from server.errors import Unauthorized

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/static"
PORTAL = "/admin"
LOGIN_URL = f"{PORTAL}/login"
COOKIES_KEY = "tombola.portal.cookies"

env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _static_version() -> str:
    """A short digest of the static files, appended to their URLs so a new release is fetched."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:10]


STATIC_VERSION = _static_version()


def static(name: str) -> str:
    """The URL of a file of ``admin/static/``."""
    return f"{STATIC_URL}/{name}?v={STATIC_VERSION}"


def _ms_to_text(ms: int | None) -> str:
    if ms is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return "—"
    return f"{cents / 100:,.2f} {currency}"


env.globals["static"] = static
env.filters["when"] = _ms_to_text
env.filters["money"] = _money


def app_of(request: Request) -> Tombola:
    app: Tombola = request.app.state.tombola
    return app


# --- cookies -------------------------------------------------------------------------------------


def secure(request: Request) -> bool:
    """Whether the portal is served over TLS (directly or behind a proxy that says so)."""
    return request.url.scheme == "https" or bool(app_of(request).settings.hsts)


def cookie_name(request: Request, base: str) -> str:
    """``__Secure-`` + name over https (the browser then refuses it without ``Secure``)."""
    return f"__Secure-{base}" if secure(request) else base


def read_cookie(request: Request, base: str) -> str | None:
    return request.cookies.get(cookie_name(request, base))


def set_cookie(request: Request, base: str, value: str | None, max_age: int = 0) -> None:
    """Set (or, with ``value`` None, delete) a portal cookie on whatever response this request
    gets: HttpOnly, SameSite=Strict, Path=/admin, Secure over https. Applied by
    :class:`admin.site.PortalCookies`."""
    parts = [f"{cookie_name(request, base)}={value or ''}", f"Path={sess.COOKIE_PATH}", "HttpOnly", "SameSite=Strict"]
    parts.append(f"Max-Age={max_age if value else 0}")
    if secure(request):
        parts.append("Secure")
    request.scope.setdefault(COOKIES_KEY, {})[base] = "; ".join(parts)


def flash(request: Request, text: str, kind: str = "info") -> None:
    """A message for the next page this browser sees (``kind``: info, success, error)."""
    set_cookie(request, sess.FLASH_COOKIE, sess.sign_flash(app_of(request), text, kind), 60)


def redirect(request: Request, url: str, *, flash_text: str | None = None, kind: str = "success") -> Response303:
    """303 See Other to ``url`` (after a POST); htmx requests get ``HX-Redirect`` instead."""
    if flash_text:
        flash(request, flash_text, kind)
    if request.headers.get("HX-Request") == "true":
        return HTMLResponse("", status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


Response303 = HTMLResponse | RedirectResponse


# --- the signed-in session -----------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    """A signed-in portal request: who (as the server sees them now) and the form token."""

    principal: Principal
    email: str
    csrf_token: str

    @property
    def role(self) -> str:
        return self.principal.role


class LoginRequired(Exception):
    """No (valid) portal session: the browser goes to the login page, then back to ``next_url``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PortalError(Exception):
    """A refusal shown as the portal's error page."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _next_of(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def start_session(request: Request, answer: dict[str, Any]) -> None:
    """Sign the browser in with a login answer of the accounts service (``/auth/login``'s)."""
    pair = sess.TokenPair.from_answer(answer)
    app = app_of(request)
    ttl = max(0, pair.expires_at_s - app.now_ms() // 1000)
    set_cookie(request, sess.SESSION_COOKIE, sess.seal(app, "session", pair.to_dict()), ttl)


def end_session(request: Request) -> None:
    set_cookie(request, sess.SESSION_COOKIE, None)


def _current_pair(request: Request) -> sess.TokenPair | None:
    app = app_of(request)
    return sess.TokenPair.from_dict(sess.unseal(app, "session", read_cookie(request, sess.SESSION_COOKIE)))


def _refreshed(request: Request, pair: sess.TokenPair) -> sess.TokenPair | None:
    """``pair`` itself, or a new pair when the access token ends within REFRESH_BEFORE_S (None:
    the refresh was refused: the login has ended)."""
    app = app_of(request)
    now_s = app.now_ms() // 1000
    if pair.expires_at_s - now_s > sess.REFRESH_BEFORE_S:
        return pair
    with sess.REFRESHES.lock:
        done = sess.REFRESHES.get(pair.refresh)
        if done is None:
            try:
                answer = accounts.refresh(app, pair.refresh, client=request.client.host if request.client else "")
            except Exception:  # refresh_invalid, account_disabled: the login is over
                return None
            done = sess.TokenPair.from_answer(answer)
            sess.REFRESHES.put(pair.refresh, done)
    start_session(request, {"access_token": done.access, "refresh_token": done.refresh, "email": done.email})
    return done


async def portal_session(request: Request) -> Portal:
    """The dependency behind :data:`Page`."""
    found: Portal | None = getattr(request.state, "portal", None)
    if found is not None:
        return found
    pair = _current_pair(request)
    if pair is None:
        raise LoginRequired(_next_of(request))
    pair = await run_in_threadpool(_refreshed, request, pair)
    if pair is None:
        end_session(request)
        raise LoginRequired(_next_of(request))
    app = app_of(request)
    try:  # the API's own authentication (and audit actor), with the sealed access token
        principal = await current_principal(request, app, authorization=f"Bearer {pair.access}")
    except Unauthorized as exc:
        end_session(request)
        raise LoginRequired(_next_of(request)) from exc
    portal = Portal(principal=principal, email=pair.email, csrf_token=sess.csrf_token(app, "sid:" + pair.session_id))
    request.state.portal = portal
    return portal


Page = Annotated[Portal, Depends(portal_session)]


def require_portal_role(*roles: str) -> Callable[..., Awaitable[Portal]]:
    """A dependency like :data:`Page` that admits only ``roles`` (403 page for the others)."""
    unknown = set(roles) - set(ROLES)
    if not roles or unknown:
        raise ValueError(f"require_portal_role needs known roles, not {sorted(unknown) or 'none'}")

    async def dependency(portal: Page) -> Portal:
        if portal.role not in roles:
            raise PortalError(403, "forbidden", f"This page is not open to the {portal.role.replace('_', ' ')} role.")
        return portal

    return dependency


# --- CSRF ----------------------------------------------------------------------------------------


def anon_binding(request: Request) -> str:
    """The CSRF binding of a signed-out browser; gives it an id cookie when it has none."""
    value = read_cookie(request, sess.ANON_COOKIE)
    if not value or len(value) > 64:
        value = sess.new_anon_id()
        set_cookie(request, sess.ANON_COOKIE, value, sess.ANON_TTL_S)
        request.scope.setdefault("tombola.portal.anon", value)
    return "anon:" + value


def anon_csrf(request: Request) -> str:
    """The CSRF token of a signed-out form (login, password reset)."""
    return sess.csrf_token(app_of(request), anon_binding(request))


def _binding(request: Request) -> str | None:
    portal: Portal | None = getattr(request.state, "portal", None)
    if portal is not None:
        return "sid:" + portal.principal.token_id if portal.principal.token_id else None
    pair = _current_pair(request)
    if pair is not None:
        return "sid:" + pair.session_id
    value = read_cookie(request, sess.ANON_COOKIE)
    return "anon:" + value if value else None


async def check_csrf(request: Request) -> FormData:
    """The form of a POST whose CSRF token is right (403 page otherwise); cross-site requests
    (an ``Origin`` of another site) are refused before the token is read."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        raise PortalError(403, "csrf_failed", "This form was sent from another site; open the page again and retry.")
    form = await request.form()
    given = request.headers.get("x-csrf-token") or form.get("csrf_token")
    binding = _binding(request)
    if binding is None or not isinstance(given, str) or not sess.csrf_ok(app_of(request), binding, given):
        raise PortalError(403, "csrf_failed", "The form has expired; open the page again and retry.")
    return form


CheckedForm = Annotated[FormData, Depends(check_csrf)]


# --- rendering -----------------------------------------------------------------------------------


def _take_flash(request: Request) -> tuple[str, str] | None:
    value = read_cookie(request, sess.FLASH_COOKIE)
    if not value:
        return None
    if sess.FLASH_COOKIE not in request.scope.get(COOKIES_KEY, {}):  # not set by this very request
        set_cookie(request, sess.FLASH_COOKIE, None)
    return sess.read_flash(app_of(request), value)


def render(request: Request, template: str, *, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """The page ``template`` (under ``admin/templates/``) with the layout's context."""
    portal: Portal | None = getattr(request.state, "portal", None)
    base: dict[str, Any] = {
        "request": request,
        "portal": portal,
        "menu": menu_for(portal.role if portal else None),
        "current_path": request.url.path,
        "flash": _take_flash(request),
        "csrf_token": portal.csrf_token if portal else ctx.pop("csrf_token", None) or anon_csrf(request),
        "hx_headers": json.dumps({"X-CSRF-Token": portal.csrf_token}) if portal else "",
    }
    base.update(ctx)
    html = env.get_template(template).render(base)
    headers = {"Cache-Control": "no-store"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def render_public(
    request: Request, template: str, *, status_code: int = 200, max_age: int = 30, **ctx: Any
) -> HTMLResponse:
    """A public page (``admin/templates/public/``): no session, no cookie, cacheable for ``max_age`` s."""
    html = env.get_template(template).render({"request": request, "current_path": request.url.path, **ctx})
    cache = f"public, max-age={max_age}" if status_code == 200 else "no-store"
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": cache})


def login_redirect(request: Request, next_url: str) -> Response303:
    url = f"{LOGIN_URL}?next={quote(next_url, safe='/')}"
    if request.headers.get("HX-Request") == "true":
        return HTMLResponse("", status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """A ``next`` URL only within the portal (never another site: no open redirect)."""
    if value and value.startswith(PORTAL + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PORTAL + "/"
