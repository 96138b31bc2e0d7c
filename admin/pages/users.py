"""Users and roles (``/admin/users...``) and break-glass requests and approvals (``/admin/break-glass``).

Every change is one call of the accounts service (:mod:`server.accounts.service`,
:mod:`server.accounts.approvals`), the functions behind ``/v1/users``, ``/v1/break-glass``,
``/v1/approvals`` and ``tombola user|approval ...``, with their rules: who may manage whom
(:func:`server.accounts.service.check_may_manage`: a system admin anyone, a business admin the
staff of its organisation), the two-person rule (:func:`server.two_person.require_second_approval`:
a second, installation-wide system admin approves, never the requester). Another organisation's
user is 404, as in the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from admin.menu import MENU, MenuEntry
from admin.web import PORTAL, CheckedForm, Portal, PortalError, app_of, redirect, render, require_portal_role
from server.accounts import approvals
from server.accounts import service as accounts
from server.accounts.approvals import BREAK_GLASS_REQUESTERS
from server.auth import BREAK_GLASS_MAX_MINUTES, ROLES, SYSTEM_ADMIN
from server.errors import NotFound
from server.raffles import service as raffles
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
MANAGERS = ("admin", "business_admin")
Manager = Depends(require_portal_role(*MANAGERS))
Asker = Depends(require_portal_role(*sorted(BREAK_GLASS_REQUESTERS)))
MENU.append(MenuEntry("Users", "/admin/users", MANAGERS, order=60))
MENU.append(MenuEntry("Break-glass", "/admin/break-glass", tuple(sorted(BREAK_GLASS_REQUESTERS)), order=65))

#: the roles of the form, in its order (a business admin gets those of server.accounts.service.BUSINESS_GIVES)
ROLE_ORDER = ("venue_manager", "salesperson", "business_admin", "auditor", "admin")  # customers sign up in the shop
FIELD_MAX = 500


def _field(form: FormData, name: str, limit: int = FIELD_MAX) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _roles_for(portal: Portal) -> list[str]:
    """The roles ``portal``'s person may give (the service checks again)."""
    if portal.role == SYSTEM_ADMIN and portal.principal.tenant is None:
        return [r for r in ROLE_ORDER if r in ROLES]
    return [r for r in ROLE_ORDER if r in accounts.BUSINESS_GIVES]


def _venues(request: Request, portal: Portal) -> list[dict[str, Any]]:
    """The venues ``portal``'s person may assign (of its organisation; every one for a system admin)."""
    principal = portal.principal
    return [
        v
        for v in raffles.list_venues(request.app.state.tombola)
        if principal.sees_venue(str(v["organisation_id"]), str(v["id"]))
    ]


def _organisations(venues: list[dict[str, Any]], portal: Portal) -> list[str]:
    if portal.principal.tenant is not None:
        return [portal.principal.tenant]
    return sorted({str(v["organisation_id"]) for v in venues})


def _managed_user(request: Request, portal: Portal, user_id: str) -> dict[str, Any]:
    """The user of the path, when ``portal``'s person may manage it; 404 for another organisation's
    (as ``/v1/users/{id}``), 403 for a role it may not manage."""
    user = accounts.get_user(app_of(request), user_id[:64])
    tenant = portal.principal.tenant
    if tenant is not None and user["organisation_id"] != tenant:
        raise NotFound(f"no user {user_id[:64]}")
    accounts.check_may_manage(portal.principal, user["role"] or "", user["organisation_id"] or "")
    return user


# --- the list and the creation form --------------------------------------------------------------


def _list_page(
    request: Request, portal: Portal, *, error: str | None = None, form: dict[str, Any] | None = None
) -> HTMLResponse:
    app = app_of(request)
    users = accounts.list_users(app, organisation_id=portal.principal.tenant)
    venues = _venues(request, portal)
    venue_names = {v["id"]: v["name"] for v in venues}
    status_filter = request.query_params.get("status") or ""
    if status_filter in ("active", "disabled"):
        users = [u for u in users if u["status"] == status_filter]
    return render(
        request,
        "users/list.html",
        status_code=422 if error else 200,
        title="Users",
        users=users,
        venues=venues,
        venue_names=venue_names,
        organisations=_organisations(venues, portal),
        roles=_roles_for(portal),
        error=error,
        form=form or {},
        status_filter=status_filter,
    )


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, portal: Portal = Manager) -> HTMLResponse:
    return await run_in_threadpool(_list_page, request, portal)


