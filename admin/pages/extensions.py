"""Emergency range extension: from a device's page, a number and a reason.

* ``POST /admin/devices/{id}/extend`` calls ``server.accounts.approvals.request_extension`` (the
  service of ``POST /v1/admin/devices/{id}/extension-requests`` and ``tombola approval
  extension``): up to the venue's cap the grant is issued at once (through
  ``server.enrollment.service.extend_device``) and the browser goes to the grant's page; above
  it a two-person request is made and the browser goes to the request's page;
* ``/admin/devices/{id}/grants/{grant_id}``: the confirmation: the grant (numbers, raffle,
  reason) and whether it reached the device; until the device syncs, an htmx fragment
  (``.../status``) is polled every few seconds and turns to "delivered" by itself;
* ``/admin/extension-requests`` and ``/admin/extension-requests/{id}``: the requests the person
  sees; a system admin other than the asker approves (which issues the grant through the same
  extension service) or denies with a reason (``server.accounts.approvals.approve`` / ``deny``:
  the two-person rule of ``server.two_person.require_second_approval``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from admin.menu import MENU, MenuEntry
from admin.pages import fleet
from admin.pages.devices import DEVICE_ROLES, MAX_EXTENSION, Floor, device_page, text_field
from admin.web import PORTAL, CheckedForm, Portal, app_of, redirect, render
from server.accounts import approvals
from server.accounts import service as accounts
from server.auth import SYSTEM_ADMIN, Principal
from server.context import Tombola
from server.errors import InvalidRequest, NotFound
from server.raffles import service as raffles
from server.two_person import extension_cap
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
#: the confirmation page asks for the delivery status this often until the device synced
POLL_S = 3

MENU.append(MenuEntry("Extensions", "/admin/extension-requests", DEVICE_ROLES, order=25))


def _numbers(form: Any) -> int:
    raw = text_field(form, "numbers", 12).replace(",", "").replace("_", "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_EXTENSION:
        raise InvalidRequest(f"the number of numbers is a whole number from 1 to {MAX_EXTENSION:,}", field="numbers")
    return int(raw)


@router.post("/devices/{device_id}/extend", response_class=HTMLResponse, response_model=None)
async def extend(request: Request, device_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    _device, venue = await run_in_threadpool(fleet.visible_device, app, portal.principal, device_id)
    raffle_id = text_field(form, "raffle_id", 64)
    reason = text_field(form, "reason")
    values = {"raffle_id": raffle_id, "numbers": text_field(form, "numbers", 12), "reason": reason}
    try:
        numbers = _numbers(form)
        open_ids = {r["id"] for r in await run_in_threadpool(raffles.list_raffles, app, str(venue["id"]))}
        if raffle_id not in open_ids:
            raise InvalidRequest("choose one of the venue's open raffles", field="raffle_id")
        if not reason:
            raise InvalidRequest("an extension needs a reason: it goes into the audit log", field="reason")
        done = await run_in_threadpool(
            approvals.request_extension, app, portal.principal, device_id, raffle_id, numbers, reason
        )
    except TombolaError as exc:
        return await run_in_threadpool(
            partial(
                device_page, request, portal, device_id, status_code=exc.status, errors={"extend": exc}, values=values
            )
        )
    if done["status"] == "granted":
        grant = done["grant"]
        text = f"Extension granted: numbers {grant['first_number']:,} to {grant['last_number']:,}."
        return redirect(request, f"/admin/devices/{device_id}/grants/{grant['grant_id']}", flash_text=text)
    approval = done["approval"]
    text = "Above the venue's cap: a second system admin must approve this extension."
    return redirect(request, f"/admin/extension-requests/{approval['id']}", flash_text=text, kind="warning")


def _grant_context(app: Tombola, principal: Principal, device_id: str, grant_id: str) -> dict[str, Any]:
    device, venue = fleet.visible_device(app, principal, device_id)
    view = fleet.find_grant(app, device_id, grant_id)
    g = view.grant
    dv = fleet.view(app, device, venue)
    usage = next((u for u in dv.usage if u.raffle_id == g.raffle_id), None)
    raffle = raffles.get_raffle(app, g.raffle_id)
    return {
        "d": dv,
        "g": g,
        "grant_kind": view.kind,
        "grant_status": view.status,
        "grant_reason": view.reason,
        "raffle": raffle,
        "usage": usage,
        "delivered": fleet.delivered(device, g.issued_at_ms),
        "poll_s": POLL_S,
    }


@router.get("/devices/{device_id}/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(request: Request, device_id: str, grant_id: str, portal: Portal = Floor) -> HTMLResponse:
    ctx = _grant_context(app_of(request), portal.principal, device_id, grant_id)
    return render(request, "devices/grant.html", title="Extension granted", **ctx)


@router.get("/devices/{device_id}/grants/{grant_id}/status", response_class=HTMLResponse)
def grant_status(request: Request, device_id: str, grant_id: str, portal: Portal = Floor) -> HTMLResponse:
    ctx = _grant_context(app_of(request), portal.principal, device_id, grant_id)
    return render(request, "devices/_grant_status.html", **ctx)


# --- two-person requests -------------------------------------------------------------------------


def _visible_request(app: Tombola, principal: Principal, approval: dict[str, Any]) -> bool:
    if approval["kind"] != "extension":
        return False
    venue_id = str(approval["subject"].get("venue_id", ""))
    try:
        venue = raffles.get_venue(app, venue_id)
    except NotFound:
        return principal.installation_wide
    return principal.sees_venue(str(venue["organisation_id"]), venue_id)


def _request_context(app: Tombola, principal: Principal, approval_id: str) -> dict[str, Any]:
    try:
        approval = approvals.get_approval(app, approval_id)
    except NotFound:
        raise NotFound(f"no request {approval_id}") from None
    if not _visible_request(app, principal, approval):
        raise NotFound(f"no request {approval_id}")
    subject = approval["subject"]
    device, venue = enrollment_of(app, str(subject["device_id"]))
    try:
        raffle: dict[str, Any] | None = raffles.get_raffle(app, str(subject["raffle_id"]))
    except NotFound:
        raffle = None
    may_decide = (
        approval["status"] == "pending"
        and principal.role == SYSTEM_ADMIN
        and principal.installation_wide
        and approval["requested_by"] != principal.id
    )
    return {
        "a": approval,
        "device": device,
        "venue": venue,
        "raffle": raffle,
        "cap": extension_cap(app, str(subject.get("venue_id", ""))),
        "error": None,
        "may_decide": may_decide,
        "mine": approval["requested_by"] == principal.id,
        "decided_grant": approval["result"].get("grant_id"),
        "asked_by": person(app, str(approval["requested_by"])),
        "decided_by": person(app, str(approval["decided_by"])) if approval["decided_by"] else "",
    }


def person(app: Tombola, actor: str) -> str:
    """An audit actor (``user:<id>``) as the person's email when it is a person's account."""
    if not actor.startswith("user:"):
        return actor
    try:
        return str(accounts.get_user(app, actor.removeprefix("user:"))["email"])
    except NotFound:
        return actor


def enrollment_of(app: Tombola, device_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    from server.enrollment import service as enrollment

    try:
        device = enrollment.get_device(app, device_id)
    except NotFound:
        return None, None
    return device, raffles.get_venue(app, str(device["venue_id"]))


@router.get("/extension-requests", response_class=HTMLResponse)
def request_list(request: Request, portal: Portal = Floor) -> HTMLResponse:
    app = app_of(request)
    rows = [a for a in approvals.list_approvals(app) if _visible_request(app, portal.principal, a)]
    names: dict[str, str] = {}
    for a in rows:
        device_id = str(a["subject"].get("device_id", ""))
        if device_id not in names:
            device, _ = enrollment_of(app, device_id)
            names[device_id] = str(device["name"] or device_id) if device else device_id
    may_approve = portal.role == SYSTEM_ADMIN and portal.principal.installation_wide
    return render(
        request, "devices/requests.html", title="Extension requests", rows=rows, names=names, may_approve=may_approve
    )


@router.get("/extension-requests/{approval_id}", response_class=HTMLResponse)
def request_page(request: Request, approval_id: str, portal: Portal = Floor) -> HTMLResponse:
    ctx = _request_context(app_of(request), portal.principal, approval_id)
    return render(request, "devices/request.html", title="Extension request", **ctx)


@router.post("/extension-requests/{approval_id}/approve", response_class=HTMLResponse, response_model=None)
async def approve(request: Request, approval_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    await run_in_threadpool(_request_context, app, portal.principal, approval_id)
    try:
        done = await run_in_threadpool(approvals.approve, app, approval_id, portal.principal)
    except TombolaError as exc:
        return await run_in_threadpool(partial(_request_refused, request, portal, approval_id, exc))
    if done["status"] == "failed":
        text = f"Approved, but the extension could not be issued: {done['result'].get('detail', '')}"
        return redirect(request, f"/admin/extension-requests/{approval_id}", flash_text=text, kind="error")
    device_id = done["subject"]["device_id"]
    grant_id = done["result"]["grant_id"]
    text = "Approved: the extension is granted and reaches the device at its next sync."
    return redirect(request, f"/admin/devices/{device_id}/grants/{grant_id}", flash_text=text)


@router.post("/extension-requests/{approval_id}/deny", response_class=HTMLResponse, response_model=None)
async def deny(request: Request, approval_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    await run_in_threadpool(_request_context, app, portal.principal, approval_id)
    try:
        await run_in_threadpool(
            partial(approvals.deny, app, approval_id, portal.principal, reason=text_field(form, "reason"))
        )
    except TombolaError as exc:
        return await run_in_threadpool(partial(_request_refused, request, portal, approval_id, exc))
    return redirect(request, f"/admin/extension-requests/{approval_id}", flash_text="Request denied.", kind="info")


def _request_refused(request: Request, portal: Portal, approval_id: str, exc: TombolaError) -> HTMLResponse:
    ctx = _request_context(app_of(request), portal.principal, approval_id) | {"error": exc}
    return render(request, "devices/request.html", status_code=exc.status, title="Extension request", **ctx)
