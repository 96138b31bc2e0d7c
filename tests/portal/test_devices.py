"""Devices in the portal, in Chromium against a real ``tombola serve``: a venue manager signs in
with TOTP, makes an enrollment code (a QR code a real ``PosClient`` enrolls with), finds the
device, extends its range with a reason, and the device receives the grant at its next sync;
above the venue's cap a second admin approves in the portal; a lost device's export file is
ingested with a progress bar and its remainder voided; a manager of another venue gets 404 for
every page and every POST of the device.

Each test sells in a raffle of its own and revokes the devices it enrolled, so the session's
shared server keeps its other raffles' sales and draw gates as the other tests expect.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pos_client import PosClient

pytestmark = pytest.mark.browser

CAP = 500


@contextmanager
def services(portal: Any) -> Iterator[Any]:
    app = portal.app()
    try:
        yield app
    finally:
        app.close()


def _raffle(portal: Any, name: str) -> str:
    """A 50/50 raffle of the first venue, open for twelve hours, for this test's sales alone."""
    from server.raffles import service as raffles
    from tests.support.app import HOUR_MS

    with services(portal) as app:
        spec = raffles.RaffleCreate(
            venue_id=portal.venue_id,
            name=name,
            price_cents=200,
            number_space=1_000_000,
            sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
            bundles=((5, 800),),
        )
        return str(raffles.create_raffle(app, spec)["id"])


def _cap(portal: Any, cap: int | None) -> None:
    from server.accounts.approvals import set_extension_cap

    with services(portal) as app:
        set_extension_cap(app, portal.venue_id, cap, by="service:portal-tests")


def _revoke(portal: Any, *device_ids: str) -> None:
    from server.enrollment import service as enrollment

    with services(portal) as app:
        for device_id in device_ids:
            enrollment.revoke_device(app, device_id, "end of the portal test")


def _csrf(page: Any) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


def _decode_qr(png: bytes) -> str:
    from PIL import Image
    from pyzbar.pyzbar import decode

    found = decode(Image.open(io.BytesIO(png)))
    assert found, "no QR code in the screenshot"
    return str(found[0].data.decode())


