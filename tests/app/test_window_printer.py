"""The Printer settings screen in the real app window under Xvfb (``tests/app/driver.py``): reached
from Setup's Printer button, the File kind chosen by its toggle, the path typed, Save, a test page
printed (ESC/POS in the file), No printer; screenshots at 720x1280 and 1280x800.

The Bluetooth kind on an enrolled device, with a fake radio (the one fake,
``tests/pos_client/fake_bluetooth_printer.py``, given to the app through
``TOMBOLA_TEST_FAKE_BLUETOOTH``) against a real ``tombola serve``: the screen needs a signed-in
seller (the sign-in comes first and leads back to it; a sign-out leaves it), the paired printers as
big buttons, Save, the test page's ESC/POS on the radio, and the permission refused as a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.harness import AppProcess
from tests.app.test_window import add_seller, shoot, sign_in, tombola
from tests.support.processes import free_port, running_server, server_env
from tests.support.xvfb import display, kivy_env

MAC = "66:22:B3:0C:1A:7F"


def label(app: AppProcess, wid: str) -> str:
    return str(app.send("label", id=wid)["text"])


@pytest.mark.kivy
@pytest.mark.slow
def test_printer_settings_screen(tmp_path: Path) -> None:
    out = tmp_path / "printer.bin"
    with display() as display_name:
        app = AppProcess(tmp_path / "pos.db", kivy_env(display_name, tmp_path / "kivy"))
        try:
            assert app.state()["screen"] == "setup"
            app.tap("setup_printer")
            assert app.state()["screen"] == "printer"
            assert label(app, "current").startswith("No printer")
            assert "disabled" in app.refused("printer_test")
            shoot(app, "printer")
            # A refused value: the sentence, the coded detail under it.
            app.type("host", "10.0.0.5")
            app.type("port", "70000")
            app.tap("printer_save")
            assert label(app, "printer_message").startswith("That is not a network printer")
            assert "(bad_printer)" in label(app, "printer_detail")
            shoot(app, "printer-refused")
            app.tap("kind_file")
            app.type("file_path", str(out))
            app.tap("printer_save")
            assert label(app, "current") == f"Printer now: file:{out}"
            app.tap("printer_test")
            app.wait_for(lambda _s: label(app, "printer_message").startswith("Test page printed"))
            assert out.read_bytes().startswith(b"\x1b@") and b"TEST PAGE" in out.read_bytes()
            shoot(app, "printer-saved")
            app.tap("printer_none")
            assert label(app, "current").startswith("No printer")
            app.tap("printer_back")
            assert app.state()["screen"] == "setup"
        finally:
            app.close()


@pytest.mark.kivy
@pytest.mark.slow
def test_bluetooth_printer_needs_a_seller_and_prints_a_test_page(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    tombola(env, "init")
    demo = tombola(env, "demo")
    alice = add_seller(env, demo["venue_id"], "Alice", "4821")
    radio_out = tmp_path / "radio.bin"
    config = tmp_path / "radio.json"

    def radio(**changes: object) -> None:
        data = {"paired": [["PT-210 Printer", MAC], ["Kitchen", "00:11:22:33:44:55"]], "out": str(radio_out)}
        config.write_text(json.dumps({**data, **changes}), encoding="utf-8")

    radio()
    with display() as display_name:
        app_env = {**kivy_env(display_name, tmp_path / "kivy"), "TOMBOLA_TEST_FAKE_BLUETOOTH": str(config)}
        with running_server(env, free_port()) as url:
            app = AppProcess(tmp_path / "pos.db", app_env)
            try:
                app.type("server_url", url)
                app.type("code", demo["code"])
                app.tap("enroll")
                app.wait_for(lambda s: s["enrolled"] and not s["busy"])
                # Enrolled: the printer settings need a signed-in seller, and come back after it.
                app.tap("setup_printer")
                assert app.state()["screen"] == "signin"
                assert sign_in(app, alice, "4821")["screen"] == "printer"
                app.tap("kind_bluetooth")
                app.wait_for(lambda _s: "bt_66_22_B3_0C_1A_7F" in app.send("ids", screen="printer").get("ids", []))
                shoot(app, "printer-bluetooth")
                app.tap("bt_66_22_B3_0C_1A_7F")  # refused if smaller than 48 dp
                assert label(app, "mac") == MAC
                app.tap("printer_save")
                assert label(app, "current") == f"Printer now: bluetooth:{MAC}"
                app.tap("printer_test")
                app.wait_for(lambda _s: label(app, "printer_message").startswith("Test page printed"))
                data = radio_out.read_bytes()
                assert data.startswith(b"\x1b@") and b"TEST PAGE" in data and b"\x1d(k" in data
                shoot(app, "printer-bluetooth-saved")
                # The permission refused: a sentence on the screen, nothing listed.
                radio(refuse=True)
                app.tap("bt_look")
                app.wait_for(lambda _s: label(app, "bt_message").startswith("Bluetooth printers need"))
                assert "bt_66_22_B3_0C_1A_7F" not in app.send("ids", screen="printer").get("ids", [])
                shoot(app, "printer-bluetooth-refused")
                # Signed out on the screen: the sign-in takes its place.
                app.tap("seller")
                app.wait_for(lambda s: s["screen"] == "signin")
            finally:
                app.close()
