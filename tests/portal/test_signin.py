"""Signing in, refusals, TOTP set-up and password reset in Chromium (docs/portal.md)."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest

from server.mail import read_outbox

pytestmark = pytest.mark.browser


def _password_step(page: Any, email: str, password: str) -> None:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_wrong_password_and_wrong_code_are_told_apart_from_success(
    portal: Any, browser_page: Any, shot: Any, check_page: Any
) -> None:
    page = browser_page
    person = portal.users["auditor"]
    _password_step(page, person.email, "Not-the-password-1")
    assert page.locator("#login-error").inner_text() == "The email or the password is wrong."
    assert page.get_by_label("Email").input_value() == person.email  # kept; the password is not
    shot(page, "login-wrong-password")
    check_page(page)
    _password_step(page, person.email, person.password)
    page.wait_for_url("**/admin/login/code")
    shot(page, "login-code")
    check_page(page)
    page.get_by_label("Code").fill("000000" if portal.code("auditor") != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    assert "That code is wrong" in page.locator("#code-error").inner_text()
    shot(page, "login-wrong-code")
    check_page(page)
    page.get_by_label("Code").fill(portal.code("auditor"))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_text("auditor", exact=True).is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/admin/login")
    assert page.get_by_role("status").inner_text() == "You are signed out."
    page.goto("/admin/")
    assert "/admin/login" in page.url


def test_an_admin_without_totp_sets_it_up_from_the_qr_code(
    portal: Any, browser_page: Any, shot: Any, check_page: Any
) -> None:
    from server.accounts import service

    app = portal.app()
    try:
        service.create_user(
            app,
            email="new-admin@portal.test",
            password="Portal-test-1",
            role="admin",
            created_by="service:portal-tests",
        )
    finally:
        app.close()
    page = browser_page
    _password_step(page, "new-admin@portal.test", "Portal-test-1")
    page.wait_for_url("**/admin/login/setup")
    assert page.locator(".qr svg").count() == 1
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    shot(page, "login-mfa-setup")
    check_page(page)
    page.get_by_label("Code from the app").fill("123456" if pyotp.TOTP(secret).now() != "123456" else "654321")
    page.get_by_role("button", name="Turn on and sign in").click()
    assert "That code is wrong" in page.locator("#setup-error").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on and sign in").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()


def test_password_reset_through_the_mailed_code(portal: Any, browser_page: Any, shot: Any, check_page: Any) -> None:
    from server.accounts import service

    app = portal.app()
    try:
        service.create_user(
            app,
            email="forgetful@portal.test",
            password="Portal-test-1",
            role="business_admin",
            organisation_id=portal.organisation_id,
            created_by="service:portal-tests",
        )
    finally:
        app.close()
    page = browser_page
    page.goto("/admin/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("forgetful@portal.test")
    shot(page, "password-reset")
    check_page(page)
    page.get_by_role("button", name="Send the reset code").click()
    page.wait_for_url("**/admin/password/reset/confirm")
    assert "a reset code is on its way" in page.get_by_role("status").inner_text()
    deadline = time.monotonic() + 10
    mails: list[Any] = []
    while time.monotonic() < deadline and not mails:
        mails = [m for m in read_outbox(portal.home / "outbox") if m["To"] == "forgetful@portal.test"]
        time.sleep(0.1)
    (mail,) = mails
    token = re.search(r"tmw_[A-Za-z0-9_-]{43}", mail.get_content()).group(0)
    page.get_by_label("Reset code").fill(token)
    page.get_by_label("New password", exact=True).fill("weakpassword")
    page.get_by_label("New password, again").fill("weakpassword")
    page.get_by_role("button", name="Set the password").click()
    assert "upper" in page.locator("#reset-error").inner_text().lower()  # the policy's sentence
    shot(page, "password-reset-weak")
    check_page(page)
    page.get_by_label("New password", exact=True).fill("Brand-new-pass-2")
    page.get_by_label("New password, again").fill("Brand-new-pass-2")
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url("**/admin/login")
    _password_step(page, "forgetful@portal.test", "Brand-new-pass-2")
    page.wait_for_url("**/admin/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
