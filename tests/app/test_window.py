"""The real POS app in a window under Xvfb, driven by simulated touches (``tests/app/driver.py``),
against a real ``tombola serve`` process.

Two sellers (one a supervisor) are added with ``tombola seller add --pin-stdin`` before the
device enrolls; the seller signs in through the PIN pad (and again after the idle lock and each
restart). Enroll on the setup screen; stop the server; sell a bundle for cash and singles by card (two
raffles open: the picker shows); the status bar counts the sales waiting; start the server and
the background sync clears them and the tickets are on the server; sales-closed and lease
blocks; a void of the last sale with a supervisor's PIN; kill -9 right after a sale's tap,
restart, and the sale is there (last sale receipt).
Screenshots of every screen at 720x1280 and 1280x800 go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.app.harness import ROOT, AppProcess
from tests.support.processes import free_port, running_server, server_env
from tests.support.xvfb import display, kivy_env

BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "tests" / "artifacts"
HOUR_MS = 3_600_000


def tombola(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([str(BIN / "tombola"), *args, "--json"], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def add_seller(env: dict[str, str], venue_id: str, name: str, pin: str, *, supervisor: bool = False) -> str:
    args = ["seller", "add", "--venue", venue_id, "--name", name, "--pin-stdin", "--json"]
    if supervisor:
        args.append("--supervisor")
    out = subprocess.run(
        [str(BIN / "tombola"), *args], env=env, input=pin + "\n", capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["id"])


def type_pin(app: AppProcess, pin: str) -> None:
    for digit in pin:
        app.tap(f"pin_{digit}")


def sign_in(app: AppProcess, seller_id: str, pin: str) -> dict[str, Any]:
    """Sign in on the sign-in screen through the PIN pad; the state after (the screen it went back to)."""
    assert app.state()["screen"] == "signin"
    app.tap(f"seller_{seller_id}")
    type_pin(app, pin)
    app.tap("pin_ok")
    state = app.state()
    assert state["signed_in"] and state["screen"] != "signin", state
    return state


def shoot(app: AppProcess, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((720, 1280), (1280, 800)):
        app.send("resize", width=width, height=height)
        app.state()  # a frame or two for the layout
        final = ARTIFACTS / f"{name}-{width}x{height}.png"
        written = Path(app.send("screenshot", path=str(ARTIFACTS / f"{name}-{width}x{height}-.png"))["path"])
        written.replace(final)  # Kivy numbers its screenshots; keep one file per screen and size
    app.send("resize", width=720, height=1280)
    app.state()


@pytest.mark.kivy
@pytest.mark.slow
def test_app_sells_offline_syncs_blocks_and_survives_kill(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    tombola(env, "init")
    demo = tombola(env, "demo")
    closes = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    early = tombola(
        env, "raffle", "create", "--venue", demo["venue_id"], "--name", "Early Bird",
        "--price-cents", "200", "--numbers", "10000", "--closes-at", closes,
    )  # fmt: skip
    alice = add_seller(env, demo["venue_id"], "Alice", "4821")
    add_seller(env, demo["venue_id"], "Sam Supervisor", "90210", supervisor=True)
    port = free_port()
    db = tmp_path / "pos.db"
    with display() as display_name:
        app_env = kivy_env(display_name, tmp_path / "kivy")
        app = AppProcess(db, app_env)
        try:
            assert app.state()["screen"] == "setup"
            shoot(app, "setup")
            with running_server(env, port) as url:
                app.type("server_url", url)
                app.type("code", demo["code"])
                app.tap("enroll")
                state = app.wait_for(lambda s: s["enrolled"] and not s["busy"])
                assert any("Demo 50/50" in line for line in state["setup_summary"]), state
                shoot(app, "setup-enrolled")
                app.tap("start")
            # No seller is signed in: the sign-in screen, with the roster the enrollment brought.
            state = app.state()
            assert state["screen"] == "signin" and state["statusbar"]["seller"] == "Sign in"
            names = [s["name"] for s in state["signin"]["roster"]]
            assert {"Alice", "Sam Supervisor"} <= set(names)  # with the demo's own seller (make run seeds one)
            assert names == sorted(names, key=str.casefold)  # in name order, as a volunteer looks for theirs
            app.tap(f"seller_{alice}")
            type_pin(app, "0000")
            app.tap("pin_ok")
            state = app.state()
            assert state["signin"]["code"] == "pin_wrong" and "4 tries left" in state["signin"]["message"]
            shoot(app, "signin")
            state = sign_in(app, alice, "4821")
            # The server is down: sell a bundle for cash (the picker shows both raffles).
            assert state["screen"] == "sell" and state["statusbar"]["seller"] == "Sign out\nAlice"
            assert {r["name"] for r in state["raffles"]} == {"Demo 50/50", "Early Bird"}
            app.tap(f"raffle_{demo['raffle_id']}")
            app.tap("price_5")
            app.type("tendered", "20")
            assert app.state()["change_due"] == "10.00 USD"
            shoot(app, "sell")
            app.tap("confirm")
            state = app.state()
            assert state["screen"] == "receipt" and len(state["receipt"]["numbers"]) == 5
            assert state["receipt"]["change_due"] == "10.00 USD"
            shoot(app, "receipt")
            app.tap("next_sale")
            # Singles by card: the stepper to 3, the price by the shared rule.
            app.tap("plus")
            app.tap("plus")
            assert app.state()["single_price"] == "15.00 USD"
            app.tap("singles")
            app.tap("card")
            app.type("tendered", "TERM-4711")  # the card row's input holds the terminal's reference
            app.tap("confirm")
            state = app.state()
            assert state["receipt"]["numbers"] and len(state["receipt"]["numbers"]) == 3
            assert state["receipt"]["reference"] == "TERM-4711"
            sold = list(state["receipt"]["numbers"])
            app.tap("next_sale")
            state = app.wait_for(lambda s: not s["online"] and s["pending"] == 2)
            assert state["statusbar"]["pending"] == "2 waiting to sync"
            assert state["statusbar"]["online"] == "OFFLINE"
            app.tap("nav_about")
            shoot(app, "about")
            app.tap("nav_sell")
            # The server is back: the background sync clears the queue on its own.
            with running_server(env, port):
                state = app.wait_for(lambda s: s["online"] and s["pending"] == 0, timeout=30)
                assert state["statusbar"]["pending"] == "0 waiting to sync"
                tickets = tombola(env, "tickets", "--raffle", demo["raffle_id"])
                assert len(tickets) == 8 and set(sold) <= {t["number"] for t in tickets}
                # Void the last sale (the card singles) with the supervisor's PIN; it syncs too.
                app.tap("nav_void")
                state = app.state()
                assert state["screen"] == "void" and state["void"]["sale"]["numbers"] == sold
                app.tap("reason_0")
                # Sign out mid-void (the status bar's button; the idle lock takes the same path, but
                # moving the clock here would put the void ahead of the restarts below): after the
                # sign-in the void is as it was.
                app.tap("seller")
                state = sign_in(app, alice, "4821")
                assert state["screen"] == "void" and state["void"]["reason_choice"] == "Customer changed their mind"
                assert state["void"]["sale"]["numbers"] == sold
                type_pin(app, "90210")
                shoot(app, "void")
                app.tap("pin_ok")
                state = app.state()
                assert state["void"]["voided"]["numbers"] == sold, state["void"]
                assert "out of the draw" in state["void"]["message"]
                shoot(app, "void-done")
                app.wait_for(lambda s: s["pending"] == 0, timeout=30)
                app.tap("nav_sell")
            # Three hours on, offline: the idle lock fell (sign in again, back to Sell); Early
            # Bird's sales closed; the demo raffle still sells.
            app.send("advance", ms=3 * HOUR_MS)
            assert sign_in(app, alice, "4821")["screen"] == "sell"
            app.tap(f"raffle_{early['id']}")
            state = app.state()
            assert "closed" in state["block"] and "Early Bird" in state["block"], state
            shoot(app, "sell-blocked-closed")
            app.tap("price_1")
            assert "disabled" in app.refused("confirm")  # the confirm button is off while blocked
            app.tap(f"raffle_{demo['raffle_id']}")
            assert app.state()["block"] == ""
            # Six more hours: the 8 h offline lease ran out; nothing sells.
            app.send("advance", ms=6 * HOUR_MS)
            sign_in(app, alice, "4821")
            state = app.state()
            assert "lease ran out" in state["block"], state
            shoot(app, "sell-blocked-lease")
        finally:
            app.close()
        # kill -9 right after the confirm tap: the committed sale survives the restart.
        app = AppProcess(db, app_env)
        try:
            sign_in(app, alice, "4821")
            app.tap(f"raffle_{demo['raffle_id']}")
            app.tap("price_5")
            app.kill_during("confirm")
        finally:
            app.close()
        app = AppProcess(db, app_env)
        try:
            assert app.state()["screen"] == "signin"  # a restarted app asks for a PIN again
            sign_in(app, alice, "4821")
            app.tap("nav_receipt")
            state = app.state()
            assert state["screen"] == "receipt" and state["receipt"]["copy"] is True
            assert len(state["receipt"]["numbers"]) == 5 and not set(state["receipt"]["numbers"]) & set(sold)
            assert state["pending"] == 1
            shoot(app, "receipt-after-restart")
        finally:
            app.close()
