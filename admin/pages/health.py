"""System health (``/admin/health``), for installation-wide system admins only: the HSM token
(reachable, its key ids), both databases (reachable, Alembic revision against head), the audit
backend (local or S3, how far the archive reaches), the latest checkpoint's age and the software
identity (SHA-256 of each package, as the POS app's About screen shows its own).

Everything is :func:`server.status.health`; the page reads and changes nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from admin.menu import MENU, MenuEntry
from admin.web import PORTAL, Portal, PortalError, app_of, render, require_portal_role
from server import status
from server.auth import SYSTEM_ADMIN

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
Admin = Depends(require_portal_role(SYSTEM_ADMIN))
MENU.append(MenuEntry("System health", "/admin/health", (SYSTEM_ADMIN,), order=80))


@router.get("/health", response_class=HTMLResponse)
async def health_page(request: Request, portal: Portal = Admin) -> HTMLResponse:
    if portal.principal.tenant is not None:
        raise PortalError(403, "forbidden", "System health is for installation-wide system admins.")
    app = app_of(request)
    report = await run_in_threadpool(status.health, app)
    parts = ("hsm", "business_db", "core_db", "audit", "checkpoint")
    ok = all(report[p]["ok"] for p in parts) and not report["checkpoint"].get("stale")
    return render(request, "health/health.html", title="System health", h=report, all_ok=ok)
