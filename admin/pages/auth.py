"""Signing in and out of the portal, through the accounts service (``docs/accounts.md``).

* ``/admin/login``: email and password (``server.accounts.service.login``). When the account has
  TOTP, the second step ``/admin/login/code`` asks for the code; when the role needs TOTP and
  none is set up (system admins, auditors), ``/admin/login/setup`` shows the provisioning URI as a
  QR code (SVG drawn here by ``segno``) and confirms the first code, which signs the person in.
  Between the steps the password (or the set-up token) waits in a sealed, HTTP-only cookie for
  five minutes (``admin/session.py``), never in the page.
* ``/admin/logout``: ends the accounts service's session (its tokens stop working everywhere).
* ``/admin/password/reset`` and ``/admin/password/reset/confirm``: the mailed one-time token.
* ``/admin/account``: who am I, and changing one's own password (``accounts.change_password``:
  the current password proves it; the account's other sign-ins end).
"""

from __future__ import annotations

import time
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import session as sess
from admin.web import (
    PORTAL,
    CheckedForm,
    Page,
    app_of,
    end_session,
    read_cookie,
    redirect,
    render,
    safe_next,
    set_cookie,
    start_session,
)
from server.accounts import service as accounts
from server.accounts.endpoints import LoginRate
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)

FIELD_MAX = 320
PASSWORD_MAX = 256


def _field(form: Any, name: str, limit: int = FIELD_MAX) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def login_message(exc: TombolaError) -> str:
    """The sentence the login page shows for a refusal of the accounts service."""
    if exc.code == "login_failed":
        return "The email or the password is wrong."
    if exc.code == "account_locked":
        wait = int(exc.extra.get("retry_after_s") or 60)
        minutes = f"{wait // 60} min {wait % 60} s" if wait >= 60 else f"{wait} seconds"
        return f"Too many failed attempts: this account is locked. Try again in {minutes}."
    if exc.code == "mfa_invalid":
        return "That code is wrong, too old or was used already. Wait for the next code of your authenticator app."
    if exc.code == "account_disabled":
        return "This account is disabled. Ask an administrator."
    if exc.code == "mfa_required":
        return "Enter the 6-digit code of your authenticator app."
    sentence = exc.detail[:1].upper() + exc.detail[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def _pending(request: Request, kind: str) -> dict[str, Any] | None:
    data = sess.unseal(app_of(request), "pending", read_cookie(request, sess.PENDING_COOKIE))
    if not data or data.get("k") != kind or not isinstance(data.get("x"), int) or data["x"] < time.time():
        return None
    return data


def _set_pending(request: Request, data: dict[str, Any]) -> None:
    data = {**data, "x": int(time.time()) + sess.PENDING_TTL_S}
    set_cookie(request, sess.PENDING_COOKIE, sess.seal(app_of(request), "pending", data), sess.PENDING_TTL_S)


def _signed_in(request: Request, answer: dict[str, Any], next_url: str) -> RedirectResponse | HTMLResponse:
    set_cookie(request, sess.PENDING_COOKIE, None)
    start_session(request, answer)
    return redirect(request, safe_next(next_url))


def _login_page(
    request: Request, *, error: str | None = None, email: str = "", next_url: str = "", status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "auth/login.html",
        status_code=status,
        error=error,
        email=email,
        next_url=safe_next(next_url),
        title="Sign in",
    )


@router.get("", include_in_schema=False)
def portal_root() -> RedirectResponse:
    return RedirectResponse(PORTAL + "/", status_code=308)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    return _login_page(request, next_url=next[:500])


@router.post("/login", response_class=HTMLResponse, dependencies=[LoginRate])
async def login(request: Request, form: CheckedForm) -> Any:
    email = _field(form, "email")
    password = _field(form, "password", PASSWORD_MAX)
    next_url = _field(form, "next", 500)
    if not email or not password:
        return _login_page(
            request, error="Enter your email and your password.", email=email, next_url=next_url, status=422
        )
    app = app_of(request)
    try:
        answer = await run_in_threadpool(accounts.login, app, email, password, client=_client(request))
    except TombolaError as exc:
        if exc.code == "mfa_required":  # the password is right: ask for the code
            _set_pending(request, {"k": "totp", "e": email, "p": password, "n": next_url})
            return redirect(request, PORTAL + "/login/code")
        if exc.code == "mfa_setup_required":  # the role needs TOTP: set it up now
            token = str(exc.extra.get("mfa_setup_token", ""))
            user_id = await run_in_threadpool(accounts.mfa_setup_user, app, token)
            setup = await run_in_threadpool(accounts.mfa_setup, app, user_id)
            _set_pending(
                request, {"k": "setup", "t": token, "u": setup["provisioning_uri"], "s": setup["secret"], "n": next_url}
            )
            return redirect(request, PORTAL + "/login/setup")
        status = 429 if exc.code == "account_locked" else 401 if exc.status == 401 else exc.status
        return _login_page(request, error=login_message(exc), email=email, next_url=next_url, status=status)
    return _signed_in(request, answer, next_url)


def _code_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "auth/code.html", status_code=status, error=error, title="Authentication code")


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request) -> Any:
    if _pending(request, "totp") is None:
        return redirect(request, PORTAL + "/login", flash_text="Your sign-in took too long; start again.", kind="error")
    return _code_page(request)