@router.post("/users", response_class=HTMLResponse)
async def create_user(request: Request, form: CheckedForm, portal: Portal = Manager) -> Any:
    app = app_of(request)
    role = _field(form, "role", 16)
    org = portal.principal.tenant or _field(form, "organisation_id", 32)
    venue_ids = [v for v in form.getlist("venue_ids") if isinstance(v, str)][:100]
    if role not in ("venue_manager", "salesperson"):
        venue_ids = []
    email = _field(form, "email", 254)
    kept = {"email": email, "role": role, "organisation_id": org, "venue_ids": venue_ids}
    try:
        accounts.check_may_manage(portal.principal, role, org)
        made = await run_in_threadpool(
            lambda: accounts.create_user(
                app,
                email=email,
                password=_field(form, "password", 1024),
                role=role,
                organisation_id=org,
                venue_ids=venue_ids,
                created_by=portal.principal.id,
            )
        )
    except TombolaError as exc:
        message = f"{exc.detail} ({exc.code})"
        return await run_in_threadpool(lambda: _list_page(request, portal, error=message, form=kept))
    return redirect(request, f"{PORTAL}/users/{made['id']}", flash_text=f"Account {made['email']} created.")


# --- one user ------------------------------------------------------------------------------------


def _user_page(request: Request, portal: Portal, user_id: str, *, error: str | None = None) -> HTMLResponse:
    user = _managed_user(request, portal, user_id)
    venues = _venues(request, portal)
    return render(
        request,
        "users/user.html",
        status_code=422 if error else 200,
        title=f"User {user['email']}",
        user=user,
        venues=venues,
        venue_names={v["id"]: v["name"] for v in venues},
        organisations=_organisations(venues, portal),
        roles=_roles_for(portal),
        error=error,
        is_self=portal.principal.id == f"user:{user['id']}",
    )


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_page(request: Request, user_id: str, portal: Portal = Manager) -> HTMLResponse:
    return await run_in_threadpool(_user_page, request, portal, user_id)


async def _act(request: Request, portal: Portal, user_id: str, action: Any, done: str) -> Any:
    """Run one service call on a user the person may manage; its refusal is shown on the user's page."""
    await run_in_threadpool(_managed_user, request, portal, user_id)
    try:
        await run_in_threadpool(action)
    except TombolaError as exc:
        if exc.status in (403, 404):
            raise
        message = f"{exc.detail} ({exc.code})"
        return await run_in_threadpool(lambda: _user_page(request, portal, user_id, error=message))
    return redirect(request, f"{PORTAL}/users/{user_id}", flash_text=done)


@router.post("/users/{user_id}/disable", response_class=HTMLResponse)
async def disable_user(request: Request, user_id: str, form: CheckedForm, portal: Portal = Manager) -> Any:
    if portal.principal.id == f"user:{user_id}":
        raise PortalError(409, "invalid_request", "You cannot disable your own account.")
    app, reason = app_of(request), _field(form, "reason")
    return await _act(
        request,
        portal,
        user_id,
        lambda: accounts.disable_user(app, user_id, reason=reason, by=portal.principal.id),
        "Account disabled; its sessions have ended.",
    )


@router.post("/users/{user_id}/enable", response_class=HTMLResponse)
async def enable_user(request: Request, user_id: str, form: CheckedForm, portal: Portal = Manager) -> Any:
    app = app_of(request)
    return await _act(
        request,
        portal,
        user_id,
        lambda: accounts.enable_user(app, user_id, by=portal.principal.id),
        "Account enabled.",
    )


@router.post("/users/{user_id}/role", response_class=HTMLResponse)
async def set_role(request: Request, user_id: str, form: CheckedForm, portal: Portal = Manager) -> Any:
    app = app_of(request)
    role = _field(form, "role", 16)
    org = portal.principal.tenant or _field(form, "organisation_id", 32)
    venue_ids = [v for v in form.getlist("venue_ids") if isinstance(v, str)][:100]
    if role not in ("venue_manager", "salesperson"):
        venue_ids = []

    def change() -> None:
        accounts.check_may_manage(portal.principal, role, org)
        accounts.set_role(app, user_id, role=role, organisation_id=org, venue_ids=venue_ids, by=portal.principal.id)

    return await _act(request, portal, user_id, change, f"Role changed to {role.replace('_', ' ')}.")


