"""Reports (``/admin/reports/...``): sales by hour, venue, raffle, device, seller and payment
method with a chart, and the GLI-31 report set (drawing, exceptions, voided numbers, device
events), each a table that sorts on the server (``?sort=column&dir=asc|desc``, no script) and
downloads as CSV.

Every number comes from :mod:`server.reports.service`, the functions behind ``GET /reports/*`` and
``tombola report``; its scope rule (a venue manager sees their venues; business admins and
auditors their organisation) is the one applied here. The CSV is the service's own
(:func:`server.reports.service.to_csv`), byte for byte what ``GET /reports/NAME?format=csv``
answers. Charts are SVG drawn by pygal on the server and served as ``image/svg+xml`` for an
``<img>``: pygal's SVG carries a ``<style>`` element (and a configuration ``<script>``), which the
portal's CSP refuses inside an HTML page, while an image document runs no script and reports no
violation (checked in Chromium; docs/portal.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pygal
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pygal.style import Style

from admin.menu import MENU, MenuEntry
from admin.web import PORTAL, Portal, app_of, render, require_portal_role
from server.enrollment import service as enrollment
from server.errors import InvalidRequest
from server.raffles import service as raffles
from server.reports import service
from sync_protocol.messages import EVENT_TYPES

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)
Reader = Depends(require_portal_role(*service.REPORT_ROLES))
MENU.append(MenuEntry("Reports", "/admin/reports", service.REPORT_ROLES, order=40))

#: the report pages, in the order of their tabs: (path part, label)
TABS = (
    ("sales", "Sales"),
    ("drawing", "Drawing"),
    ("exceptions", "Exceptions"),
    ("voided-numbers", "Voided numbers"),
    ("device-events", "Device events"),
)
GROUP_LABELS = {
    "hour": "Hour",
    "venue": "Venue",
    "raffle": "Raffle",
    "device": "Device",
    "seller": "Seller",
    "payment_method": "Payment method",
}
COLUMN_LABELS = {
    "group": "Group",
    "sales": "Sales",
    "tickets": "Tickets",
    "gross_cents": "Gross",
    "voided_sales": "Voided sales",
    "voided_tickets": "Voided tickets",
    "voided_cents": "Voided",
    "refunded_sales": "Refunded sales",
    "refunded_cents": "Refunded",
    "net_cents": "Net",
    "at": "Time (UTC)",
    "exception": "Exception",
    "event_type": "Audit event",
    "raffle_id": "Raffle",
    "venue_id": "Venue",
    "device_id": "Device",
    "seq": "Seq",
    "record_id": "Record",
    "actor": "Actor",
    "seller_id": "Seller",
    "code": "Code",
    "detail": "Detail",
    "voids_sale_id": "Voids sale",
    "audit_index": "Audit index",
    "type": "Type",
    "hash": "Hash",
    "tier": "Tier",
    "position": "Position",
    "ticket_number": "Ticket",
    "amount_cents": "Amount",
    "redrawn": "Redrawn",
}
#: columns of the sales table shown on the page (the CSV has every column)
SALES_SHOWN = ("group", "sales", "tickets", "gross_cents", "voided_cents", "refunded_cents", "net_cents")
CHART_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b2330",
    foreground_strong="#1b2330",
    foreground_subtle="#55606e",
    colors=("#1d4ed8", "#166534", "#991b1b"),
    font_family="DejaVu Sans, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=12,
    title_font_size=16,
    legend_font_size=13,
)


def _opt(value: str | None, limit: int = 64) -> str | None:
    """A query value, None when empty; over-long values are refused like the API refuses them."""
    if value is None or not value.strip():
        return None
    if len(value) > limit or "\x00" in value:
        raise InvalidRequest(f"a filter value is at most {limit} characters", field="query")
    return value.strip()


def _names(request: Request, portal: Portal) -> dict[str, dict[str, str]]:
    """Names of the raffles, venues and devices the signed-in person may see, by id."""
    app = app_of(request)
    principal = portal.principal
    venues = {
        v["id"]: v["name"]
        for v in raffles.list_venues(app)
        if principal.sees_venue(str(v["organisation_id"]), str(v["id"]))
    }
    return {
        "raffle": {r["id"]: r["name"] for r in raffles.list_visible_raffles(app, principal)},
        "venue": venues,
        "device": {d["id"]: d["name"] or d["id"] for d in enrollment.list_devices(app) if d["venue_id"] in venues},
    }


def sort_rows(rows: list[dict[str, Any]], columns: list[str], sort: str | None, direction: str) -> list[dict[str, Any]]:
    """``rows`` ordered by ``sort`` (one of ``columns``; as the report gave them otherwise), with
    empty values last either way; numbers compare as numbers, the rest as text."""
    if sort not in columns:
        return rows
    filled = [r for r in rows if r.get(sort) not in (None, "")]
    empty = [r for r in rows if r.get(sort) in (None, "")]

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row[sort]
        if isinstance(value, bool):
            return (0, int(value))
        return (0, value) if isinstance(value, int | float) else (1, str(value).lower())

    return sorted(filled, key=key, reverse=direction == "desc") + empty


def _query(params: dict[str, str | None], **changes: str | None) -> str:
    merged = {k: v for k, v in (params | changes).items() if v not in (None, "")}
    return urlencode(merged)


def _table(
    report: dict[str, Any], params: dict[str, str | None], shown: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The sorted table of a report for the template: columns (with their sort links), rows."""
    columns = [c for c in report["columns"] if shown is None or c in shown]
    sort, direction = params.get("sort"), "desc" if params.get("dir") == "desc" else "asc"
    heads = []
    for column in columns:
        active = column == sort
        next_dir = "desc" if active and direction == "asc" else "asc"
        heads.append(
            {
                "key": column,
                "label": COLUMN_LABELS.get(column, column.replace("_", " ").capitalize()),
                "href": "?" + _query(params, sort=column, dir=next_dir),
                "aria_sort": ("ascending" if direction == "asc" else "descending") if active else None,
                "numeric": column.endswith("_cents")
                or column in ("sales", "tickets", "seq", "audit_index", "position")
                or column.endswith(("_sales", "_tickets"))
                or column == "ticket_number",
            }
        )
    return {"heads": heads, "rows": sort_rows(list(report["rows"]), columns, sort, direction)}


