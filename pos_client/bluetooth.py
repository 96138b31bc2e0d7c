"""Bluetooth SPP receipt printers (``bluetooth:MAC``): the device's Bluetooth behind one small adapter.

Most venue receipt printers (58 and 80 mm thermal) are Bluetooth printers speaking the Serial
Port Profile: an RFCOMM stream to the SPP service, UUID :data:`SPP_UUID`, that takes the same
ESC/POS bytes a network printer takes. :func:`send` writes the bytes
:func:`pos_client.printing.render` made (python-escpos' ``Dummy`` printer, no I/O) to such a
printer, within a time limit.

**The adapter** (:class:`BluetoothAdapter`) is everything that touches the radio: asking for the
permission, listing the paired devices, and an RFCOMM link (connect, write, flush, close).
:func:`adapter` picks one for the platform, once:

- :class:`AndroidAdapter` on Android: the Android Bluetooth API through pyjnius
  (``BluetoothAdapter.getDefaultAdapter()``, ``getBondedDevices()``, ``getRemoteDevice(mac)``,
  ``createRfcommSocketToServiceRecord(SPP_UUID)``, ``connect()``, ``getOutputStream()``); the
  permissions BLUETOOTH_CONNECT and BLUETOOTH_SCAN are asked at run time on Android 12 (API 31)
  and later through python-for-android's ``android.permissions``. pyjnius and ``android`` come
  with python-for-android's kivy recipe; they are imported only there.
- :class:`LinuxAdapter` where Python has Bluetooth sockets (``socket.AF_BLUETOOTH``, Linux with
  BlueZ): an RFCOMM socket to channel :data:`RFCOMM_CHANNEL` (where SPP printers listen). It lists
  no paired devices (BlueZ keeps them behind D-Bus): the MAC is typed.
- :class:`NoBluetooth` elsewhere: every print fails with ``printer_unsupported``.

:func:`use_adapter` replaces it: the tests inject a fake one (the radio is the one part that
cannot run on a build machine).

**The time limit.** Android's ``BluetoothSocket.connect()`` blocks with no timeout of its own (a
printer that is off takes about 12 s to fail, one out of range longer). :func:`send` runs the
link on a thread of its own and waits at most ``timeout_s``; past it the link is closed (which
makes a blocked ``connect()`` or ``write()`` throw on Android, as its documentation says) and the
print fails with a :class:`TimeoutError`. Every thread that called the adapter ends with
:meth:`BluetoothAdapter.thread_done` (pyjnius: a thread attached to the Java VM must detach
before it ends).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pos_client.errors import PrinterUnsupported

#: the Serial Port Profile's service UUID (Bluetooth SIG assigned numbers: 0x1101)
SPP_UUID = "00001101-0000-1000-8000-00805F9B34FB"
#: the RFCOMM channel SPP printers listen on (Linux sockets connect to a channel, not a UUID)
RFCOMM_CHANNEL = 1
#: seconds a print to a Bluetooth printer may take, connecting included
SEND_TIMEOUT_S = 20.0
#: Android 12 (API 31) made Bluetooth a run-time permission
RUNTIME_PERMISSION_API = 31
#: the run-time permissions, asked on Android 12+ before listing paired printers or printing
PERMISSIONS = ("android.permission.BLUETOOTH_CONNECT", "android.permission.BLUETOOTH_SCAN")

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")

__all__ = [
    "PERMISSIONS",
    "SPP_UUID",
    "AndroidAdapter",
    "BluetoothAdapter",
    "LinuxAdapter",
    "NoBluetooth",
    "PairedDevice",
    "RfcommLink",
    "adapter",
    "parse_mac",
    "send",
    "use_adapter",
]


def parse_mac(text: str) -> str | None:
    """``text`` as a Bluetooth device address ``AA:BB:CC:DD:EE:FF`` (upper case, ``:``), or ``None``.

    Six two-digit hexadecimal bytes separated by ``:`` (or ``-``, as some printers print it);
    all zeros and all ``FF`` (broadcast) are no device.
    """
    text = text.strip()
    if not _MAC.match(text):
        return None
    mac = text.replace("-", ":").upper()
    return None if mac in ("00:00:00:00:00:00", "FF:FF:FF:FF:FF:FF") else mac


@dataclass(frozen=True)
class PairedDevice:
    """A device paired with this one in the system's Bluetooth settings."""

    name: str
    mac: str


