"""Raffle and draw pages in Chromium (docs/portal.md, "Raffles and draws").

A raffle runs through the portal from creation to published results: a real ``PosClient``
enrolled against the served installation sells and syncs; sales close; the reconciliation gate
shows the device blocking the draw until it syncs (the gate refreshes itself); the ticket set is
frozen, the draw executed after its confirmation step, published; the proof downloads from the
public results page and ``tombola verify-draw`` (a subprocess, its real exit code) accepts it. The
raffles' coded refusals (``jurisdiction_rule``, ``terms_fixed_after_sale``) show beside their
field. Roles: a venue manager reads, opens and closes the raffles of its venue only; another
venue's or another organisation's raffle is 404 on every page and direct URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

TOMBOLA = Path(sys.executable).with_name("tombola")


def _local(delta: timedelta) -> str:
    """A ``datetime-local`` value (UTC) ``delta`` from now."""
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M")


def _seed_venue(portal: Any, name: str) -> str:
    from server.raffles import service as raffles

    app = portal.app()
    try:
        return str(raffles.create_venue(app, name)["id"])
    finally:
        app.close()


def _enrolled_pos(portal: Any, venue_id: str, path: Path) -> Any:
    from pos_client import PosClient
    from server.enrollment import service as enrollment

    app = portal.app()
    try:
        code = enrollment.create_enrollment_code(app, venue_id)["code"]
    finally:
        app.close()
    pos = PosClient(path)
    pos.enroll(code, portal.url, "Bar till")
    return pos


def _field_error(page: Any, field: str) -> str:
    text: str = page.locator(f"#{field}-error").inner_text()
    return text


def test_a_raffle_runs_through_the_gate_to_published_results(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    venue_id = _seed_venue(portal, "Harbour Hall")  # its own venue: no other test's device holds its numbers
    login(page, "admin")
    page.get_by_role("link", name="Raffles").click()
    page.wait_for_url("**/admin/raffle-list")
    shot(page, "raffles-list")
    check_page(page)

    # create: Washington forbids online sales; the refusal sits beside the field with its code
    page.get_by_role("link", name="New raffle").click()
    page.wait_for_url("**/admin/raffle/new")
    shot(page, "raffle-new")
    check_page(page)
    page.get_by_label("Name", exact=True).fill("Harbour 50/50")
    page.get_by_label("Venue", exact=True).select_option(label="Harbour Hall")
    page.get_by_label("Number space", exact=True).fill("10000")
    page.get_by_label("Jurisdiction profile", exact=True).select_option("washington")
    page.get_by_label("Price of one ticket (USD)", exact=True).fill("2.00")
    page.get_by_label("Bundle 1: tickets", exact=True).fill("5")
    page.get_by_label("Bundle 1: price (USD)", exact=True).fill("8.00")
    page.get_by_label("Sales close (UTC)", exact=True).fill(_local(timedelta(hours=3)))
    page.get_by_label("Online sales", exact=True).select_option("yes")
    page.get_by_label("Licence number", exact=True).fill("WA-RAF-2026-17")
    page.get_by_label("Claim deadline (UTC)", exact=True).fill(_local(timedelta(days=30)))
    page.get_by_label("Rules of the raffle", exact=True).fill("One prize: 50% of valid sales.\nClaim within 30 days.")
    page.get_by_role("button", name="Create raffle").click()
    refusal = _field_error(page, "online_sales")
    assert "jurisdiction_rule" in refusal and "WAC 230-11-030" in refusal, refusal
    assert page.get_by_label("Name", exact=True).input_value() == "Harbour 50/50"  # the values as typed
    assert page.get_by_label("Online sales", exact=True).get_attribute("aria-invalid") == "true"
    shot(page, "raffle-new-refused")
    check_page(page)
    page.get_by_label("Online sales", exact=True).select_option("no")
    page.get_by_role("button", name="Create raffle").click()
    page.wait_for_url("**/admin/raffle/rf*")
    raffle_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_role("heading", name="Jurisdiction: Washington (RCW 9.46; WAC chapter 230-11)").is_visible()
    assert page.get_by_role("link", name="WAC 230-11-025(1)(d)", exact=False).is_visible()
    assert page.get_by_text("The prizes pay out 50% of valid sales").is_visible()
    shot(page, "raffle")
    check_page(page)

    # a real POS at the venue: enrolled against the served installation, sells, syncs
    pos = _enrolled_pos(portal, venue_id, tmp_path / "pos.db")
    try:
        pos.sync()  # numbers of the raffle (grants come at enrollment or at a sync)
        for quantity in (5, 1, 1):
            pos.sell(raffle_id, quantity)
        synced = pos.sync()
        assert synced.pending == 0 and not synced.rejections

        # the terms are fixed from the first sale: the refusal beside the price
        page.get_by_role("link", name="Edit").click()
        page.get_by_label("Price of one ticket (USD)", exact=True).fill("3.00")
        page.get_by_role("button", name="Save changes").click()
        assert "terms_fixed_after_sale" in _field_error(page, "price")
        shot(page, "raffle-edit-refused")
        check_page(page)
        page.get_by_label("Price of one ticket (USD)", exact=True).fill("2.00")
        page.get_by_label("Results URL", exact=True).fill("https://harbour.example/results")
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(f"**/admin/raffle/{raffle_id}")
        assert page.get_by_text("Raffle saved.").is_visible()

        # close: the device synced before the close, so the gate waits for it
        pos.sell(raffle_id, 1)  # a sale the server has not seen
        page.get_by_role("button", name="Close sales now").click()
        page.wait_for_url(f"**/admin/raffle/{raffle_id}")
        page.get_by_role("link", name="Draw", exact=True).click()
        page.wait_for_url(f"**/admin/draw/{raffle_id}")
        gate = page.locator("#gate")
        assert "1 device blocks the draw" in gate.inner_text()
        assert "Bar till" in gate.inner_text() and "Blocks" in gate.inner_text()
        assert page.get_by_role("button", name="Freeze the ticket set").is_disabled()
        shot(page, "draw-gate-blocked")
        check_page(page)

        pos.sync()  # the gate polls itself: no reload
        page.get_by_text("The gate is clear").wait_for(timeout=15_000)
        shot(page, "draw-gate-clear")
    finally:
        pos.close()
    page.get_by_role("button", name="Freeze the ticket set").click()
    assert page.get_by_text("The ticket set is frozen: 8 tickets.").is_visible()
    check_page(page)

    # execute: a confirmation step, then progress until the winners are drawn
    page.get_by_role("link", name="Execute the draw…").click()
    page.wait_for_url(f"**/admin/draw/{raffle_id}/execute")
    shot(page, "draw-execute-confirm")
    check_page(page)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    unconfirmed = page.request.post(f"/admin/draw/{raffle_id}/execute", form={"csrf_token": token})
    assert unconfirmed.status == 422 and "confirmation_needed" in unconfirmed.text()  # nothing runs
    page.get_by_label("I confirm: draw the winners of Harbour 50/50 now", exact=True).check()
    page.get_by_role("button", name="Draw the winners").click()
    page.get_by_role("heading", name="Winners", exact=True).wait_for(timeout=30_000)
    assert page.locator(".state").first.inner_text().lower() == "drawn"
    shot(page, "draw-drawn")
    check_page(page)

    page.get_by_role("button", name="Publish the results").click()
    page.get_by_text("The results are public.").wait_for()
    winner = page.locator("td.ticket").first.inner_text()
    shot(page, "draw-published")
    check_page(page)

    # the public page: the winner, and the proof that verify-draw accepts on its own
    page.get_by_role("link", name="Public results page").click()
    page.wait_for_url(f"**/results/{raffle_id}")
    assert winner in page.locator("td.ticket").first.inner_text()
    check_page(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the proof").click()
    proof = tmp_path / "proof.json"
    download.value.save_as(proof)
    checked = subprocess.run([str(TOMBOLA), "verify-draw", str(proof)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VALID" in checked.stdout and winner in checked.stdout
    tampered = tmp_path / "tampered.json"
    document = json.loads(proof.read_text())
    document["winners"][0]["ticket_number"] += 1  # a claimed winner the randomness did not pick
    tampered.write_text(json.dumps(document))
    refused = subprocess.run([str(TOMBOLA), "verify-draw", str(tampered)], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0

    # an unclaimed prize is redrawn with a reason; the public page shows the redraw
    page.goto(f"/admin/draw/{raffle_id}")
    page.get_by_role("link", name=f"Redraw… the prize of ticket {winner}").click()
    shot(page, "draw-redraw")
    check_page(page)
    page.get_by_label("Reason", exact=True).fill("Not claimed by the deadline")
    page.get_by_label("I confirm this prize goes to a newly drawn ticket", exact=True).check()
    page.get_by_role("button", name="Redraw").click()
    page.get_by_text(f"ticket {winner} is replaced by ticket").wait_for()
    assert page.locator("main table").nth(1).inner_text().count("Not claimed by the deadline") == 1
    shot(page, "draw-redrawn")
    check_page(page)
    public = page.request.get(f"/results/{raffle_id}")  # not the browser's cached copy (max-age 30 s)
    assert public.ok and "Not claimed by the deadline" in public.text()


def test_a_venue_manager_reads_opens_and_closes_only_its_venues_raffles(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    from server.raffles import service as raffles
    from tests.server.accounts.helpers import organisation

    hour = 3_600_000
    app = portal.app()
    try:
        now = app.now_ms()

        def make(venue: str, name: str, opens: int | None = None) -> str:
            spec = raffles.RaffleCreate(
                venue_id=venue,
                name=name,
                price_cents=100,
                number_space=5000,
                sales_open_at_ms=opens,
                sales_close_at_ms=now + 24 * hour,
            )
            return str(raffles.create_raffle(app, spec)["id"])

        own = make(portal.venue_id, "Riverside Sunday", opens=now + 6 * hour)
        other_venue = make(portal.other_venue_id, "Hilltop Thursday")
        _org, foreign_venue = organisation(app, "Elsewhere Lions")
        foreign = make(foreign_venue, "Elsewhere 50/50")
    finally:
        app.close()

    page = browser_page
    login(page, "venue_manager")
    page.goto("/admin/raffle-list")
    listed = page.locator("main table").inner_text()
    assert "Riverside Sunday" in listed and "Hilltop Thursday" not in listed and "Elsewhere" not in listed
    assert page.get_by_role("link", name="New raffle").count() == 0
    check_page(page)

    # open and close, per the server's rules for the floor; no edit or cancel
    page.get_by_role("link", name="Riverside Sunday").click()
    assert page.get_by_role("link", name="Edit").count() == 0
    assert page.get_by_role("link", name="Cancel raffle…").count() == 0
    page.get_by_role("button", name="Open sales now").click()
    page.get_by_text("Sales of Riverside Sunday are open.").wait_for()
    page.get_by_role("button", name="Close sales now").click()
    page.get_by_text("Sales of Riverside Sunday are closed.").wait_for()
    shot(page, "raffle-venue-manager")
    check_page(page)
    page.goto(f"/admin/draw/{own}")
    assert page.get_by_text("A system admin runs the draw.").is_visible()
    assert page.get_by_role("button", name="Freeze the ticket set").count() == 0
    check_page(page)
    for path in (f"/admin/raffle/{own}/edit", f"/admin/raffle/{own}/cancel", "/admin/raffle/new"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path

    # another venue's and another organisation's raffles do not exist for this person
    for raffle_id in (other_venue, foreign):
        for path in (
            f"/admin/raffle/{raffle_id}",
            f"/admin/draw/{raffle_id}",
            f"/admin/draw/{raffle_id}/gate",
            f"/admin/draw/{raffle_id}/proof",
        ):
            answer = page.goto(path)
            assert answer is not None and answer.status == 404, path
            assert page.get_by_role("heading", name="Not found").is_visible()
    check_page(page)
    shot(page, "raffle-not-found")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    closed = page.request.post(f"/admin/raffle/{other_venue}/close", form={"csrf_token": token or ""})
    assert closed.status == 404


def test_a_business_admin_cancels_with_a_reason_and_sees_its_organisation_only(
    portal: Any, browser_page: Any, login: Any, shot: Any, check_page: Any
) -> None:
    from server.raffles import service as raffles
    from tests.server.accounts.helpers import organisation

    app = portal.app()
    try:
        day = 86_400_000

        def make(venue: str, name: str) -> str:
            spec = raffles.RaffleCreate(
                venue_id=venue, name=name, price_cents=100, number_space=100, sales_close_at_ms=app.now_ms() + day
            )
            return str(raffles.create_raffle(app, spec)["id"])

        _org, venue = organisation(app, "Faraway Rotary")
        foreign = make(venue, "Faraway Draw")
        own = make(portal.venue_id, "Rainy Day Raffle")
    finally:
        app.close()
    page = browser_page
    login(page, "business_admin")
    page.goto("/admin/raffle-list")
    assert "Friday 50/50" in page.locator("main table").inner_text()
    assert "Faraway" not in page.locator("main table").inner_text()
    page.get_by_role("link", name="Draws").click()
    page.wait_for_url("**/admin/draws")
    assert "Faraway" not in page.locator("main table").inner_text()
    shot(page, "draws-list")
    check_page(page)
    for path in (f"/admin/raffle/{foreign}", f"/admin/raffle/{foreign}/edit", f"/admin/draw/{foreign}"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
    page.goto("/admin/raffle/new")
    assert "Faraway Rotary Hall" not in page.get_by_label("Venue", exact=True).inner_text()

    # cancel: a reason and a confirmation, then the raffle ends for good
    page.goto(f"/admin/raffle/{own}")
    page.get_by_role("link", name="Cancel raffle…").click()
    page.wait_for_url(f"**/admin/raffle/{own}/cancel")
    shot(page, "raffle-cancel")
    check_page(page)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    unconfirmed = page.request.post(f"/admin/raffle/{own}/cancel", form={"csrf_token": token, "reason": "Rain"})
    assert unconfirmed.status == 422 and "confirmation_needed" in unconfirmed.text()
    page.get_by_label("Reason", exact=True).fill("The fair was rained off")
    page.get_by_label("Yes, cancel Rainy Day Raffle for good", exact=True).check()
    page.get_by_role("button", name="Cancel the raffle").click()
    page.get_by_text("Rainy Day Raffle is cancelled.").wait_for()
    assert page.locator("h1 .status").inner_text() == "cancelled"
    assert page.get_by_role("link", name="Edit").count() == 0
    page.goto(f"/admin/draw/{own}")
    assert page.get_by_text("This raffle was cancelled: The fair was rained off.").is_visible()
    shot(page, "draw-cancelled")
    check_page(page)