async def _run(
    fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> tuple[dict[str, Any] | None, str | None]:
    """The report, or (None, the sentence) when the filters are refused (a bad time or kind)."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs), None
    except InvalidRequest as exc:
        return None, f"{exc.detail} ({exc.code})"


def _csv(report: dict[str, Any]) -> Response:
    return Response(
        service.to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{report["report"]}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _page(request: Request, name: str, title: str, **ctx: Any) -> HTMLResponse:
    status = 422 if ctx.get("error") else 200
    return render(request, f"reports/{name}.html", status_code=status, title=title, tabs=TABS, tab=name, **ctx)


# --- sales ---------------------------------------------------------------------------------------


def _sales_params(request: Request) -> dict[str, str | None]:
    q = request.query_params
    group_by = q.get("group_by") or "hour"
    return {
        "group_by": group_by,
        "raffle": _opt(q.get("raffle")),
        "from": _opt(q.get("from"), 40),
        "to": _opt(q.get("to"), 40),
        "sort": _opt(q.get("sort"), 32),
        "dir": _opt(q.get("dir"), 4),
    }


async def _sales(
    request: Request, portal: Portal, params: dict[str, str | None]
) -> tuple[dict[str, Any] | None, str | None]:
    return await _run(
        service.sales,
        app_of(request),
        portal.principal,
        group_by=params["group_by"] or "hour",
        raffle=params["raffle"],
        since=params["from"],
        until=params["to"],
    )


def _label(group_by: str, value: Any, names: dict[str, dict[str, str]]) -> str:
    if value in (None, ""):
        return "(none)"
    if group_by == "hour":
        return str(value)[:16].replace("T", " ")  # YYYY-MM-DD HH:MM (UTC)
    return names.get(group_by, {}).get(str(value), str(value))


@router.get("/reports", response_class=HTMLResponse)
async def sales_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    params = _sales_params(request)
    report, error = await _sales(request, portal, params)
    names = await run_in_threadpool(_names, request, portal)
    table = _table(report, params, SALES_SHOWN) if report else None
    chart = None
    if report and report["rows"]:
        chart = "/admin/reports/sales.svg?" + _query(params, sort=None, dir=None)
    return _page(
        request,
        "sales",
        "Reports: sales",
        params=params,
        report=report,
        table=table,
        error=error,
        names=names,
        group_labels=GROUP_LABELS,
        label=lambda value: _label(params["group_by"] or "hour", value, names),
        chart=chart,
        csv="/admin/reports/sales.csv?" + _query(params, sort=None, dir=None),
        query=lambda **changes: _query(params, **changes),
    )


@router.get("/reports/sales.csv")
async def sales_csv(request: Request, portal: Portal = Reader) -> Response:
    params = _sales_params(request)
    report = await run_in_threadpool(
        service.sales,
        app_of(request),
        portal.principal,
        group_by=params["group_by"] or "hour",
        raffle=params["raffle"],
        since=params["from"],
        until=params["to"],
    )
    return _csv(report)


def sales_chart(report: dict[str, Any], label: Callable[[Any], str]) -> str:
    """The net sales of each group as a bar chart (a line over time when grouped by hour), SVG."""
    group_by = report["group_by"]
    rows = report["rows"]
    kind = pygal.Line if group_by == "hour" and len(rows) > 1 else pygal.Bar
    chart = kind(
        js=[],
        style=CHART_STYLE,
        width=900,
        height=360,
        show_legend=False,
        x_label_rotation=30 if len(rows) > 6 else 0,
        truncate_label=24,
        print_values=len(rows) <= 12,
        value_formatter=lambda v: f"{v:,.2f}",
        margin=16,
        disable_xml_declaration=True,
    )
    chart.title = f"Net sales by {GROUP_LABELS.get(group_by, group_by).lower()}"
    chart.x_labels = [label(r["group"]) for r in rows]
    chart.add("Net", [r["net_cents"] / 100 for r in rows])
    return str(chart.render(is_unicode=True))


@router.get("/reports/sales.svg")
async def sales_svg(request: Request, portal: Portal = Reader) -> Response:
    params = _sales_params(request)
    report, error = await _sales(request, portal, params)
    if report is None:
        raise InvalidRequest(error or "bad filters")
    names = await run_in_threadpool(_names, request, portal)
    group_by = params["group_by"] or "hour"
    svg = await run_in_threadpool(sales_chart, report, lambda v: _label(group_by, v, names))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


# --- the GLI-31 reports --------------------------------------------------------------------------


def _params(request: Request, *names: str) -> dict[str, str | None]:
    q = request.query_params
    out = {name: _opt(q.get(name), 40 if name in ("from", "to") else 64) for name in names}
    out["sort"], out["dir"] = _opt(q.get("sort"), 32), _opt(q.get("dir"), 4)
    return out


async def _raffle_report(
    request: Request, portal: Portal, name: str, fn: Callable[..., dict[str, Any]], title: str
) -> HTMLResponse:
    params = _params(request, "raffle")
    names = await run_in_threadpool(_names, request, portal)
    report, error = None, None
    if params["raffle"]:
        report, error = await _run(fn, app_of(request), portal.principal, raffle=params["raffle"])
    return _page(
        request,
        name,
        title,
        params=params,
        names=names,
        report=report,
        error=error,
        table=_table(report, params) if report else None,
        csv=f"/admin/reports/{name}.csv?" + _query(params, sort=None, dir=None) if report else None,
    )


@router.get("/reports/drawing", response_class=HTMLResponse)
async def drawing_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    return await _raffle_report(request, portal, "drawing", service.drawing, "Reports: drawing")


@router.get("/reports/voided-numbers", response_class=HTMLResponse)
async def voided_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    return await _raffle_report(request, portal, "voided-numbers", service.voided_numbers, "Reports: voided numbers")


@router.get("/reports/exceptions", response_class=HTMLResponse)
async def exceptions_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    params = _params(request, "raffle", "from", "to", "kind")
    report, error = await _run(
        service.exceptions,
        app_of(request),
        portal.principal,
        raffle=params["raffle"],
        since=params["from"],
        until=params["to"],
        kind=params["kind"],
    )
    names = await run_in_threadpool(_names, request, portal)
    shown = ("at", "exception", "raffle_id", "device_id", "actor", "code", "detail", "audit_index")
    return _page(
        request,
        "exceptions",
        "Reports: exceptions",
        params=params,
        names=names,
        report=report,
        error=error,
        kinds=service.EXCEPTION_KINDS,
        table=_table(report, params, shown) if report else None,
        csv="/admin/reports/exceptions.csv?" + _query(params, sort=None, dir=None),
    )


@router.get("/reports/device-events", response_class=HTMLResponse)
async def device_events_page(request: Request, portal: Portal = Reader) -> HTMLResponse:
    params = _params(request, "device", "from", "to", "type")
    report, error = await _run(
        service.device_event_log,
        app_of(request),
        portal.principal,
        device=params["device"],
        since=params["from"],
        until=params["to"],
        type=params["type"],
        limit=1000,
    )
    names = await run_in_threadpool(_names, request, portal)
    shown = ("at", "device_id", "seq", "type", "seller_id", "detail")
    return _page(
        request,
        "device-events",
        "Reports: device events",
        params=params,
        names=names,
        report=report,
        error=error,
        types=sorted(EVENT_TYPES),
        table=_table(report, params, shown) if report else None,
        csv="/admin/reports/device-events.csv?" + _query(params, sort=None, dir=None),
    )


@router.get("/reports/{name}.csv")
async def report_csv(request: Request, name: str, portal: Portal = Reader) -> Response:
    """The CSV of a GLI-31 report with the page's filters (the service's CSV, as the API's)."""
    app, principal = app_of(request), portal.principal
    if name in ("drawing", "voided-numbers"):
        raffle = _params(request, "raffle")["raffle"]
        if raffle is None:
            raise InvalidRequest("choose a raffle", field="raffle")
        fn = service.drawing if name == "drawing" else service.voided_numbers
        report = await run_in_threadpool(fn, app, principal, raffle=raffle)
    elif name == "exceptions":
        p = _params(request, "raffle", "from", "to", "kind")
        report = await run_in_threadpool(
            service.exceptions, app, principal, raffle=p["raffle"], since=p["from"], until=p["to"], kind=p["kind"]
        )
    elif name == "device-events":
        p = _params(request, "device", "from", "to", "type")
        report = await run_in_threadpool(
            service.device_event_log,
            app,
            principal,
            device=p["device"],
            since=p["from"],
            until=p["to"],
            type=p["type"],
            limit=1000,
        )
    else:
        from server.errors import NotFound

        raise NotFound(f"no report {name[:40]}")
    return _csv(report)