@router.post("/users/{user_id}/mfa-reset", response_class=HTMLResponse)
async def mfa_reset(request: Request, user_id: str, form: CheckedForm, portal: Portal = Manager) -> Any:
    app = app_of(request)
    return await _act(
        request,
        portal,
        user_id,
        lambda: accounts.mfa_reset(app, user_id, by=portal.principal.id),
        "Second factor removed; the person sets it up again at the next sign-in.",
    )


# --- break-glass ---------------------------------------------------------------------------------


def _approver(portal: Portal) -> bool:
    """Whether ``portal``'s person may decide two-person requests (the rule itself is the service's)."""
    p = portal.principal
    return p.role == SYSTEM_ADMIN and p.tenant is None and p.via == "user"


def _break_glass_page(request: Request, portal: Portal, *, error: str | None = None) -> HTMLResponse:
    app = app_of(request)
    # break-glass only: extension requests have their page (/admin/extension-requests, the devices' area)
    requests = [r for r in approvals.list_approvals(app) if r["kind"] == "break_glass"]
    mine = [r for r in requests if r["requested_by"] == portal.principal.id]
    decide = _approver(portal)
    others = [r for r in requests if r["requested_by"] != portal.principal.id] if decide else []
    people = {f"user:{u['id']}": u["email"] for u in accounts.list_users(app)}
    return render(
        request,
        "users/break_glass.html",
        people=people,
        status_code=422 if error else 200,
        title="Break-glass",
        mine=mine,
        pending=[r for r in others if r["status"] == "pending"],
        decided=[r for r in others if r["status"] != "pending"][:50],
        approver=decide,
        max_minutes=BREAK_GLASS_MAX_MINUTES,
        error=error,
    )


@router.get("/break-glass", response_class=HTMLResponse)
async def break_glass_page(request: Request, portal: Portal = Asker) -> HTMLResponse:
    return await run_in_threadpool(_break_glass_page, request, portal)


@router.post("/break-glass", response_class=HTMLResponse)
async def request_break_glass(request: Request, form: CheckedForm, portal: Portal = Asker) -> Any:
    app = app_of(request)
    try:
        minutes = int(_field(form, "minutes", 4) or "60")
    except ValueError:
        minutes = 0
    try:
        await run_in_threadpool(
            lambda: approvals.request_break_glass(app, portal.principal, reason=_field(form, "reason"), minutes=minutes)
        )
    except TombolaError as exc:
        message = f"{exc.detail} ({exc.code})"
        return await run_in_threadpool(lambda: _break_glass_page(request, portal, error=message))
    return redirect(request, f"{PORTAL}/break-glass", flash_text="Request sent: a second system admin must approve it.")


@router.post("/break-glass/{approval_id}/{decision}", response_class=HTMLResponse)
async def decide(request: Request, approval_id: str, decision: str, form: CheckedForm, portal: Portal = Asker) -> Any:
    """Approve or deny a two-person request (break-glass or an extension above a venue's cap)."""
    if decision not in ("approve", "deny"):
        raise NotFound(f"no action {decision[:20]}")
    if portal.role != SYSTEM_ADMIN or portal.principal.tenant is not None:
        raise PortalError(403, "forbidden", "Only an installation-wide system admin approves two-person requests.")
    app, approval_id = app_of(request), approval_id[:64]
    try:
        if decision == "approve":
            done = await run_in_threadpool(approvals.approve, app, approval_id, portal.principal)
        else:
            reason = _field(form, "reason")
            done = await run_in_threadpool(lambda: approvals.deny(app, approval_id, portal.principal, reason=reason))
    except TombolaError as exc:
        if exc.status in (403, 404):  # not this person's to decide (the requester): the error page
            raise
        message = f"{exc.detail} ({exc.code})"
        return await run_in_threadpool(lambda: _break_glass_page(request, portal, error=message))
    word = {"approved": "approved", "denied": "denied", "failed": "approved, but it failed"}.get(done["status"], "")
    kind = "error" if done["status"] == "failed" else "success"
    return redirect(request, f"{PORTAL}/break-glass", flash_text=f"Request {approval_id} {word}.", kind=kind)
