"""An X server for the POS app's window tests: Xvfb, started by the tests themselves.

When ``DISPLAY`` is set (a desktop, or ``xvfb-run``) that display is used. Otherwise Xvfb is
started on a free display number (``-displayfd``). A missing Xvfb FAILS the test, it does not
skip it: the window tests are part of ``make test`` (``scripts/bootstrap.sh`` installs xvfb).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def display() -> Iterator[str]:
    """A usable X display name (``:N``), started for the duration when there is none."""
    existing = os.environ.get("DISPLAY")
    if existing:
        yield existing
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed: run scripts/bootstrap.sh (it installs xvfb and the GL libraries)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x1280x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.fail(f"Xvfb did not start (exit status {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kivy_env(display_name: str, kivy_home: Path | None = None) -> dict[str, str]:
    """The environment of an app process: the display, Kivy's arguments left alone, a private KIVY_HOME."""
    env = dict(os.environ)
    env.update(
        DISPLAY=display_name,
        KIVY_NO_ARGS="1",
        KIVY_HOME=str(kivy_home or tempfile.mkdtemp(prefix="kivy-home-")),
        KIVY_NO_CONSOLELOG="1",
        KIVY_NO_FILELOG="1",
    )
    return env
