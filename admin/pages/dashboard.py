"""The dashboard (``/admin/``): a placeholder the devices and reports pages fill in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from admin.web import PORTAL, Page, render

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, portal: Page) -> HTMLResponse:
    return render(request, "dashboard.html", title="Dashboard")
