"""The dashboard (``/admin/``): today's sales and jackpots, devices online and offline, alerts.

Everything is scoped to the signed-in person's tenant and venues:

* sales since midnight UTC by raffle: ``server.reports.service.sales`` (the sales report, POS
  and online, voids and refunds subtracted);
* jackpots of the open 50/50 raffles the person sees: ``server.raffles.service.public_raffles``
  (the public list's jackpot: its share of the valid sales), for the raffles of
  ``list_visible_raffles``;
* devices by last check-in (:mod:`admin.pages.fleet`: green up to 10 minutes, amber to 30, red
  beyond) and the alerts of :func:`admin.pages.fleet.alerts` (past 80% of their numbers, near
  the end of their offline lease, not synced since sales close, printer errors).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from admin.pages import fleet
from admin.web import PORTAL, Page, app_of, render
from server.raffles import service as raffles
from server.reports import service as reports

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)


def _midnight_iso(now_ms: int) -> str:
    day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, portal: Page) -> HTMLResponse:
    app = app_of(request)
    principal = portal.principal
    visible = {r["id"]: r for r in raffles.list_visible_raffles(app, principal)}
    today = reports.sales(app, principal, group_by="raffle", since=_midnight_iso(app.now_ms()))
    sales_rows: list[dict[str, Any]] = [
        r
        | {
            "name": visible[r["group"]]["name"] if r["group"] in visible else r["group"],
            "currency": visible[r["group"]]["currency"] if r["group"] in visible else "USD",
        }
        for r in today["rows"]
    ]
    currencies = {r["currency"] for r in sales_rows} or {"USD"}
    jackpots = [
        r for r in raffles.public_raffles(app) if r["id"] in visible and r["fifty_fifty"] and r["status"] == "open"
    ]
    devices = fleet.fleet(app, principal)
    active = [d for d in devices if d.active]
    counts = {css: sum(1 for d in active if d.check_in.css == css) for css in ("ok", "warn", "bad")}
    return render(
        request,
        "dashboard/index.html",
        title="Dashboard",
        sales_rows=sales_rows,
        totals=today["totals"],
        one_currency=next(iter(currencies)) if len(currencies) == 1 else None,
        jackpots=jackpots,
        counts=counts,
        devices=sorted(active, key=lambda d: d.last_contact_ms)[:8],
        device_total=len(active),
        alerts=fleet.alerts(app, principal, devices),
        day=_midnight_iso(app.now_ms())[:10],
        sees_devices=portal.role in ("admin", "business_admin", "venue_manager"),
    )
