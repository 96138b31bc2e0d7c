"""Runs the real POS app in its window and lets a test drive it: one JSON command a line on stdin,
one JSON answer a line (prefixed ``@@``) on stdout.

Usage: ``python -m tests.app.driver --db FILE [--size 720x1280] [--sync-interval 1]``.

Commands (``op``): ``ping``; ``tap`` a widget (``id``, optional ``screen``) with a simulated touch
(Kivy's ``UnitTestTouch``, through the window's input dispatch) at its centre, refused when the
widget is not on the current screen, disabled, or smaller than 48 dp; ``timed`` also reports the
milliseconds from touch-down to the next frame drawn; ``kill`` sends SIGKILL to the app right
after the touch (a crash in the middle of a sale); ``text`` sets a text input; ``ids`` lists a
screen's widget names; ``state`` reads the view-model and the status bar; ``advance`` moves the
device clock on (wall and monotonic, as time passing does); ``screenshot``; ``resize``; ``stop``.

``TOMBOLA_TEST_FAKE_BLUETOOTH=FILE`` gives the app a fake Bluetooth radio configured by that JSON
file (``tests/pos_client/fake_bluetooth_printer.py``): paired printers, failures, the bytes sent.

``TOMBOLA_TEST_FAKE_CAMERA=DIR`` gives the app a camera whose frames are the PNG files of that
folder, in name order, read again at each scan (``tests/app/scan_frames.py``); the scan view's
widgets (``scan_cancel``...) are found while it is open, and ``state`` has ``scan``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--size", default="720x1280")
    parser.add_argument("--sync-interval", type=float, default=1.0)
    args = parser.parse_args()
    width, height = args.size.split("x")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")

    from kivy.config import Config

    Config.set("graphics", "width", width)
    Config.set("graphics", "height", height)
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")

    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.metrics import dp
    from kivy.tests.common import UnitTestTouch
    from kivy.uix.widget import Widget

    from pos_client.app.main import PosApp
    from pos_client.clock import SystemClock

    class SkewClock(SystemClock):
        """The system clocks plus an offset the test moves on (wall and monotonic alike)."""

        offset_ms = 0

        def wall_ms(self) -> int:
            return super().wall_ms() + self.offset_ms

        def monotonic_ms(self) -> int:
            return super().monotonic_ms() + self.offset_ms

    fake_bluetooth = os.environ.get("TOMBOLA_TEST_FAKE_BLUETOOTH")
    if fake_bluetooth:  # the one allowed fake, a Bluetooth radio (tests/pos_client/fake_bluetooth_printer.py)
        from pos_client import bluetooth
        from tests.pos_client.fake_bluetooth_printer import FakeBluetooth

        bluetooth.use_adapter(FakeBluetooth.from_file(fake_bluetooth))

    scan_service = None
    fake_camera = os.environ.get("TOMBOLA_TEST_FAKE_CAMERA")
    if fake_camera:  # the one allowed fake, a camera: real QR images as its frames
        from pathlib import Path

        from pos_client.app.scanner import ScanService
        from tests.app.scan_frames import FrameList, frames_from

        scan_service = ScanService(source_factory=lambda: FrameList(frames_from(Path(fake_camera))))

    clock = SkewClock()
    app = PosApp(args.db, clock=clock, sync_interval_s=args.sync_interval, scan_service=scan_service)
    out = os.fdopen(os.dup(1), "w", buffering=1)

    def reply(data: dict[str, Any]) -> None:
        out.write("@@" + json.dumps(data, default=str) + "\n")
        out.flush()

    def find(screen: str | None, wid: str) -> tuple[Widget, str]:
        root = app.root
        manager = root.ids.screens
        current = manager.current
        scan = app.scan
        if scan is not None and scan._window is not None and wid in scan.ids:  # the scan view is open
            return scan.ids[wid], current
        if wid in root.ids:
            return root.ids[wid], current
        if wid in root.ids.statusbar.ids:
            return root.ids.statusbar.ids[wid], current
        target = manager.get_screen(screen or current)
        widget = target.ids.get(wid) or getattr(target, "dynamic", {}).get(wid)
        if widget is None:
            raise LookupError(f"no widget {wid!r} on screen {target.name!r}")
        if target.name != current:
            raise LookupError(f"screen {target.name!r} is not shown (current: {current!r})")
        return widget, current

    def state() -> dict[str, Any]:
        vm = app.vm
        assert vm is not None
        keys = (
            "enrolled online pending last_sync lease numbers numbers_warning closes block raffle_id "
            "raffle_name quantity amount payment change_due error receipt setup_message setup_summary "
            "single_qty single_price device_id busy signed_in seller_name checking printing print_message "
            "print_detail print_failed"
        ).split()
        data = {k: getattr(vm, k) for k in keys}
        screens = app.root.ids.screens
        if screens.has_screen("signin"):
            svm = screens.get_screen("signin").svm
            data["signin"] = {k: getattr(svm, k) for k in ("seller_id", "message", "code", "empty_message")}
            data["signin"]["roster"] = [dict(s) for s in svm.roster]
        if screens.has_screen("void"):
            vvm = screens.get_screen("void").vvm
            data["void"] = {k: getattr(vvm, k) for k in ("message", "code", "ready", "reason_choice")}
            data["void"]["sale"] = dict(vvm.sale)
            data["void"]["voided"] = dict(vvm.voided)
        data["setup_form"] = {k: getattr(vm, f"setup_{k}") for k in ("server_url", "code", "server_key")}
        if app.scan is not None:
            svm = app.scan.svm
            keys = ("purpose", "scanning", "title", "message", "warning", "frames")
            data["scan"] = {k: getattr(svm, k) for k in keys}
            data["scan"].update(open=app.scan._window is not None, available=app.scan.available)
        data["raffles"] = [dict(r) for r in vm.raffles]
        data["price_points"] = [dict(p) for p in vm.price_points]
        data["screen"] = app.root.ids.screens.current
        bar = app.root.ids.statusbar.ids
        data["statusbar"] = {
            k: bar[k].text for k in ("online", "pending", "last_sync", "lease", "numbers", "closes", "seller")
        }
        return dict(data)

    def handle(cmd: dict[str, Any]) -> None:
        op = cmd.get("op")
        try:
            if op == "ping":
                reply({"ok": True, "screen": app.root.ids.screens.current})
            elif op == "state":
                reply({"ok": True, "state": state()})
            elif op == "text":
                widget, _ = find(cmd.get("screen"), cmd["id"])
                widget.text = cmd["value"]
                reply({"ok": True})
            elif op == "ids":  # the widget names of a screen, the ones made in code too
                shown = app.root.ids.screens.get_screen(cmd.get("screen") or app.root.ids.screens.current)
                reply({"ok": True, "ids": sorted([*shown.ids, *getattr(shown, "dynamic", {})])})
            elif op == "label":
                widget, _ = find(cmd.get("screen"), cmd["id"])
                reply({"ok": True, "text": widget.text, "size": list(widget.size)})
            elif op == "tap":
                widget, _ = find(cmd.get("screen"), cmd["id"])
                if widget.disabled:
                    reply({"ok": False, "error": f"{cmd['id']} is disabled"})
                    return
                if min(widget.size) < dp(48) - 0.5 or widget.opacity == 0:
                    reply({"ok": False, "error": f"{cmd['id']} is not a usable target: {list(widget.size)}"})
                    return
                x, y = widget.to_window(*widget.center)
                started = time.perf_counter()
                touch = UnitTestTouch(x, y)
                touch.touch_down()
                touch.touch_up()
                if cmd.get("kill"):
                    os.kill(os.getpid(), signal.SIGKILL)
                if not cmd.get("timed"):
                    reply({"ok": True})
                    return

                def drawn(*_a: Any) -> None:
                    Window.unbind(on_flip=drawn)
                    reply({"ok": True, "ms": (time.perf_counter() - started) * 1000})

                Window.bind(on_flip=drawn)
            elif op == "advance":
                clock.offset_ms += int(cmd["ms"])
                assert app.vm is not None
                app.vm.refresh()
                reply({"ok": True})
            elif op == "screenshot":
                reply({"ok": True, "path": Window.screenshot(name=cmd["path"])})
            elif op == "resize":
                Window.size = (cmd["width"], cmd["height"])
                reply({"ok": True})
            elif op == "stop":
                reply({"ok": True})
                app.stop()
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:  # the test reads the failure
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip():
                cmd = json.loads(line)
                Clock.schedule_once(lambda _dt, c=cmd: handle(c), 0)
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    def started(*_a: Any) -> None:
        threading.Thread(target=read_commands, daemon=True).start()
        reply({"ok": True, "ready": True})

    def on_start(*_a: Any) -> None:
        # Returns None: a handler that returns something true stops Kivy's dispatch, and
        # PosApp.on_start (app.start event, background sync) would never run.
        Clock.schedule_once(started, 0.2)

    app.bind(on_start=on_start)
    app.run()


if __name__ == "__main__":
    main()
