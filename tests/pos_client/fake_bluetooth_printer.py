"""A fake Bluetooth radio with a printer behind it: the one part of the Bluetooth printer path that
cannot run on a build machine (no phone, no radio). It stands in for the adapter of
:mod:`pos_client.bluetooth` (permission, paired devices, an RFCOMM link) and records what the app
sent; it can fail as a real printer does: the connection refused, a write error, no answer.

The app under Xvfb gets one through ``tests/app/driver.py`` when ``TOMBOLA_TEST_FAKE_BLUETOOTH``
names a JSON file (:meth:`FakeBluetooth.from_file`); the file is read again at each call, so a
test changes the fake's behaviour while the app runs::

    {"paired": [["PT-210", "66:22:B3:0C:1A:7F"]], "out": "/tmp/bt.bin",
     "fail": null | "connect" | "write" | "timeout", "refuse": false, "unsupported": null}
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pos_client.bluetooth import PairedDevice, RfcommLink

#: what Android's BluetoothSocket.connect() throws for a printer that is off or out of range
CONNECT_REFUSED = "read failed, socket might closed or timeout, read ret: -1"
#: what its output stream throws when the link drops while writing
WRITE_BROKEN = "Broken pipe"


@dataclass
class FakeBluetooth:
    """The adapter: ``paired`` devices, a failure to play, the bytes each printer (by MAC) got."""

    paired_devices: list[PairedDevice] = field(default_factory=list)
    fail: str | None = None  # "connect", "write" or "timeout"
    refuse: bool = False  # the user refuses the permission
    why_unsupported: str | None = None
    out: Path | None = None  # also append what was written to this file (the app runs in a process)
    config: Path | None = None  # re-read at each call (from_file)
    written: dict[str, bytes] = field(default_factory=dict)
    connects: int = 0
    closes: int = 0
    asked: int = 0
    threads_done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: str | Path) -> FakeBluetooth:
        fake = cls(config=Path(path))
        fake._reload()
        return fake

    def _reload(self) -> None:
        if self.config is None:
            return
        data: dict[str, Any] = json.loads(self.config.read_text(encoding="utf-8"))
        self.paired_devices = [PairedDevice(name=n, mac=m) for n, m in data.get("paired", [])]
        self.fail = data.get("fail")
        self.refuse = bool(data.get("refuse"))
        self.why_unsupported = data.get("unsupported")
        self.out = Path(data["out"]) if data.get("out") else None

    # ---- the adapter (pos_client.bluetooth.BluetoothAdapter)

    def unsupported(self) -> str | None:
        self._reload()
        return self.why_unsupported

    def request_access(self, done: Callable[[bool], None]) -> None:
        self._reload()
        self.asked += 1
        done(not self.refuse)

    def has_access(self) -> bool:
        return not self.refuse

    def paired(self) -> list[PairedDevice]:
        self._reload()
        return list(self.paired_devices)

    def link(self, mac: str) -> RfcommLink:
        self._reload()
        if self.refuse:
            raise PermissionError("the Nearby devices permission was refused: allow it in Android's app settings")
        return FakeLink(self, mac)

    def thread_done(self) -> None:
        with self._lock:
            self.threads_done += 1


class FakeLink:
    """One RFCOMM link of :class:`FakeBluetooth`; ``timeout`` blocks until the link is closed."""

    def __init__(self, radio: FakeBluetooth, mac: str) -> None:
        self.radio = radio
        self.mac = mac
        self.closed = threading.Event()

    def connect(self) -> None:
        self.radio.connects += 1
        if self.radio.fail == "connect":
            raise OSError(CONNECT_REFUSED)
        if self.radio.fail == "timeout":  # a printer that never answers: blocks until closed
            self.closed.wait(60)
            raise OSError("socket closed")

    def write(self, data: bytes) -> None:
        if self.radio.fail == "write":
            with self.radio._lock:  # a part went out before the link dropped
                self.radio.written[self.mac] = self.radio.written.get(self.mac, b"") + data[:16]
            raise OSError(WRITE_BROKEN)
        with self.radio._lock:
            self.radio.written[self.mac] = self.radio.written.get(self.mac, b"") + data
            if self.radio.out is not None:
                with self.radio.out.open("ab") as fh:
                    fh.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        with self.radio._lock:
            self.radio.closes += 1
        self.closed.set()