class RfcommLink(Protocol):
    """One RFCOMM connection to a printer's SPP service, not connected yet."""

    def connect(self) -> None: ...
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class BluetoothAdapter(Protocol):
    """What the app needs of the device's Bluetooth."""

    def unsupported(self) -> str | None:
        """``None`` when this device can print over Bluetooth, else a sentence saying why not."""
        ...

    def request_access(self, done: Callable[[bool], None]) -> None:
        """Ask for the permissions (Android 12+); ``done(granted)`` is called once, maybe later,
        maybe on another thread."""
        ...

    def has_access(self) -> bool:
        """Whether the permissions are granted (always, where none are needed)."""
        ...

    def paired(self) -> list[PairedDevice]:
        """The paired devices, by name (empty where the platform cannot list them)."""
        ...

    def link(self, mac: str) -> RfcommLink:
        """An unconnected RFCOMM link to the SPP service of ``mac`` (``printer_unsupported`` when
        this device has no Bluetooth sockets)."""
        ...

    def thread_done(self) -> None:
        """Called at the end of every thread :func:`send` started (pyjnius detaches it)."""
        ...


# --------------------------------------------------------------------------- no Bluetooth


class NoBluetooth:
    """This device cannot print over Bluetooth: each print fails with ``printer_unsupported``."""

    def __init__(self, why: str) -> None:
        self.why = why

    def unsupported(self) -> str | None:
        return self.why

    def request_access(self, done: Callable[[bool], None]) -> None:
        done(True)

    def has_access(self) -> bool:
        return True

    def paired(self) -> list[PairedDevice]:
        return []

    def link(self, mac: str) -> RfcommLink:
        raise PrinterUnsupported(
            f"bluetooth:{mac} cannot be reached from this device: {self.why}", printer=f"bluetooth:{mac}"
        )

    def thread_done(self) -> None:
        pass


# --------------------------------------------------------------------------- Linux (and any socket family)


class _SocketLink:
    def __init__(self, sock: socket.socket, address: Any) -> None:
        self._sock = sock
        self._address = address

    def connect(self) -> None:
        self._sock.connect(self._address)

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def flush(self) -> None:
        pass  # sendall returns when the kernel has taken every byte

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a connect or send blocked on another thread
        self._sock.close()


class LinuxAdapter:
    """RFCOMM sockets of Python's ``socket`` module (``AF_BLUETOOTH``, ``BTPROTO_RFCOMM``), channel 1.

    Args:
        family, proto: the socket family and protocol (a subclass may use another family; the
            tests run the same link code over a Unix socket, as this machine has no Bluetooth).
    """

    def __init__(self, family: int | None = None, proto: int | None = None) -> None:
        self.family: int | None = family if family is not None else getattr(socket, "AF_BLUETOOTH", None)
        self.proto: int | None = proto if proto is not None else getattr(socket, "BTPROTO_RFCOMM", None)

    def address(self, mac: str) -> Any:
        """The socket address of ``mac``'s SPP service."""
        return (mac, RFCOMM_CHANNEL)

    def _socket(self) -> socket.socket:
        if self.family is None or self.proto is None:
            raise OSError("this Python has no Bluetooth sockets (socket.AF_BLUETOOTH)")
        return socket.socket(self.family, socket.SOCK_STREAM, self.proto)

    def unsupported(self) -> str | None:
        try:
            self._socket().close()
        except (OSError, ValueError) as exc:
            return f"the system has no Bluetooth RFCOMM sockets ({exc})"
        return None

    def request_access(self, done: Callable[[bool], None]) -> None:
        done(True)  # a desktop asks for no Bluetooth permission

    def has_access(self) -> bool:
        return True

    def paired(self) -> list[PairedDevice]:
        return []  # BlueZ keeps them behind D-Bus: on a desktop the MAC is typed

    def link(self, mac: str) -> RfcommLink:
        try:
            sock = self._socket()
        except (OSError, ValueError) as exc:
            raise PrinterUnsupported(
                f"bluetooth:{mac} cannot be reached: the system has no Bluetooth RFCOMM sockets ({exc})",
                printer=f"bluetooth:{mac}",
            ) from exc
        return _SocketLink(sock, self.address(mac))

    def thread_done(self) -> None:
        pass


# --------------------------------------------------------------------------- Android (pyjnius)


def on_android() -> bool:
    """True inside a python-for-android app (which sets ``ANDROID_ARGUMENT``) or CPython's Android port."""
    return "ANDROID_ARGUMENT" in os.environ or sys.platform == "android"


class _AndroidLink:
    def __init__(self, bt_socket: Any, cancel_discovery: Callable[[], Any]) -> None:
        self._socket = bt_socket
        self._cancel_discovery = cancel_discovery
        self._out: Any = None

    def connect(self) -> None:
        self._cancel_discovery()  # a running discovery slows a connection down (Android's advice)
        self._socket.connect()
        self._out = self._socket.getOutputStream()

    def write(self, data: bytes) -> None:
        self._out.write(data)  # pyjnius passes bytes as a Java byte[]

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self._socket.close()  # also makes a connect() blocked on another thread throw


