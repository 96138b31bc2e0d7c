"""The ticket-check and end-of-shift screens in the real app under Xvfb, driven by simulated
touches against a real ``tombola serve`` process: a ticket sold in the app checks VALID (the
server answering), a tampered code NOT FOUND, the check URL typed into the scanner field; the
server stopped, the device's own records answer; the opening float starts the shift, the
report shows cash expected. Screenshots at 720x1280 and 1280x800 in ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sync_protocol.codes import ticket_check_url
from tests.app.harness import AppProcess
from tests.app.test_window import BIN, shoot, tombola
from tests.support.processes import free_port, running_server, server_env
from tests.support.xvfb import display, kivy_env


def add_seller(env: dict[str, str], venue_id: str, name: str, pin: str) -> str:
    args = ["seller", "add", "--venue", venue_id, "--name", name, "--pin-stdin", "--json"]
    out = subprocess.run([str(BIN / "tombola"), *args], env=env, input=pin + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["id"])


def label(app: AppProcess, wid: str) -> str:
    return str(app.send("label", id=wid)["text"])


def wait_label(app: AppProcess, wid: str, want: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = label(app, wid)
        if text == want:
            return text
        if time.monotonic() > deadline:
            state = app.state()
            raise AssertionError(f"{wid} shows {text!r}, not {want!r}; screen {state.get('screen')!r}: {state}")
        time.sleep(0.2)


def sign_in(app: AppProcess, seller_id: str, pin: str) -> dict[str, Any]:
    app.tap(f"seller_{seller_id}")
    for digit in pin:
        app.tap(f"pin_{digit}")
    app.tap("pin_ok")
    return app.state()


@pytest.mark.kivy
@pytest.mark.slow
def test_check_and_shift_screens(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    tombola(env, "init")
    demo = tombola(env, "demo")
    alice = add_seller(env, demo["venue_id"], "Alice", "4821")
    port = free_port()
    with display() as display_name:
        app = AppProcess(tmp_path / "pos.db", kivy_env(display_name, tmp_path / "kivy"))
        try:
            with running_server(env, port) as url:
                app.type("server_url", url)
                app.type("code", demo["code"])
                app.tap("enroll")
                app.wait_for(lambda s: s["enrolled"] and not s["busy"])
                app.tap("start")
                if app.state()["screen"] == "signin":
                    sign_in(app, alice, "4821")
                app.tap("price_5")
                app.tap("confirm")
                receipt = app.state()["receipt"]
                numbers, codes = receipt["numbers"], receipt["codes"]
                app.tap("next_sale")
                # Typed: number and code, the server answers.
                app.tap("nav_check")
                assert app.state()["screen"] == "check"
                app.type("number", str(numbers[0]))
                app.type("code", codes[0].lower().replace("-", ""))
                app.tap("check")
                wait_label(app, "headline", "VALID")
                assert label(app, "source") in ("Answered by the server", "Answered by this device's records")
                shoot(app, "check-valid")
                # Tampered: not found.
                app.type("code", codes[0][:-1] + ("0" if codes[0][-1] != "0" else "1"))
                app.tap("check")
                wait_label(app, "headline", "NOT FOUND")
                shoot(app, "check-not-found")
                # The end of shift: the float starts the shift; the report shows cash expected.
                app.tap("nav_shift")
                assert app.state()["screen"] == "shift"
                shoot(app, "shift-before")
                app.type("float", "100")
                app.tap("start_shift")
                assert label(app, "cash_expected") == "Cash expected: 100.00 USD"
                app.tap("nav_sell")
                app.tap("price_1")
                app.tap("confirm")
                app.tap("next_sale")
                app.tap("nav_shift")
                assert label(app, "cash_expected") == "Cash expected: 105.00 USD"
                assert "Seller Alice" in label(app, "report")
                shoot(app, "shift")
            # The server is down: the device's own records answer, and say so.
            app.tap("nav_check")
            app.tap("clear")
            link = ticket_check_url(url + "/check", demo["raffle_id"], numbers[1], codes[1])
            app.type("url", link)
            app.tap("check")
            wait_label(app, "headline", "VALID")
            assert label(app, "source") == "Answered by this device's records"
            assert "did not answer" in label(app, "note") or "waiting to sync" in label(app, "note")
            shoot(app, "check-offline")
        finally:
            app.close()