def test_venue_manager_extends_a_device_and_the_pos_receives_the_grant(
    portal: Any, browser: Any, browser_page: Any, login: Any, shot: Any, check_page: Any, tmp_path: Path
) -> None:
    raffle_id = _raffle(portal, "Late bar 50/50")
    _cap(portal, CAP)
    page = browser_page
    login(page, "venue_manager", fresh=True)  # password, then the TOTP code
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Devices").click()
    page.wait_for_url("**/admin/devices")
    shot(page, "devices-list")
    check_page(page)

    # an enrollment code as a QR code; a real PosClient enrolls with the link it carries
    page.get_by_label("Enroll a device at").select_option(label="Riverside Hall")
    page.get_by_role("button", name="New enrollment code").click()
    assert page.get_by_role("heading", name="Enroll a device at Riverside Hall").is_visible()
    link = page.locator("#enroll-link").inner_text()
    code = page.locator("#enroll-code").inner_text()
    assert link == f"{portal.url}/enroll?code={code}"
    assert _decode_qr(page.locator(".qr-card svg").screenshot()) == link
    shot(page, "devices-enroll-code")
    check_page(page)

    pos = PosClient(tmp_path / "till.db")
    try:
        from sync_protocol.enrollment_link import parse_enrollment_link

        parsed = parse_enrollment_link(link)
        pos.enroll(parsed.code, parsed.server_url, device_name="Bar till 7")
        device_id = str(pos.device_id)
        pos.record_event("app.start", {"version": "test"})
        pos.sell(raffle_id, 5)
        pos.sync()

        # the manager finds the device in the list: green, just synced
        page.goto("/admin/devices")
        row = page.locator("tr", has_text="Bar till 7")
        assert "Online" in row.inner_text()
        row.get_by_role("link", name="Bar till 7").click()
        page.wait_for_url(f"**/admin/devices/{device_id}")
        assert page.get_by_role("heading", name="Bar till 7").is_visible()
        assert "This venue's cap is 500 numbers" in page.locator("#extend").inner_text()
        assert page.locator("#events").is_visible() and "app.start" in page.content()
        shot(page, "device-detail")
        check_page(page)

        # a refused extension says why, beside the form, and keeps what was typed
        page.get_by_label("Raffle", exact=True).first.select_option(label="Late bar 50/50")
        page.get_by_label("Numbers").fill("200")
        page.locator("#extend-reason").fill("   ")
        page.locator("#extend-reason").evaluate("el => el.removeAttribute('required')")
        page.get_by_role("button", name="Extend the range").click()
        assert "needs a reason" in page.locator("#extend-error").inner_text()
        assert page.get_by_label("Numbers").input_value() == "200"

        # within the cap: granted at once; the confirmation waits for the device's next sync
        page.locator("#extend-reason").fill("Queue at the bar: the till ran low")
        page.get_by_role("button", name="Extend the range").click()
        page.wait_for_url(re.compile(r".*/admin/devices/[^/]+/grants/[^/]+$"))
        grant_id = page.url.rsplit("/", 1)[1]
        assert page.get_by_role("heading", name="Extension granted").is_visible()
        assert "Waiting for the device" in page.locator("#grant-status").inner_text()
        assert "Queue at the bar" in page.locator(".facts").inner_text()
        shot(page, "device-grant-waiting")
        check_page(page)

        result = pos.sync()  # the device's next sync carries the grant
        assert grant_id in result.new_grants
        page.locator("#grant-status.delivery-done").wait_for(timeout=15_000)  # htmx polling, no reload
        assert "Delivered" in page.locator("#grant-status").inner_text()
        shot(page, "device-grant-delivered")
        check_page(page)

        # the device sells on; its page shows the grant delivered and the numbers in use
        pos.sell(raffle_id, 5)
        pos.sync()
        page.goto(f"/admin/devices/{device_id}")
        grant_row = page.locator("#grants ~ .table-wrap tr", has_text="extension")
        assert "Delivered" in grant_row.inner_text() and "200" in grant_row.inner_text()
        usage_row = page.locator("#numbers ~ .table-wrap tr", has_text="Late bar 50/50")
        assert usage_row.locator("td").nth(2).inner_text() == "10"  # ten numbers used

        # above the cap: a two-person request; the manager cannot approve it
        page.get_by_label("Raffle", exact=True).first.select_option(label="Late bar 50/50")
        page.get_by_label("Numbers").fill("2000")
        page.locator("#extend-reason").fill("Final hour rush, second bar opened")
        page.get_by_role("button", name="Extend the range").click()
        page.wait_for_url(re.compile(r".*/admin/extension-requests/[^/]+$"))
        approval_id = page.url.rsplit("/", 1)[1]
        assert "Pending" in page.locator(".lead").inner_text()
        assert page.get_by_role("button", name="Approve and grant").count() == 0
        shot(page, "extension-request-pending")
        check_page(page)
        refused = page.request.post(
            f"/admin/extension-requests/{approval_id}/approve", form={"csrf_token": _csrf(page)}
        )
        assert refused.status == 403 and "forbidden" in refused.text()

        # a second person, a system admin, approves in the portal
        other = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=portal.url)
        try:
            admin_page = other.new_page()
            login(admin_page, "admin")
            admin_page.get_by_role("link", name="Extensions", exact=True).click()
            admin_page.locator("tr", has_text="Final hour rush").get_by_role("link").click()
            assert admin_page.get_by_role("button", name="Approve and grant").is_visible()
            shot(admin_page, "extension-request-approve")
            check_page(admin_page)
            admin_page.get_by_role("button", name="Approve and grant").click()
            admin_page.wait_for_url(re.compile(r".*/admin/devices/[^/]+/grants/[^/]+$"))
            big_grant = admin_page.url.rsplit("/", 1)[1]
            assert "2,000" in admin_page.locator(".grant-hero").inner_text()
            assert "Waiting for the device" in admin_page.locator("#grant-status").inner_text()
        finally:
            other.close()
        assert big_grant in pos.sync().new_grants

        page.goto(f"/admin/extension-requests/{approval_id}")
        assert "Approved" in page.locator(".lead").inner_text()
        page.get_by_role("link", name="See the grant and its delivery").click()
        assert "Delivered" in page.locator("#grant-status").inner_text()
        page.goto("/admin/extension-requests")
        shot(page, "extension-requests")
        check_page(page)
    finally:
        pos.close()
        _revoke(portal, *(d for d in [pos.device_id] if d))
        _cap(portal, None)


