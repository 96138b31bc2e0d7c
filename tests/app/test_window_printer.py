"""The Printer settings screen in the real app window under Xvfb (``tests/app/driver.py``): reached
from Setup's Printer button, the File kind chosen by its toggle, the path typed, Save, a test page
printed (ESC/POS in the file), No printer; screenshots at 720x1280 and 1280x800."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.harness import AppProcess
from tests.app.test_window import shoot
from tests.support.xvfb import display, kivy_env


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
