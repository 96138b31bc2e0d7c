"""The audit log page in Chromium: entries filtered by type and time and paged, the verification
(loaded by htmx with a progress indicator, and without script as a page of its own), the latest
signed checkpoint as its C2SP note with its key id; who may read it (docs/portal.md)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def _checkpoint(portal: Any) -> dict[str, Any]:
    from server import status

    app = portal.app()
    try:
        app.core.audit.checkpoint("on-demand:portal-tests")
        found = status.latest_checkpoint(app)
    finally:
        app.close()
    assert found is not None
    return found


def test_an_auditor_reads_filters_and_pages_the_log_and_sees_it_verified(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    checkpoint = _checkpoint(portal)
    page = browser_page
    login(page, "auditor")
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Audit log").click()
    page.wait_for_url("**/admin/audit")
    verdict = page.locator("#verify-status .verdict")
    verdict.wait_for()
    assert "Verified" in verdict.inner_text()
    note = page.get_by_label("The checkpoint's signed note, as signed").inner_text()
    assert note.strip() == checkpoint["note"].strip()
    assert checkpoint["key_ids"][0] in page.locator("section", has_text="Latest signed checkpoint").inner_text()
    assert "this log's key" in page.get_by_text("this log's key").inner_text()
    size = int(page.locator(".lead").inner_text().split(": ")[1].split(" ")[0])
    assert page.locator("table.audit-table tbody tr").count() == min(50, size)
    assert page.locator("table.audit-table tbody tr td:nth-child(1)").last.inner_text() == str(size - 1)  # newest
    shot(page, "audit-log")
    check_page(page)

    page.get_by_label("Type or family").fill("raffle.")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**type=raffle.**")
    types = page.locator("table.audit-table tbody tr td:nth-child(3)").all_inner_texts()
    assert types and all(t.startswith("raffle.") for t in types)
    page.goto("/admin/audit?type=auth.&from=2000-01-01T00:00&to=2000-01-02T00:00")
    assert page.locator("table.audit-table tbody").inner_text().strip() == "No entries match."
    page.goto("/admin/audit?after=-1&limit=10")
    first = page.locator("table.audit-table tbody tr td:nth-child(1)").all_inner_texts()
    assert first == [str(n) for n in range(10)]
    page.get_by_role("link", name="Next 10 entries").click()
    assert page.locator("table.audit-table tbody tr td:nth-child(1)").first.inner_text() == "10"
    page.goto("/admin/audit?from=yesterday")
    assert "is not an ISO 8601 time" in page.get_by_role("alert").inner_text()

    # without script: the verification is a page of its own
    page.goto("/admin/audit/verify")
    assert "Verified" in page.locator(".verdict").inner_text()
    shot(page, "audit-verify")
    check_page(page)


def test_only_admins_and_auditors_read_the_log(portal: Any, browser_page: Any, login: Any) -> None:
    page = browser_page
    for role in ("venue_manager", "business_admin"):
        page.context.clear_cookies()
        login(page, role)
        for path in ("/admin/audit", "/admin/audit/verify", "/admin/health"):
            response = page.goto(path)
            assert response is not None and response.status == 403, (role, path)
            assert "forbidden" in page.content()
        assert page.get_by_role("navigation", name="Portal").get_by_role("link", name="Audit log").count() == 0


def test_a_system_admin_sees_the_system_health(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    from sync_protocol.identity import package_digest

    page = browser_page
    login(page, "admin")
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="System health").click()
    page.wait_for_url("**/admin/health")
    text = page.locator("main").inner_text()
    assert "All parts answer" in text
    for heading in ("HSM", "Business database", "Core database", "Audit backend", "Last checkpoint"):
        assert "OK" in page.get_by_role("heading", name=heading).inner_text(), heading
    assert text.count("at head") == 2
    from pathlib import Path

    import gli_core.api
    import server

    assert package_digest(Path(server.__file__).parent) in text
    assert package_digest(Path(gli_core.api.__file__).parent) in text
    shot(page, "health")
    check_page(page)
    page.context.clear_cookies()
    login(page, "auditor")
    assert page.request.get("/admin/health").status == 403
