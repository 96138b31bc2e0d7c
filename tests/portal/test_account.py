"""A person changes their own password on the portal's account page (Chromium), and the form's
refusals read as sentences."""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal.conftest import _add_person

pytestmark = pytest.mark.browser

NEW = "Battery-Staple-42!"


def test_a_person_changes_their_password_on_the_account_page(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    app = portal.app()
    try:
        person = _add_person(
            app, portal, "changer", "venue_manager", org=portal.organisation_id, venues=(portal.venue_id,), mfa=False
        )
    finally:
        app.close()
    page = browser_page
    login(page, "changer")
    page.goto("/admin/account")
    assert page.get_by_role("heading", name="Change your password").is_visible()
    shot(page, "account")
    check_page(page)

    def change(current: str, new: str, again: str) -> None:
        page.get_by_label("Current password").fill(current)
        page.get_by_label("New password", exact=True).fill(new)
        page.get_by_label("New password again").fill(again)
        page.get_by_role("button", name="Change password").click()

    change(person.password, NEW, NEW + "x")
    assert page.locator("#password-error").inner_text() == "The two new passwords differ."
    change("Not-The-Password-1", NEW, NEW)
    assert page.locator("#password-error").inner_text() == "The current password is wrong."
    change(person.password, "weakpass1", "weakpass1")
    assert "upper" in page.locator("#password-error").inner_text()
    shot(page, "account-refused")
    check_page(page)
    change(person.password, NEW, NEW)
    assert page.get_by_text("Your password is changed.").is_visible()

    page.get_by_role("button", name="Sign out").click()
    person.password = NEW
    login(page, "changer", fresh=True)  # the new password works
    assert page.url.endswith("/admin/")
