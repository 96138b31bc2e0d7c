"""android/main.py, the Android entry point, on the desktop: it imports without Android or Kivy,
asks for the right run-time permissions by API level, and starts the real app class."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from buildozer.specparser import SpecParser

from tests.android.device_deps import ROOT

MAIN = ROOT / "android" / "main.py"


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("ANDROID_ARGUMENT", raising=False)
    monkeypatch.delenv("TOMBOLA_POS_DB", raising=False)
    spec = importlib.util.spec_from_file_location("tombola_android_main", MAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_off_android_nothing_is_asked(entry: ModuleType) -> None:
    assert not entry.on_android()
    assert entry.request_runtime_permissions() == []


@pytest.mark.parametrize(
    ("sdk_int", "bluetooth"),
    [(26, False), (30, False), (31, True), (36, True)],
)
def test_bluetooth_is_asked_at_run_time_from_android_12(entry: ModuleType, sdk_int: int, bluetooth: bool) -> None:
    asked: list[list[str]] = []
    assert entry.request_runtime_permissions(sdk_int=sdk_int, request=asked.append) == asked[0]
    expected = {"android.permission.CAMERA"}
    if bluetooth:
        expected |= {"android.permission.BLUETOOTH_CONNECT", "android.permission.BLUETOOTH_SCAN"}
    assert set(asked[0]) == expected


def test_what_is_asked_is_declared_in_the_spec(entry: ModuleType) -> None:
    config = SpecParser()
    config.read(str(ROOT / "android" / "buildozer.spec"))
    declared = " ".join(config.getlist("app", "android.permissions", []))
    for permission in entry.runtime_permissions(99):
        assert permission in declared


def test_database_path(entry: ModuleType, tmp_path: Path) -> None:
    assert entry.database_path({}) == Path("pos.db")
    assert entry.database_path({"TOMBOLA_POS_DB": str(tmp_path / "x.db")}) == tmp_path / "x.db"


def test_import_is_lazy_and_the_app_class_is_the_real_one(tmp_path: Path) -> None:
    # In a fresh interpreter: loading main.py imports neither Kivy nor Android modules; only
    # load_app_class() reaches pos_client.app (and Kivy), and finds the app `tombola-pos app` runs.
    code = (
        "import runpy, sys\n"
        f"ns = runpy.run_path({str(MAIN)!r}, run_name='entry')\n"
        "early = [m for m in sys.modules if m == 'kivy' or m.startswith(('kivy.', 'jnius', 'android'))]\n"
        "assert not early, early\n"
        "cls = ns['load_app_class']()\n"
        "print(cls.__module__, cls.__qualname__)\n"
    )
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_HOME": str(tmp_path), "KIVY_NO_CONSOLELOG": "1"}
    env.pop("ANDROID_ARGUMENT", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["pos_client.app.main", "PosApp"]
