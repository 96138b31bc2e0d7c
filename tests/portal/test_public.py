"""The public pages in Chromium: jackpots, published results, the proof download that
``tombola verify-draw`` accepts, the verification guide and the ticket checker."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import TOMBOLA

pytestmark = pytest.mark.browser


def test_home_shows_the_jackpot_and_the_published_results(
    portal: Any, browser_page: Any, shot: Any, check_page: Any
) -> None:
    page = browser_page
    response = page.goto("/")
    assert response.status == 200 and response.headers["cache-control"].startswith("public")
    open_card = page.locator(".raffle-card", has_text="Friday 50/50")
    assert "current jackpot" in open_card.inner_text().lower()
    assert "10.00 USD" in open_card.inner_text()  # 50% of the sales: 5 tickets for 10.00 and 2 at 5.00
    assert page.get_by_role("link", name="Winners and proof of Spring 50/50").is_visible()
    assert page.locator(".raffle-card", has_text="Spring 50/50").count() == 0  # closed: not on sale
    assert page.evaluate("document.scripts.length") == 0  # no JavaScript on public pages
    shot(page, "public-home")
    check_page(page)


def test_results_page_proof_downloads_and_verify_draw_accepts_it(
    portal: Any, browser_page: Any, shot: Any, check_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    page.goto("/")
    page.get_by_role("link", name="Winners and proof of Spring 50/50").click()
    page.wait_for_url(f"**/results/{portal.drawn_raffle_id}")
    assert page.get_by_role("heading", name="Results of Spring 50/50").is_visible()
    winning = page.locator("td.ticket").first.inner_text()
    shown_hash = page.locator("#proof-sha256").inner_text().strip()
    shot(page, "public-results")
    check_page(page)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the proof").click()
    proof = tmp_path / "proof.json"
    info.value.save_as(proof)
    assert hashlib.sha256(proof.read_bytes()).hexdigest() == shown_hash
    checked = subprocess.run([TOMBOLA, "verify-draw", str(proof), "--json"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    holders = json.loads(checked.stdout)["holders"]
    assert [str(h["ticket_number"]) for h in holders] == [winning]

    # the winner checks their ticket on the public checker, then proves it was in the draw
    app = portal.app()
    try:
        code = app.core.ticket_by_number(portal.drawn_raffle_id, int(winning)).verification_code
    finally:
        app.close()
    page.goto("/check")
    page.get_by_label("Raffle").fill(portal.drawn_raffle_id)
    page.get_by_label("Ticket number").fill(winning)
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Check").click()
    assert "VALID: this ticket is in the draw." in page.inner_text("main")
    assert "WINNER" in page.inner_text("main")
    shot(page, "public-check-winner")
    check_page(page)
    answer = httpx.get(f"{portal.url}/tickets/check", params={"number": winning, "code": code}, timeout=10)
    ticket = tmp_path / "ticket.json"
    ticket.write_bytes(answer.content)
    mine = subprocess.run(
        [TOMBOLA, "verify-draw", str(proof), "--ticket", str(ticket)], capture_output=True, text=True, timeout=60
    )
    assert mine.returncode == 0 and f"ticket #{winning} is in the ticket set" in mine.stdout, mine.stdout + mine.stderr


def test_verify_guide_and_empty_checker(portal: Any, browser_page: Any, shot: Any, check_page: Any) -> None:
    page = browser_page
    page.goto("/verify")
    assert "tombola verify-draw draw-PROOF.json --ticket ticket.json" in page.inner_text("main")
    shot(page, "public-verify")
    check_page(page)
    page.goto("/check")
    assert page.get_by_role("link", name="Check a ticket").get_attribute("aria-current") == "page"
    shot(page, "public-check")
    check_page(page)
    page.goto("/results/no-such-raffle")
    assert page.get_by_role("heading", name="Not found").is_visible()
    shot(page, "public-not-found")
    check_page(page)
