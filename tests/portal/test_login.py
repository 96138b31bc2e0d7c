"""Signing in to the portal in Chromium: password, then the TOTP step (docs/portal.md)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_venue_manager_signs_in_with_mfa_and_lands_on_the_dashboard(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    page = browser_page
    page.goto("/admin/")
    assert "/admin/login" in page.url  # no session: the login page, which brings the browser back after
    shot(page, "login")
    check_page(page)
    login(page, "venue_manager", fresh=True)
    assert page.url.endswith("/admin/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_text(portal.users["venue_manager"].email).first.is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "tombola_portal")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    shot(page, "dashboard")
    check_page(page)
