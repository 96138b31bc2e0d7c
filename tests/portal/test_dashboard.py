"""The dashboard in Chromium: today's sales and jackpots of the person's venues, devices by
last check-in, and alerts (a printer error a device reported, a device that has not synced since
its raffle's sales closed); a manager of another venue sees none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pos_client import PosClient
from tests.portal.test_devices import _raffle, _revoke, services

pytestmark = pytest.mark.browser


def test_dashboard_shows_sales_devices_and_alerts_of_the_venue(
    portal: Any, browser: Any, browser_page: Any, login: Any, shot: Any, check_page: Any, tmp_path: Path
) -> None:
    from server.enrollment import service as enrollment
    from server.raffles import service as raffles

    selling = _raffle(portal, "Dashboard 50/50")
    closing = _raffle(portal, "Early bird 50/50")
    with services(portal) as app:
        code = enrollment.create_enrollment_code(app, portal.venue_id)["code"]
    pos = PosClient(tmp_path / "dash.db")
    try:
        pos.enroll(code, portal.url, device_name="Door till 2")
        device_id = str(pos.device_id)
        pos.sell(selling, 5)  # 8.00
        pos.record_event("printer.error", {"reason": "paper out"})
        pos.sync()
        with services(portal) as app:
            raffles.close_raffle(app, closing)  # the device holds numbers of it and has not synced since

        page = browser_page
        login(page, "venue_manager")
        page.goto("/admin/")
        assert page.get_by_role("heading", name="Dashboard", exact=True).is_visible()
        sales = page.locator("section[aria-labelledby=sales-title]")
        assert "Dashboard 50/50" in sales.inner_text() and "8.00 USD" in sales.inner_text()
        jackpots = page.locator("section[aria-labelledby=jackpots-title]")
        assert "dashboard 50/50" in jackpots.inner_text().lower() and "4.00 USD" in jackpots.inner_text()
        alerts = page.locator("ul.alerts")
        printer = alerts.locator("li", has_text="Door till 2").filter(has_text="paper out")
        assert printer.count() == 1 and "Printer" in printer.inner_text()
        unsynced = alerts.locator("li", has_text="Early bird 50/50")
        assert "Not synced" in unsynced.first.inner_text() and "Door till 2" in unsynced.first.inner_text()
        door = page.locator("tr", has_text="Door till 2")
        assert "Online" in door.inner_text()
        shot(page, "dashboard-alerts")
        check_page(page)
        printer.get_by_role("link", name="Door till 2").click()
        page.wait_for_url(f"**/admin/devices/{device_id}")
        assert "printer.error" in page.locator("#events ~ .table-wrap").inner_text()

        other = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=portal.url)
        try:
            outsider = other.new_page()
            login(outsider, "venue_manager_other")
            outsider.goto("/admin/")
            text = outsider.locator("main").inner_text()
            assert "Door till 2" not in text and "Dashboard 50/50" not in text and "Riverside" not in text
            check_page(outsider)
        finally:
            other.close()
    finally:
        pos.close()
        _revoke(portal, *(d for d in [pos.device_id] if d))
