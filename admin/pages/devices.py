"""Devices: the list, a device's page, enrollment codes as QR codes, revocation.

* ``/admin/devices`` (``?venue=``): every device the person sees, its last check-in coloured
  by age (:mod:`admin.pages.fleet`), its numbers left, and a form for an enrollment code;
* ``POST /admin/devices/enroll-code``: a one-time code of a venue
  (``server.enrollment.service.create_enrollment_code``) shown with its enrollment link
  (``sync_protocol.enrollment_link``, as ``tombola device enroll-code --link``) as a QR code
  a POS scans (SVG drawn by ``segno``);
* ``/admin/devices/{id}``: the device: check-in, offline lease, pending records, usage per
  raffle, its grants and whether each reached it, its events; the forms of the emergency range
  extension (:mod:`admin.pages.extensions`), of a lost device (:mod:`admin.pages.lost_devices`)
  and of revocation;
* ``POST /admin/devices/{id}/revoke``: ``server.enrollment.service.revoke_device`` with a reason.

Open to system admins, business admins and venue managers, each for the devices of the venues
they see; another tenant's or venue's device is 404 on every page and every POST.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from admin.menu import MENU, MenuEntry
from admin.pages import fleet
from admin.web import PORTAL, CheckedForm, Portal, app_of, redirect, render, require_portal_role
from server.accounts.approvals import list_approvals
from server.enrollment import service as enrollment
from server.errors import NotFound
from server.events import service as device_events
from server.raffles import service as raffles
from server.two_person import extension_cap
from sync_protocol.enrollment_link import enrollment_link
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
#: who manages devices in the portal (each within the venues they see)
DEVICE_ROLES = ("admin", "business_admin", "venue_manager")
Floor = Depends(require_portal_role(*DEVICE_ROLES))
#: the device page lists at most this many of the latest events
EVENTS_SHOWN = 50
#: an extension grants at most this many numbers at once (as ``POST /v1/admin/devices/{id}/extend``)
MAX_EXTENSION = 100_000

MENU.append(MenuEntry("Devices", "/admin/devices", DEVICE_ROLES, order=20))


def text_field(form: Any, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@router.get("/devices", response_class=HTMLResponse)
def device_list(request: Request, portal: Portal = Floor, venue: str = "") -> HTMLResponse:
    app = app_of(request)
    venues = fleet.visible_venues(app, portal.principal)
    if venue and venue not in {v["id"] for v in venues}:
        raise NotFound(f"no venue {venue}")
    devices = fleet.fleet(app, portal.principal, venue or None)
    counts = {css: sum(1 for d in devices if d.active and d.check_in.css == css) for css in ("ok", "warn", "bad")}
    return render(
        request,
        "devices/list.html",
        title="Devices",
        devices=devices,
        venues=venues,
        venue_filter=venue,
        counts=counts,
        revoked=sum(1 for d in devices if not d.active),
    )


@router.post("/devices/enroll-code", response_class=HTMLResponse)
def enroll_code(request: Request, form: CheckedForm, portal: Portal = Floor) -> HTMLResponse:
    app = app_of(request)
    venue_id = text_field(form, "venue_id", 64)
    venues = {v["id"]: v for v in fleet.visible_venues(app, portal.principal)}
    if venue_id not in venues:
        raise NotFound(f"no venue {venue_id}")
    made = enrollment.create_enrollment_code(app, venue_id)
    server_url = app.settings.public_url or str(request.base_url).rstrip("/")
    link = enrollment_link(server_url, made["code"])
    qr = segno.make(link, error="m").svg_inline(scale=5, title="QR code of the enrollment link")
    return render(
        request,
        "devices/enroll_code.html",
        title="Enrollment code",
        code=made["code"],
        expires_at_ms=made["expires_at_ms"],
        link=link,
        qr=Markup(qr),  # noqa: S704 - segno's SVG of our own link (no user markup in it)
        venue=venues[venue_id],
    )


def device_page(
    request: Request,
    portal: Portal,
    device_id: str,
    *,
    status_code: int = 200,
    errors: dict[str, TombolaError] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    """The device's page; ``errors`` by form (``extend``, ``void``, ``ingest``, ``revoke``) are
    shown beside that form, with ``values`` the person typed."""
    app = app_of(request)
    device, venue = fleet.visible_device(app, portal.principal, device_id)
    venue_raffles = raffles.list_raffles(app, str(venue["id"]))
    dv = fleet.view(app, device, venue, venue_raffles=venue_raffles, with_grants=True)
    events = device_events.list_events(app, device_id, limit=device_events.MAX_LIST)[-EVENTS_SHOWN:][::-1]
    for e in events:
        e["detail_text"] = fleet.detail_text(e["detail"])
    held = {g.raffle_id for g in dv.grants if g.status == "active"}
    pending = [
        a
        for a in list_approvals(app, pending_only=True)
        if a["kind"] == "extension" and a["subject"].get("device_id") == device_id
    ]
    return render(
        request,
        "devices/device.html",
        status_code=status_code,
        title=f"Device {dv.name}",
        d=dv,
        events=events,
        open_raffles=[r for r in venue_raffles if r["status"] == "open"],
        held_raffles=[r for r in venue_raffles if r["id"] in held],
        cap=extension_cap(app, str(venue["id"])),
        max_extension=MAX_EXTENSION,
        pending_requests=pending,
        errors=errors or {},
        values=values or {},
        fleet_age=fleet.age_text,
    )


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_detail(request: Request, device_id: str, portal: Portal = Floor) -> HTMLResponse:
    return device_page(request, portal, device_id)


@router.post("/devices/{device_id}/revoke", response_class=HTMLResponse, response_model=None)
async def revoke(request: Request, device_id: str, form: CheckedForm, portal: Portal = Floor) -> Any:
    app = app_of(request)
    await run_in_threadpool(fleet.visible_device, app, portal.principal, device_id)
    reason = text_field(form, "reason")
    try:
        done = await run_in_threadpool(enrollment.revoke_device, app, device_id, reason)
    except TombolaError as exc:
        values = {"revoke_reason": reason}
        return await run_in_threadpool(
            partial(
                device_page, request, portal, device_id, status_code=exc.status, errors={"revoke": exc}, values=values
            )
        )
    if not done["revoked_now"]:
        return redirect(
            request, f"/admin/devices/{device_id}", flash_text="This device was revoked already.", kind="info"
        )
    numbers = sum(v["unsold"] for v in done["voided_grants"])
    text = f"Device revoked: its syncs are refused from now on; {numbers:,} unsold number(s) voided."
    return redirect(request, f"/admin/devices/{device_id}", flash_text=text)