@router.post("/login/code", response_class=HTMLResponse, dependencies=[LoginRate])
async def code(request: Request, form: CheckedForm) -> Any:
    pending = _pending(request, "totp")
    if pending is None:
        return redirect(request, PORTAL + "/login", flash_text="Your sign-in took too long; start again.", kind="error")
    totp = _field(form, "code", 20).replace(" ", "")
    if not (totp.isascii() and totp.isdigit() and len(totp) == 6):
        return _code_page(request, error="Enter the 6 digits your authenticator app shows.", status=422)
    try:
        answer = await run_in_threadpool(
            accounts.login, app_of(request), pending["e"], pending["p"], totp=totp, client=_client(request)
        )
    except TombolaError as exc:
        if exc.code in ("account_locked", "login_failed", "account_disabled"):
            set_cookie(request, sess.PENDING_COOKIE, None)
            return _login_page(
                request, error=login_message(exc), email=pending["e"], next_url=pending["n"], status=exc.status
            )
        return _code_page(request, error=login_message(exc), status=exc.status)
    return _signed_in(request, answer, pending["n"])


def _setup_page(
    request: Request, pending: dict[str, Any], *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    qr = segno.make(pending["u"], error="m").svg_inline(scale=5, title="QR code of the authenticator set-up")
    secret = pending["s"]
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(
        request,
        "auth/setup.html",
        status_code=status,
        error=error,
        qr_svg=qr,
        secret=grouped,
        title="Set up two-step sign-in",
    )


@router.get("/login/setup", response_class=HTMLResponse)
def setup_form(request: Request) -> Any:
    pending = _pending(request, "setup")
    if pending is None:
        return redirect(request, PORTAL + "/login", flash_text="Your sign-in took too long; start again.", kind="error")
    return _setup_page(request, pending)


@router.post("/login/setup", response_class=HTMLResponse, dependencies=[LoginRate])
async def setup(request: Request, form: CheckedForm) -> Any:
    pending = _pending(request, "setup")
    if pending is None:
        return redirect(request, PORTAL + "/login", flash_text="Your sign-in took too long; start again.", kind="error")
    code_ = _field(form, "code", 20).replace(" ", "")
    app = app_of(request)
    try:
        user_id = await run_in_threadpool(accounts.mfa_setup_user, app, pending["t"])
        answer = await run_in_threadpool(
            accounts.mfa_confirm, app, user_id, code_, start_session=True, client=_client(request)
        )
    except TombolaError as exc:
        if exc.code == "unauthorized":
            set_cookie(request, sess.PENDING_COOKIE, None)
            return redirect(
                request, PORTAL + "/login", flash_text="The set-up took too long; sign in again.", kind="error"
            )
        return _setup_page(request, pending, error=login_message(exc), status=exc.status)
    return _signed_in(request, answer, pending["n"])


@router.post("/logout")
async def logout(request: Request, portal: Page, _form: CheckedForm) -> Any:
    user_id, session_id = accounts.session_of(portal.principal)
    await run_in_threadpool(accounts.logout, app_of(request), session_id, user_id=user_id)
    end_session(request)
    return redirect(request, PORTAL + "/login", flash_text="You are signed out.")


# --- password reset ------------------------------------------------------------------------------


@router.get("/password/reset", response_class=HTMLResponse)
def reset_form(request: Request) -> HTMLResponse:
    return render(request, "auth/reset.html", title="Reset your password", error=None, email="")


@router.post("/password/reset", response_class=HTMLResponse, dependencies=[LoginRate])
async def reset(request: Request, form: CheckedForm) -> Any:
    email = _field(form, "email")
    if "@" not in email:
        return render(
            request,
            "auth/reset.html",
            status_code=422,
            title="Reset your password",
            error="Enter the email of your account.",
            email=email,
        )
    await run_in_threadpool(accounts.request_password_reset, app_of(request), email, client=_client(request))
    return redirect(
        request,
        PORTAL + "/password/reset/confirm",
        flash_text="If an account has this email, a reset code is on its way to it. It works once, for 30 minutes.",
        kind="info",
    )


def _confirm_page(request: Request, *, error: str | None = None, token: str = "", status: int = 200) -> HTMLResponse:
    return render(
        request, "auth/reset_confirm.html", status_code=status, title="Choose a new password", error=error, token=token
    )


@router.get("/password/reset/confirm", response_class=HTMLResponse)
def reset_confirm_form(request: Request, token: str = "") -> HTMLResponse:
    return _confirm_page(request, token=token[:200])


@router.post("/password/reset/confirm", response_class=HTMLResponse)
async def reset_confirm(request: Request, form: CheckedForm) -> Any:
    token = _field(form, "token", 200).strip()
    new, again = _field(form, "new_password", PASSWORD_MAX), _field(form, "new_password_again", PASSWORD_MAX)
    if new != again:
        return _confirm_page(request, error="The two new passwords differ.", token=token, status=422)
    try:
        await run_in_threadpool(accounts.confirm_password_reset, app_of(request), token, new)
    except TombolaError as exc:
        return _confirm_page(request, error=login_message(exc), token=token, status=exc.status)
    return redirect(request, PORTAL + "/login", flash_text="Your password is set. Sign in with it.")


# --- account -------------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, portal: Page) -> HTMLResponse:
    return render(request, "auth/account.html", title="Your account", error=None)


@router.post("/account/password", response_class=HTMLResponse, dependencies=[LoginRate])
async def change_password(request: Request, portal: Page, form: CheckedForm) -> Any:
    """Change one's own password (``server.accounts.service.change_password``): the current one
    proves it, the account's other logins end, this one stays."""
    current = _field(form, "current_password", PASSWORD_MAX)
    new, again = _field(form, "new_password", PASSWORD_MAX), _field(form, "new_password_again", PASSWORD_MAX)
    if new != again:
        error = "The two new passwords differ."
        return render(request, "auth/account.html", status_code=422, title="Your account", error=error)
    user_id, session_id = accounts.session_of(portal.principal)
    try:
        done = await run_in_threadpool(
            accounts.change_password, app_of(request), user_id, session_id, current, new, client=_client(request)
        )
    except TombolaError as exc:
        error = "The current password is wrong." if exc.code == "login_failed" else login_message(exc)
        return render(request, "auth/account.html", status_code=exc.status, title="Your account", error=error)
    ended = int(done["sessions_ended"])
    others = f" {ended} other sign-in{'s' if ended != 1 else ''} ended." if ended else ""
    return redirect(request, PORTAL + "/account", flash_text="Your password is changed." + others)
