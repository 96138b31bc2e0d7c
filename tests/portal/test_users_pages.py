"""Users and roles, and break-glass, in Chromium: an admin creates an account that then signs in,
changes its role, disables and enables it, resets its second factor; a business admin asks for
break-glass access and a second system admin approves it, never the requester (docs/portal.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal.conftest import PASSWORD, Person, _add_person

pytestmark = pytest.mark.browser


def test_an_admin_creates_a_venue_manager_who_signs_in_and_is_managed(
    portal: Any, browser: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    page = browser_page
    login(page, "admin")
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Users").click()
    page.wait_for_url("**/admin/users")
    shot(page, "users-list")
    check_page(page)
    email = "new-manager@portal.test"
    page.get_by_label("Email").fill(email)
    page.get_by_label("First password").fill("weak")
    page.get_by_label("Role").select_option("venue_manager")
    page.get_by_label("Organisation").select_option(portal.organisation_id)
    page.get_by_label("Riverside Hall").check()
    page.get_by_role("button", name="Create account").click()
    assert "weak_password" in page.get_by_role("alert").inner_text()  # the service's refusal, on the page
    assert page.get_by_label("Email").input_value() == email
    page.get_by_label("First password").fill(PASSWORD)
    page.get_by_label("Riverside Hall").check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/admin/users/usr*")
    assert f"Account {email} created." in page.get_by_role("status").inner_text()
    user_url = page.url
    user_id = user_url.rsplit("/", 1)[1]
    shot(page, "users-user")
    check_page(page)

    # the new person signs in (in a browser of their own) and sees their venue's reports
    portal.users["created"] = Person("venue_manager", email, PASSWORD, user_id)
    other = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=portal.url)
    second = other.new_page()
    login(second, "created")
    second.goto("/admin/reports?group_by=venue")
    assert "Riverside Hall" in second.locator("table.report-table").inner_text()

    # role change: business admin of the organisation
    page.locator("#role-role").select_option("business_admin")
    page.get_by_role("button", name="Change role").click()
    assert "Role changed to business admin." in page.get_by_role("status").inner_text()
    assert second.request.get("/admin/users").status == 200  # acts at the person's next request

    # disable: the session ends at once; enable: signs in again
    page.get_by_label("Reason for disabling").fill("left the club")
    page.get_by_role("button", name="Disable account").click()
    assert "Account disabled" in page.get_by_role("status").inner_text()
    second.goto("/admin/")
    assert "/admin/login" in second.url
    page.get_by_role("button", name="Enable account").click()
    assert "Account enabled." in page.get_by_role("status").inner_text()
    login(second, "created")
    assert second.url.endswith("/admin/")
    page.get_by_role("button", name="Reset second factor").click()
    assert "Second factor removed" in page.get_by_role("status").inner_text()
    other.close()


def test_users_pages_are_for_managers_and_their_organisation(portal: Any, browser_page: Any, login: Any) -> None:
    page = browser_page
    login(page, "business_admin")
    page.goto("/admin/users")
    listed = page.locator("table").first
    assert listed.get_by_role("link", name=portal.users["venue_manager"].email, exact=True).count() == 1
    # installation-wide accounts are not the organisation's
    assert listed.get_by_role("link", name=portal.users["admin"].email, exact=True).count() == 0
    assert page.get_by_label("Role").locator("option").all_inner_texts() == [
        "venue manager",
        "salesperson",
        "business admin",
    ]
    admin_id = portal.users["admin"].user_id
    assert page.request.get(f"/admin/users/{admin_id}").status == 404  # not of its organisation
    for path in ("/admin/audit", "/admin/health"):
        assert page.request.get(path).status == 403, path
    page.goto(f"/admin/users/{portal.users['venue_manager'].user_id}")
    assert page.get_by_role("heading", name=portal.users["venue_manager"].email).is_visible()


def test_break_glass_is_asked_by_one_admin_and_approved_by_another(
    portal: Any, browser: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    app = portal.app()
    try:
        asker = _add_person(app, portal, "business_admin_mfa", "business_admin", org=portal.organisation_id, mfa=True)
    finally:
        app.close()
    page = browser_page
    login(page, "business_admin_mfa")
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Break-glass").click()
    page.wait_for_url("**/admin/break-glass")
    page.get_by_label("Reason").fill("the venue's admin is away and the draw is due")
    page.get_by_label("Minutes (1 to 240)").fill("30")
    page.get_by_role("button", name="Send request").click()
    assert "a second system admin must approve it" in page.get_by_role("status").inner_text()
    row = page.locator("table tbody tr", has_text="the venue's admin is away")
    assert "pending" in row.inner_text()
    shot(page, "break-glass-asked")
    check_page(page)
    assert page.request.get("/admin/health").status == 403
    approval_id = _pending_id(portal, asker.user_id)
    # the requester cannot decide their own request (not even with a crafted POST)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    own = page.request.post(f"/admin/break-glass/{approval_id}/approve", form={"csrf_token": token})
    assert own.status == 403

    other = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=portal.url)
    admin = other.new_page()
    login(admin, "admin")
    admin.goto("/admin/break-glass")
    waiting = admin.locator("table tbody tr", has_text="the venue's admin is away")
    assert "30 minutes" in waiting.inner_text()
    shot(admin, "break-glass-approve")
    check_page(admin)
    admin.get_by_role("button", name=f"Approve request {approval_id}").click()
    assert f"Request {approval_id} approved." in admin.get_by_role("status").inner_text()
    other.close()

    # the requester now holds the system admin role (break-glass) until it expires
    page.goto("/admin/")
    assert (page.locator(".role-badge").text_content() or "").strip() == "admin"
    assert page.request.get("/admin/users").status == 200
    page.goto("/admin/break-glass")
    assert "approved" in page.locator("table tbody tr", has_text="the venue's admin is away").inner_text()


def _pending_id(portal: Any, user_id: str) -> str:
    from server.accounts import approvals

    app = portal.app()
    try:
        found = [a for a in approvals.list_approvals(app, pending_only=True) if a["subject"].get("user_id") == user_id]
    finally:
        app.close()
    assert len(found) == 1
    return str(found[0]["id"])
