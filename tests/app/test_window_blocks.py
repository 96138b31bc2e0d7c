"""The offline-not-allowed and printer-failure blocks in the real app under Xvfb, driven by
simulated touches (``tests/app/driver.py``) against a real ``tombola serve`` process.

The device's printer is set before the app starts, as a volunteer would without a settings
screen (``tombola-pos --db FILE printer set``): first a network printer on a closed port. A sale
prints at once on confirm, the print fails, the receipt screen says so and the sell screen is blocked with the
printer sentence (confirm disabled), across a restart too; the printer is fixed (a file printer),
the last receipt is reprinted from the receipt screen (COPY in its ESC/POS bytes), the block
lifts and the next sale goes through. Then a raffle created with ``--no-offline-sales`` sells
while the server runs; the server stops, the app shows the offline block for that raffle only
(the other raffle still sells offline) and refuses the sale; the server comes back and the raffle
sells again, its tickets on the server. Screenshots of the blocked states at 720x1280 and
1280x800 go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pos_client.receipt import COPY_MARK
from tests.app.harness import AppProcess
from tests.app.test_window import BIN, shoot, tombola
from tests.support.processes import free_port, running_server, server_env
from tests.support.xvfb import display, kivy_env

PRINTER_SENTENCE = "The printer failed: reprint the last receipt (or void that sale), then sell again."
PRINT_FAILED = (  # the receipt screen's sentence, big on red; the technical detail small under it
    "The receipt did not print: check the printer is on, has paper and is connected, then tap Reprint. "
    "Selling is blocked until this receipt prints or the sale is voided."
)
OFFLINE_SENTENCE = "Members Draw may only be sold while the server is reachable: reconnect, then sell."
ESC_INIT = b"\x1b@"  # ESC @, the first command of every receipt
QR_COMMAND = b"\x1d(k"  # GS ( k, the printer's own QR code


def add_seller(env: dict[str, str], venue_id: str, name: str, pin: str) -> str:
    args = ["seller", "add", "--venue", venue_id, "--name", name, "--pin-stdin", "--json"]
    out = subprocess.run([str(BIN / "tombola"), *args], env=env, input=pin + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["id"])


def pos(db: Path, *args: str) -> Any:
    out = subprocess.run([str(BIN / "tombola-pos"), "--db", str(db), *args, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sign_in(app: AppProcess, seller_id: str, pin: str) -> dict[str, Any]:
    assert app.state()["screen"] == "signin"
    app.tap(f"seller_{seller_id}")
    for digit in pin:
        app.tap(f"pin_{digit}")
    app.tap("pin_ok")
    state = app.state()
    assert state["signed_in"] and state["screen"] != "signin", state
    return state


def label(app: AppProcess, wid: str) -> str:
    return str(app.send("label", id=wid)["text"])


def sell_one(app: AppProcess, raffle_id: str) -> dict[str, Any]:
    """Sell one single ticket of ``raffle_id`` for exact cash; the receipt shown once its print
    (at once on confirm, on a worker, when a printer is set) is over."""
    app.tap("nav_sell")
    app.tap(f"raffle_{raffle_id}")
    app.tap("price_1")
    app.tap("confirm")
    state = app.wait_for(lambda s: not s["printing"])
    assert state["screen"] == "receipt" and len(state["receipt"]["numbers"]) == 1, state
    return state


@pytest.mark.kivy
@pytest.mark.slow
def test_offline_not_allowed_and_printer_failure_block_selling(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    tombola(env, "init")
    demo = tombola(env, "demo")
    closes = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    members = tombola(
        env, "raffle", "create", "--venue", demo["venue_id"], "--name", "Members Draw",
        "--price-cents", "200", "--numbers", "10000", "--closes-at", closes, "--no-offline-sales",
    )  # fmt: skip
    alice = add_seller(env, demo["venue_id"], "Alice", "4821")
    port = free_port()
    db = tmp_path / "pos.db"
    printed = tmp_path / "printer.bin"
    # No settings screen in the app: the printer is set on the device database before it starts,
    # a network printer nobody listens on.
    pos(db, "printer", "set", f"network:127.0.0.1:{free_port()}")
    with display() as display_name:
        app_env = kivy_env(display_name, tmp_path / "kivy")
        with running_server(env, port) as url:
            app = AppProcess(db, app_env)
            try:
                app.type("server_url", url)
                app.type("code", demo["code"])
                app.tap("enroll")
                app.wait_for(lambda s: s["enrolled"] and not s["busy"])
                app.tap("start")
                sign_in(app, alice, "4821")
                # --- printer failure: the sale stands, its receipt (printed at once on confirm)
                # does not print, the receipt screen says what to do, selling stops.
                state = sell_one(app, demo["raffle_id"])
                failed_sale = state["receipt"]["sale_id"]
                assert state["print_failed"] and label(app, "print_message") == PRINT_FAILED
                assert "(print_failed)" in label(app, "print_detail")
                assert label(app, "print") == "Reprint"
                assert app.state()["block"] == PRINTER_SENTENCE
                shoot(app, "receipt-print-failed")
                app.tap("next_sale")
                app.tap("price_1")
                assert "disabled" in app.refused("confirm")
                state = app.state()
                assert state["screen"] == "sell" and state["block"] == PRINTER_SENTENCE
                assert label(app, "block") == PRINTER_SENTENCE
                shoot(app, "sell-blocked-printer")
            finally:
                app.close()
            # The block is durable; the volunteer fixes the printer (a file printer) and restarts.
            assert pos(db, "printer", "show")["blocked_by"]["sale_id"] == failed_sale
            pos(db, "printer", "set", f"file:{printed}")
            app = AppProcess(db, app_env)
            try:
                assert sign_in(app, alice, "4821")["block"] == PRINTER_SENTENCE
                app.tap("nav_receipt")  # the last sale's receipt, marked COPY
                state = app.state()
                assert state["receipt"]["sale_id"] == failed_sale and state["receipt"]["copy"] is True
                assert label(app, "print") == "Reprint (COPY)"
                app.tap("print")
                app.wait_for(lambda s: not s["printing"])
                assert label(app, "print_message") == "Reprinted (COPY)."
                # Lifted (once the first sync answers, Members Draw, shown first, may sell too).
                assert app.state()["block"] != PRINTER_SENTENCE
                app.wait_for(lambda s: s["online"] and s["block"] == "", timeout=20)
                data = printed.read_bytes()
                assert data.startswith(ESC_INIT) and QR_COMMAND in data, data[:80]
                assert data.count(COPY_MARK.encode()) == 2  # top and bottom
                assert f"#{state['receipt']['numbers'][0]}".encode() in data
                assert pos(db, "printer", "show")["blocked_by"] is None
                sell_one(app, demo["raffle_id"])  # the next sale goes through
                # --- offline not allowed: Members Draw sells while the server answers...
                online_sale = sell_one(app, members["id"])["receipt"]["numbers"]
                app.tap("next_sale")
                app.wait_for(lambda s: s["online"] and s["pending"] == 0)
            except BaseException:
                app.close()
                raise
        try:
            # ...and stops the moment the server is gone; the demo raffle still sells offline.
            app.wait_for(lambda s: not s["online"], timeout=20)
            app.tap(f"raffle_{members['id']}")
            state = app.state()
            assert state["block"] == OFFLINE_SENTENCE
            assert state["statusbar"]["online"] == "OFFLINE"
            app.tap("price_1")
            assert "disabled" in app.refused("confirm")
            assert app.state()["screen"] == "sell" and app.state()["pending"] == 0  # nothing was sold
            shoot(app, "sell-blocked-offline")
            app.tap(f"raffle_{demo['raffle_id']}")
            assert app.state()["block"] == ""
            # The server is back: the block lifts once the background sync reaches it.
            with running_server(env, port):
                app.tap(f"raffle_{members['id']}")
                app.wait_for(lambda s: s["online"] and s["block"] == "", timeout=20)
                again = sell_one(app, members["id"])["receipt"]["numbers"]
                app.tap("next_sale")
                app.wait_for(lambda s: s["pending"] == 0, timeout=20)
                tickets = tombola(env, "tickets", "--raffle", members["id"])
                assert {t["number"] for t in tickets} == set(online_sale) | set(again)
        finally:
            app.close()
