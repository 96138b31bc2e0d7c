"""Camera QR scanning in the real app under Xvfb, against a real ``tombola serve`` process. The
camera is the one fake (this machine has none): its frames are real images of QR codes
(tests/app/scan_frames.py) put in a folder the driver reads (``TOMBOLA_TEST_FAKE_CAMERA``).

Setup: Scan shows a frame with no code, a blurred one, one cut in half and a code that is not
Tombola's (said in a sentence, the scan goes on), Cancel; Scan again reads the enrollment link
made by ``tombola device enroll-code --link`` and lands on the filled form, which enrolls. Ticket
check: Scan reads a sold ticket's receipt URL (after an enrollment code, refused) and answers
VALID. Without a camera the Scan buttons are not there. Screenshots of the scan view at 720x1280
and 1280x800 in ``tests/artifacts/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from sync_protocol.codes import ticket_check_url
from tests.app.harness import AppProcess
from tests.app.scan_frames import blank_scene, qr_scene
from tests.app.test_window import BIN, shoot, tombola
from tests.app.test_window_check_shift import add_seller, sign_in, wait_label
from tests.support.processes import free_port, running_server, server_env
from tests.support.xvfb import display, kivy_env

OTHER = "https://example.com/menu?table=4"


def show(camera: Path, *frames: Image.Image) -> None:
    """What the fake camera will see at the next scan, in order (the last one stays)."""
    for old in camera.glob("*.png"):
        old.unlink()
    for index, frame in enumerate(frames):
        frame.save(camera / f"{index:02d}.png")


@pytest.mark.kivy
@pytest.mark.slow
def test_scan_enrollment_and_ticket_codes(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    tombola(env, "init")
    demo = tombola(env, "demo")
    alice = add_seller(env, demo["venue_id"], "Alice", "4821")
    camera = tmp_path / "camera"
    camera.mkdir()
    port = free_port()
    with display() as display_name:
        app_env = {**kivy_env(display_name, tmp_path / "kivy"), "TOMBOLA_TEST_FAKE_CAMERA": str(camera)}
        app = AppProcess(tmp_path / "pos.db", app_env)
        try:
            with running_server(env, port) as url:
                args = ["device", "enroll-code", "--venue", demo["venue_id"], "--link", url, "--json"]
                made = subprocess.run([str(BIN / "tombola"), *args], env=env, capture_output=True, text=True)
                assert made.returncode == 0, made.stderr
                link = __import__("json").loads(made.stdout)["link"]
                state = app.state()
                assert state["screen"] == "setup" and state["scan"]["available"]
                # Nothing readable, then a code that is not Tombola's: a sentence, still scanning.
                show(camera, blank_scene(), qr_scene(link, blur=6), qr_scene(link, keep=0.5), qr_scene(OTHER))
                app.tap("scan_enroll")
                state = app.wait_for(lambda s: s["scan"]["warning"])
                assert state["scan"]["open"] and state["scan"]["scanning"] and state["scan"]["frames"] >= 4
                assert state["scan"]["message"].startswith("That QR code is not a Tombola enrollment code")
                assert "example.com/menu" in state["scan"]["message"]
                assert state["setup_form"] == {"server_url": "", "code": "", "server_key": ""}
                shoot(app, "scan-wrong-code")
                app.tap("scan_cancel")
                state = app.wait_for(lambda s: not s["scan"]["open"])
                assert not state["scan"]["scanning"] and state["screen"] == "setup"
                # The enrollment link: the form is filled, the device enrolls.
                show(camera, blank_scene(), qr_scene(link))
                app.tap("scan_enroll")
                state = app.wait_for(lambda s: not s["scan"]["open"] and s["setup_form"]["code"])
                assert state["setup_form"] == {"server_url": url, "code": demo_code(link), "server_key": ""}
                assert state["screen"] == "setup" and not state["scan"]["scanning"]
                assert "Scanned the enrollment code" in state["setup_message"]
                shoot(app, "setup-scanned")
                app.tap("enroll")
                app.wait_for(lambda s: s["enrolled"] and not s["busy"])
                app.tap("start")
                if app.state()["screen"] == "signin":
                    sign_in(app, alice, "4821")
                app.tap("price_5")
                app.tap("confirm")
                receipt = app.state()["receipt"]
                app.tap("next_sale")
                # Ticket check: an enrollment code is refused in a sentence, then the ticket's QR code.
                ticket = ticket_check_url(url + "/check", demo["raffle_id"], receipt["numbers"][0], receipt["codes"][0])
                show(camera, blank_scene(), qr_scene(link))
                app.tap("nav_check")
                app.tap("scan_ticket")
                state = app.wait_for(lambda s: s["scan"]["warning"])
                assert "not a Tombola ticket" in state["scan"]["message"] and state["scan"]["scanning"]
                shoot(app, "scan-ticket-wrong-code")
                app.tap("scan_cancel")
                # Scan again at once, as a volunteer does (before: the cancelled view was still fading
                # out and swallowed this tap, so nothing happened)
                show(camera, blank_scene(), qr_scene(ticket, blur=1.5))
                app.tap("scan_ticket")
                wait_label(app, "headline", "VALID")
                state = app.state()
                assert not state["scan"]["open"] and not state["scan"]["scanning"] and state["screen"] == "check"
                shoot(app, "check-scanned")
        finally:
            app.close()
        # No camera: no Scan button to tap, and nothing else changes.
        bare = AppProcess(tmp_path / "bare.db", kivy_env(display_name, tmp_path / "kivy2"))
        try:
            assert bare.state()["scan"]["available"] is False
            assert bare.refused("scan_enroll") == "scan_enroll is disabled"
            assert bare.send("label", id="scan_enroll")["size"][0] == 0  # and takes no room: hidden
            shoot(bare, "setup-no-camera")
        finally:
            bare.close()


def demo_code(link: str) -> str:
    return link.rsplit("code=", 1)[1]