class AndroidAdapter:  # pragma: no cover - runs only on an Android device
    """The Android Bluetooth API through pyjnius (imported here only: python-for-android's kivy
    recipe brings pyjnius and ``android``; a desktop has neither)."""

    def __init__(self) -> None:
        self._jnius = importlib.import_module("jnius")
        autoclass = self._jnius.autoclass
        self._adapter = autoclass("android.bluetooth.BluetoothAdapter").getDefaultAdapter()
        self._uuid = autoclass("java.util.UUID").fromString(SPP_UUID)
        self._sdk_int = int(autoclass("android.os.Build$VERSION").SDK_INT)

    def unsupported(self) -> str | None:
        if self._adapter is None:
            return "this device has no Bluetooth"
        if not self._adapter.isEnabled():
            return "Bluetooth is switched off: switch it on in Android's quick settings"
        return None

    def _permissions(self) -> Any:
        return importlib.import_module("android.permissions")

    def has_access(self) -> bool:
        if self._sdk_int < RUNTIME_PERMISSION_API:
            return True  # install-time BLUETOOTH and BLUETOOTH_ADMIN (maxSdkVersion=30)
        check = self._permissions().check_permission
        return all(check(p) for p in PERMISSIONS)

    def request_access(self, done: Callable[[bool], None]) -> None:
        if self.has_access():
            done(True)
            return

        def answered(permissions: list[str], grants: list[bool]) -> None:
            done(len(grants) == len(PERMISSIONS) and all(grants))

        self._permissions().request_permissions(list(PERMISSIONS), answered)

    def paired(self) -> list[PairedDevice]:
        if self._adapter is None or not self.has_access():
            return []
        devices = self._adapter.getBondedDevices().toArray()
        found = [PairedDevice(name=str(d.getName() or d.getAddress()), mac=str(d.getAddress())) for d in devices]
        return sorted(found, key=lambda d: (d.name.lower(), d.mac))

    def link(self, mac: str) -> RfcommLink:
        why = self.unsupported()
        if why is not None:
            raise OSError(why)
        if not self.has_access():
            raise PermissionError("the Nearby devices permission was refused: allow it in Android's app settings")
        device = self._adapter.getRemoteDevice(mac)
        return _AndroidLink(device.createRfcommSocketToServiceRecord(self._uuid), self._adapter.cancelDiscovery)

    def thread_done(self) -> None:
        self._jnius.detach()


# --------------------------------------------------------------------------- the adapter in use


_lock = threading.Lock()
_current: BluetoothAdapter | None = None


def default_adapter() -> BluetoothAdapter:
    """The adapter of this platform: Android's, Linux RFCOMM sockets, or none."""
    if on_android():  # pragma: no cover - runs only on an Android device
        return AndroidAdapter()
    if hasattr(socket, "AF_BLUETOOTH") and hasattr(socket, "BTPROTO_RFCOMM"):
        return LinuxAdapter()
    return NoBluetooth("this Python has no Bluetooth sockets (socket.AF_BLUETOOTH)")


def adapter() -> BluetoothAdapter:
    """The adapter in use (made by :func:`default_adapter` the first time)."""
    global _current
    with _lock:
        if _current is None:
            _current = default_adapter()
        return _current


def use_adapter(new: BluetoothAdapter | None) -> None:
    """Use ``new`` from now on (``None``: the platform's again, made when next needed)."""
    global _current
    with _lock:
        _current = new


def send(mac: str, data: bytes, *, timeout_s: float = SEND_TIMEOUT_S, via: BluetoothAdapter | None = None) -> None:
    """Connect to ``mac``'s SPP service, write ``data``, flush and close, within ``timeout_s``.

    Raises:
        PrinterUnsupported: this device cannot reach Bluetooth printers (``printer_unsupported``).
        TimeoutError: the printer took longer than ``timeout_s`` (the link was closed).
        Exception: what the adapter raised (refused connection, broken pipe, permission).
    """
    bt = via or adapter()
    why = bt.unsupported()
    if why is not None:
        raise PrinterUnsupported(
            f"bluetooth:{mac} cannot be reached from this device: {why}", printer=f"bluetooth:{mac}"
        )
    opened: list[RfcommLink] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            link = bt.link(mac)
            opened.append(link)
            try:
                link.connect()
                link.write(data)
                link.flush()
            finally:
                with contextlib.suppress(Exception):  # closing twice (after a timeout) is harmless
                    link.close()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            finished.set()
            bt.thread_done()

    worker = threading.Thread(target=run, name="pos-bluetooth", daemon=True)
    worker.start()
    if not finished.wait(timeout_s):
        finished.set()

        def abort() -> None:  # on a thread of its own, which detaches from the VM as the worker does
            try:
                for link in opened:
                    with contextlib.suppress(Exception):
                        link.close()
            finally:
                bt.thread_done()

        threading.Thread(target=abort, name="pos-bluetooth-abort", daemon=True).start()
        raise TimeoutError(f"bluetooth:{mac} did not take the receipt within {timeout_s:g} s")
    if failure:
        raise failure[0]
