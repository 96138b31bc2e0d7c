"""The audit log (``/admin/audit``): its entries (filtered by type and time, paged by index, ``limit`` per page), its
verification status and the latest signed checkpoint.

The entries are those the person may read (:func:`server.status.audit_tenant`: installation-wide
admins and auditors every tenant's, others their organisation's), as ``GET /core/audit/entries``
gives them. The verification is :func:`server.status.verify_audit`, the very check of ``tombola
audit verify``; it reads the whole log, so the page loads it as a fragment (htmx, with a progress
indicator; without script a link opens it). The checkpoint is shown as signed: the C2SP note text
as is, with the key ids of its signatures.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from admin.menu import MENU, MenuEntry
from admin.web import PORTAL, Portal, app_of, render, require_portal_role
from server import status
from server.auth import AUDIT_ROLES
from server.errors import InvalidRequest
from server.events.service import parse_since
from sync_protocol.errors import TombolaError

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
Reader = Depends(require_portal_role(*sorted(AUDIT_ROLES)))
MENU.append(MenuEntry("Audit log", "/admin/audit", tuple(sorted(AUDIT_ROLES)), order=70))
PAGE = 50
#: event families offered by the filter (any prefix may be typed in the URL)
FAMILIES = ("auth.", "device.", "draw.", "grant.", "key.", "order.", "raffle.", "rng.", "sync.", "ticket.")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError as exc:
        raise InvalidRequest("after is an entry index", field="after") from exc


def _summary(payload: dict[str, Any]) -> tuple[str, str]:
    """A payload in one short line (each value cut at 32 characters) and in full (indented JSON)."""

    def short(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return text if len(text) <= 32 else text[:31] + "…"

    line = ", ".join(f"{k}={short(v)}" for k, v in payload.items())
    return (line if len(line) <= 160 else line[:159] + "…"), json.dumps(payload, indent=2, sort_keys=True)


def _page(request: Request, portal: Portal) -> HTMLResponse:
    app = app_of(request)
    q = request.query_params
    size = min(max(_int(q.get("limit"), PAGE), 1), status.MAX_PAGE)
    type_prefix = (q.get("type") or "").strip()[:64] or None
    since, until = (q.get("from") or "").strip()[:40], (q.get("to") or "").strip()[:40]
    filters = {"type": type_prefix, "from": since or None, "to": until or None}
    error = None
    page: dict[str, Any] = {"entries": [], "next_after": None, "size": app.core.audit.size()}
    after = -1
    try:
        since_ms = parse_since(since) if since else None
        until_ms = parse_since(until) if until else None
        latest = "after" not in q and not any(filters.values())
        after = status.audit_latest_after(app, portal.principal, limit=size) if latest else _int(q.get("after"), -1)
        page = status.audit_entries(
            app,
            portal.principal,
            type_prefix=type_prefix,
            since_ms=since_ms,
            until_ms=until_ms,
            after=after,
            limit=size,
        )
    except TombolaError as exc:
        if exc.status in (403, 404):
            raise
        error = f"{exc.detail} ({exc.code})"
    for entry in page["entries"]:
        entry["summary"], entry["json"] = _summary(entry.get("payload") or {})
    kept: dict[str, str | int] = {k: v for k, v in filters.items() if v}
    if size != PAGE:
        kept["limit"] = size
    return render(
        request,
        "audit/log.html",
        status_code=422 if error else 200,
        title="Audit log",
        page=page,
        filters=filters,
        families=FAMILIES,
        error=error,
        first=after < 0,
        page_size=size,
        start_href="?" + urlencode(kept | {"after": -1}),
        next_href=None if page["next_after"] is None else "?" + urlencode(kept | {"after": page["next_after"]}),
        checkpoint=status.latest_checkpoint(app),
        now_ms=app.now_ms(),
        tenant=portal.principal.tenant,
    )


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    return await run_in_threadpool(_page, request, portal)


@router.get("/audit/verify", response_class=HTMLResponse)
async def audit_verify(request: Request, portal: Portal = Reader) -> HTMLResponse:
    """The verification of the whole log: a fragment for htmx, or a page of its own without script."""
    result = await run_in_threadpool(status.verify_audit, app_of(request))
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "audit/verify_fragment.html" if fragment else "audit/verify.html",
        title="Audit log verification",
        result=result,
        failure=status.failure_text(result["failure"]),
    )