def test_a_manager_of_another_venue_gets_404_for_the_device(
    portal: Any, browser_page: Any, login: Any, check_page: Any
) -> None:
    from server.accounts import approvals
    from server.auth import Principal
    from server.enrollment import service as enrollment

    _cap(portal, CAP)
    try:
        with services(portal) as app:
            grant = enrollment.extend_device(app, portal.device_id, portal.raffle_id, 3, "isolation check")
            manager = portal.users["venue_manager"]
            asker = Principal(
                id=f"user:{manager.user_id}",
                role="venue_manager",
                tenant=portal.organisation_id,
                via="user",
                token_id="s",
                venues=frozenset({portal.venue_id}),
            )
            request = approvals.request_extension(app, asker, portal.device_id, portal.raffle_id, 900, "isolation")
            approval_id = request["approval"]["id"]
    finally:
        _cap(portal, None)

    page = browser_page
    login(page, "venue_manager_other")
    page.goto("/admin/devices")
    assert portal.device_id not in page.content() and "Riverside Hall" not in page.content()
    page.goto("/admin/extension-requests")
    assert approval_id not in page.content()
    check_page(page)
    token = _csrf(page)
    d = f"/admin/devices/{portal.device_id}"
    for url in (
        d,
        f"{d}/grants/{grant.grant_id}",
        f"{d}/grants/{grant.grant_id}/status",
        f"{d}/ingest/ij_none",
        f"/admin/extension-requests/{approval_id}",
        f"/admin/devices?venue={portal.venue_id}",
    ):
        response = page.goto(url)
        assert response.status == 404, url
        assert "not_found" in page.content()
    for url, form in (
        (f"{d}/extend", {"raffle_id": portal.raffle_id, "numbers": "5", "reason": "x"}),
        (f"{d}/revoke", {"reason": "x"}),
        (f"{d}/void-remainder", {"raffle_id": portal.raffle_id, "reason": "x"}),
        (f"/admin/extension-requests/{approval_id}/approve", {}),
        (f"/admin/extension-requests/{approval_id}/deny", {"reason": "x"}),
        ("/admin/devices/enroll-code", {"venue_id": portal.venue_id}),
    ):
        response = page.request.post(url, form={"csrf_token": token, **form})
        assert response.status == 404, (url, response.status, response.text()[:300])
    upload = page.request.post(
        f"{d}/ingest",
        multipart={
            "csrf_token": token,
            "file": {"name": "x.ndjson", "mimeType": "application/x-ndjson", "buffer": b"{}"},
        },
    )
    assert upload.status == 404
    with services(portal) as app:  # nothing happened to the device
        assert enrollment.get_device(app, portal.device_id)["status"] == "active"
        assert approvals.get_approval(app, approval_id)["status"] == "pending"


def test_lost_device_export_is_ingested_with_progress_then_voided_and_revoked(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any, tmp_path: Path
) -> None:
    from server.enrollment import service as enrollment

    raffle_id = _raffle(portal, "Lost till 50/50")
    with services(portal) as app:
        code = enrollment.create_enrollment_code(app, portal.venue_id)["code"]
    pos = PosClient(tmp_path / "lost.db")
    try:
        pos.enroll(code, portal.url, device_name="Lost till 3")
        device_id = str(pos.device_id)
        for quantity in (1, 5, 1, 5, 1):
            pos.sell(raffle_id, quantity)  # never synced: the device is lost
        export = tmp_path / "lost-till-3.ndjson"
        pos.export(export)

        page = browser_page
        login(page, "venue_manager")
        page.goto(f"/admin/devices/{device_id}")
        assert "never synced" in page.locator(".lead").inner_text()
        # a file of another device is refused before anything is read
        other = tmp_path / "other.ndjson"
        other.write_text('{"type":"header","device_id":"dv_someone_else"}\n')
        page.get_by_label("Export file (.ndjson)").set_input_files(str(other))
        page.get_by_role("button", name="Upload and ingest").click()
        assert "not of this device" in page.locator("#ingest-error").inner_text()

        page.get_by_label("Export file (.ndjson)").set_input_files(str(export))
        page.get_by_role("button", name="Upload and ingest").click()
        page.wait_for_url(re.compile(r".*/ingest/[^/]+$"))
        assert page.locator("progress#ingest-progress").count() == 1
        page.get_by_text("Ingested:").wait_for(timeout=20_000)
        status = page.locator("#ingest-status").inner_text()
        assert "5 recorded now" in status and "0 rejected" in status
        assert page.locator("progress#ingest-progress").get_attribute("value") == "100"
        shot(page, "device-ingest-done")
        check_page(page)

        page.get_by_role("link", name="Back to the device").click()
        page.get_by_label("Raffle", exact=True).last.select_option(label="Lost till 50/50 (open)")
        page.locator("#void-reason").fill("Till lost in the car park; file ingested")
        page.get_by_role("button", name="Void the remainder").click()
        assert "remainder voided" in page.locator(".flash-success").inner_text()
        with services(portal) as app:
            held = [g for g in app.core.grants(device_id=device_id) if g.grant.raffle_id == raffle_id]
            assert held == []  # no active grant of that raffle left

        page.locator("#revoke-reason").fill("Lost: never found")
        page.get_by_role("button", name="Revoke the device").click()
        assert "Device revoked" in page.locator(".flash-success").inner_text()
        assert "Revoked" in page.locator(".lead").inner_text()
        shot(page, "device-revoked")
        check_page(page)
    finally:
        pos.close()
    with services(portal) as app:
        assert enrollment.get_device(app, device_id)["status"] == "revoked"
