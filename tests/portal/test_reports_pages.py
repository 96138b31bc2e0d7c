"""The report pages in Chromium: sales by hour, venue, seller and payment method with a chart
drawn on the server (an SVG image, no CSP violation), the GLI-31 reports, tables that sort on the
server, CSV equal to the reports API's, and the scope of each role (docs/portal.md)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from tests.support.app import ADMIN_TOKEN

pytestmark = pytest.mark.browser

REPORT_PAGES = (
    "/admin/reports",
    "/admin/reports?group_by=venue",
    "/admin/reports?group_by=seller",
    "/admin/reports?group_by=payment_method",
    "/admin/reports/drawing",
    "/admin/reports/exceptions",
    "/admin/reports/voided-numbers",
    "/admin/reports/device-events",
)


def _api(portal: Any, path: str, **params: str) -> httpx.Response:
    return httpx.get(portal.url + path, params=params, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


def test_a_venue_manager_reads_sales_with_charts_and_downloads_the_csv(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any, tmp_path: Any
) -> None:
    page = browser_page
    login(page, "venue_manager")
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url("**/admin/reports")
    assert page.get_by_role("heading", name="Reports").is_visible()
    names = {"hour": "Hour", "venue": "Venue", "seller": "Seller", "payment_method": "Payment method"}
    for group_by, label in names.items():
        page.get_by_role("navigation", name="Group sales by").get_by_role("link", name=label).click()
        page.wait_for_url(f"**group_by={group_by}**")
        chart = page.locator("figure.chart img")
        chart.wait_for()
        assert page.evaluate("img => img.complete && img.naturalWidth > 0", chart.element_handle())
        svg = page.request.get(chart.get_attribute("src") or "")
        assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in svg.text() and "Net sales by" in svg.text()
        assert page.locator("table.report-table tbody tr").count() >= 1
        shot(page, f"reports-sales-{group_by}")
        check_page(page)

    # the table sorts on the server: the header is a link with ?sort=
    page.goto("/admin/reports?group_by=venue")
    page.get_by_role("link", name="Net").click()
    page.wait_for_url("**sort=net_cents**")
    assert page.locator("th[aria-sort='ascending']").inner_text().startswith("Net")
    page.get_by_role("link", name="Net").click()
    page.wait_for_url("**dir=desc**")
    assert page.locator("th[aria-sort='descending']").count() == 1

    # the CSV downloads and is the reports API's CSV and JSON
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "sales.csv"
    info.value.save_as(path)
    body = path.read_bytes().decode()
    api_lines = _api(portal, "/reports/sales", group_by="venue", format="csv").text.split("\r\n")
    assert body.split("\r\n") == [
        line for n, line in enumerate(api_lines) if n == 0 or portal.venue_id in line or not line
    ]
    rows = list(csv.DictReader(io.StringIO(body)))
    as_json = _api(portal, "/reports/sales", group_by="venue").json()
    mine = [r for r in as_json["rows"] if r["group"] == portal.venue_id]
    assert [r["group"] for r in rows] == [portal.venue_id]  # the manager's venue only
    assert int(rows[0]["net_cents"]) == mine[0]["net_cents"] and int(rows[0]["tickets"]) == mine[0]["tickets"]


def test_the_gli_reports_render_and_their_csv_matches_the_api(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    page = browser_page
    login(page, "auditor")
    page.goto("/admin/reports/drawing")
    page.get_by_label("Raffle").select_option(label="Spring 50/50")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**raffle={portal.drawn_raffle_id}**")
    assert "PUBLISHED" in page.locator("dl.facts").inner_text()
    assert page.locator("table.report-table tbody tr").count() >= 1
    shot(page, "reports-drawing")
    check_page(page)
    csv_url = page.get_by_role("link", name="Download CSV").get_attribute("href") or ""
    got = page.request.get(csv_url).text()
    assert got == _api(portal, "/reports/drawing", raffle=portal.drawn_raffle_id, format="csv").text

    for path, name in (
        ("/admin/reports/exceptions", "exceptions"),
        (f"/admin/reports/voided-numbers?raffle={portal.raffle_id}", "voided-numbers"),
        (f"/admin/reports/device-events?device={portal.device_id}", "device-events"),
    ):
        page.goto(path)
        assert page.locator("table.report-table").count() == 1, path
        shot(page, f"reports-{name}")
        check_page(page)
    page.goto(f"/admin/reports/device-events?device={portal.device_id}&sort=type&dir=desc")
    assert page.locator("th[aria-sort='descending']").inner_text().startswith("Type")
    api = _api(portal, "/reports/device-events", device=portal.device_id, format="csv").text
    assert page.request.get(f"/admin/reports/device-events.csv?device={portal.device_id}").text() == api

    # a bad time is a sentence on the page, not a 500
    page.goto("/admin/reports/exceptions?from=yesterday")
    assert "is not an ISO 8601 time" in page.get_by_role("alert").inner_text()


def test_reports_are_scoped_by_role_and_venue(portal: Any, browser_page: Any, login: Any) -> None:
    page = browser_page
    login(page, "venue_manager_other")
    page.goto("/admin/reports?group_by=venue")
    assert page.locator("table.report-table tbody").inner_text().strip() == "No rows for these filters."
    for path in (
        f"/admin/reports/drawing?raffle={portal.drawn_raffle_id}",
        f"/admin/reports/drawing.csv?raffle={portal.drawn_raffle_id}",
        f"/admin/reports/device-events?device={portal.device_id}",
        f"/admin/reports/sales.csv?raffle={portal.raffle_id}",
    ):
        assert page.request.get(path).status == 404, path  # another venue's raffle or device: not found
    for path in ("/admin/users", "/admin/audit", "/admin/health", "/admin/break-glass"):
        assert page.request.get(path).status == 403, path
    nav = page.get_by_role("navigation", name="Portal")
    assert nav.get_by_role("link", name="Reports").is_visible()
    for hidden in ("Users", "Audit log", "System health", "Break-glass"):
        assert nav.get_by_role("link", name=hidden).count() == 0
