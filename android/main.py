"""Android entry point of the Tombola POS app: python-for-android runs ``main.py`` of the app folder.

It asks for the run-time permissions, picks the database in the app's private storage and starts
:class:`pos_client.app.main.PosApp`, the same app ``tombola-pos --db FILE app`` runs on a desktop.

The file imports on a desktop: the Android modules (``android.permissions``, ``android.storage``,
``jnius``) are imported only inside the functions that run on a device, and the app itself
(``pos_client.app.main``, which imports Kivy) only when :func:`main` starts it, so the checks of
tests/android can load this module without a window, an Android runtime or even Kivy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Android 12 (API 31) made Bluetooth a run-time permission: BLUETOOTH_CONNECT to talk to a paired
#: printer, BLUETOOTH_SCAN to find one. Up to Android 11 the install-time BLUETOOTH and
#: BLUETOOTH_ADMIN permissions (declared with maxSdkVersion=30 in buildozer.spec) are enough.
BLUETOOTH_RUNTIME_API = 31
BLUETOOTH_PERMISSIONS = ("android.permission.BLUETOOTH_CONNECT", "android.permission.BLUETOOTH_SCAN")
#: The camera (QR codes: enrollment, ticket check) is a run-time permission on every supported
#: version (since API 23; the app's minimum is 26).
CAMERA_PERMISSION = "android.permission.CAMERA"
DB_FILE_NAME = "pos.db"

RequestPermissions = Callable[[list[str]], Any]


def on_android() -> bool:
    """True inside a python-for-android app (which sets ``ANDROID_ARGUMENT``) or on CPython's Android port."""
    return "ANDROID_ARGUMENT" in os.environ or sys.platform == "android"


def android_sdk_int() -> int:
    """The device's API level (``Build.VERSION.SDK_INT``), through pyjnius; only on a device."""
    from jnius import autoclass

    return int(autoclass("android.os.Build$VERSION").SDK_INT)


def runtime_permissions(sdk_int: int) -> list[str]:
    """The permissions to ask for at run time on a device of API level ``sdk_int``."""
    wanted = [CAMERA_PERMISSION]
    if sdk_int >= BLUETOOTH_RUNTIME_API:
        wanted.extend(BLUETOOTH_PERMISSIONS)
    return wanted


def request_runtime_permissions(*, sdk_int: int | None = None, request: RequestPermissions | None = None) -> list[str]:
    """Ask Android for the run-time permissions; return what was asked (nothing off Android).

    The system shows its dialog and answers later; a refused permission is not fatal: the app
    still sells, and printing or scanning reports its own error when it cannot reach the device.
    ``sdk_int`` and ``request`` default to the device's API level and
    ``android.permissions.request_permissions``.
    """
    if request is None:
        if not on_android():
            return []
        from android.permissions import request_permissions

        request = request_permissions
    wanted = runtime_permissions(android_sdk_int() if sdk_int is None else sdk_int)
    request(wanted)
    return wanted


def database_path(environ: dict[str, str] | None = None) -> Path:
    """Where the device's SQLite lives: ``$TOMBOLA_POS_DB``, else the app's private storage.

    On a device that is ``android.storage.app_storage_path()`` (kept across updates, removed with
    the app, not readable by other apps); elsewhere the current folder, as ``tombola-pos`` does.
    """
    env = os.environ if environ is None else environ
    if env.get("TOMBOLA_POS_DB"):
        return Path(env["TOMBOLA_POS_DB"])
    if on_android():
        from android.storage import app_storage_path

        return Path(app_storage_path()) / DB_FILE_NAME
    return Path(DB_FILE_NAME)


def load_app_class() -> type[Any]:
    """Import the Kivy app class late, so importing this file needs neither Kivy nor the app."""
    from pos_client.app.main import PosApp  # lazy on purpose: see the module docstring

    return PosApp


def main(argv: Sequence[str] | None = None) -> None:
    """Ask for permissions, then run the app on the device's database until it is closed."""
    del argv  # p4a passes no arguments; the signature matches a console entry point
    request_runtime_permissions()
    app_class = load_app_class()
    app_class(database_path()).run()


if __name__ == "__main__":
    main()
