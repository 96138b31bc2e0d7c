"""Device time: an injectable :class:`Clock` and the server time :class:`Anchor`.

A device never trusts its own wall clock to decide whether a sale is on time. Every server
response carries ``server_time_ms``; the device stores it as an :class:`Anchor` together with
its own clock readings at receipt (wall, monotonic, boot id). A record then carries
``anchor_ms`` (the anchor's server time) and ``elapsed_ms`` (time since the anchor, measured
by the device), and both the device and the server judge the sale at ``anchor_ms + elapsed_ms``.

``elapsed_ms`` is measured on the monotonic clock when the device has not rebooted since the
anchor (same boot id): the monotonic clock is immune to the wall clock being set. After a
reboot the monotonic clock restarts, so the wall clock difference is used instead (and a wall
clock that is earlier than at the anchor, beyond the tolerance, is a ``clock_backwards``
refusal, see :mod:`pos_client.selling`). A negative difference within the tolerance counts as 0.

On Linux, :class:`SystemClock` reads ``CLOCK_BOOTTIME`` for the monotonic clock: unlike
``CLOCK_MONOTONIC`` (what :func:`time.monotonic` reads) it keeps counting while the device is
suspended, so a POS terminal that sleeps overnight cannot stretch its offline lease.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class Clock(Protocol):
    """What the SDK needs to know about time."""

    def wall_ms(self) -> int:
        """Wall clock, milliseconds since the Unix epoch (may jump when someone sets it)."""
        ...

    def monotonic_ms(self) -> int:
        """A clock that never goes backwards within one boot (its origin is arbitrary)."""
        ...

    def boot_id(self) -> str:
        """Changes when the monotonic clock restarts (a reboot)."""
        ...


class SystemClock:
    """The real clocks of the machine.

    ``boot_id`` is the kernel's ``/proc/sys/kernel/random/boot_id``; where there is none, a
    random id per process, which makes every new process measure elapsed time on the wall
    clock (the safe choice when the monotonic origin cannot be trusted across processes).
    """

    _process_boot_id = uuid.uuid4().hex

    def __init__(self) -> None:
        self._boot_id = self._read_boot_id()
        self._mono_clock = getattr(time, "CLOCK_BOOTTIME", None)

    @classmethod
    def _read_boot_id(cls) -> str:
        try:
            text = _BOOT_ID_PATH.read_text(encoding="ascii").strip()
        except OSError:
            return f"process-{cls._process_boot_id}"
        return text or f"process-{cls._process_boot_id}"

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        if self._mono_clock is not None:
            return time.clock_gettime_ns(self._mono_clock) // 1_000_000
        return time.monotonic_ns() // 1_000_000

    def boot_id(self) -> str:
        return self._boot_id


class ManualClock:
    """A clock that moves only when told to (tests, simulations, benchmarks).

    Args:
        wall_ms: initial wall clock.
        monotonic_ms: initial monotonic clock.
        boot_id: initial boot id.
    """

    def __init__(self, wall_ms: int = 1_767_225_600_000, monotonic_ms: int = 1_000_000, boot_id: str = "boot-1"):
        self._wall = wall_ms
        self._mono = monotonic_ms
        self._boot = boot_id

    def wall_ms(self) -> int:
        return self._wall

    def monotonic_ms(self) -> int:
        return self._mono

    def boot_id(self) -> str:
        return self._boot

    def advance(self, ms: int) -> None:
        """Both clocks move forward by ``ms``."""
        self._wall += ms
        self._mono += ms

    def set_wall(self, wall_ms: int) -> None:
        """Someone sets the wall clock; the monotonic clock does not move."""
        self._wall = wall_ms

    def reboot(self, boot_id: str, *, monotonic_ms: int = 0) -> None:
        """A reboot: new boot id, the monotonic clock restarts."""
        self._boot = boot_id
        self._mono = monotonic_ms


@dataclass(frozen=True)
class Reading:
    """One simultaneous reading of a :class:`Clock`."""

    wall_ms: int
    monotonic_ms: int
    boot_id: str

    @classmethod
    def of(cls, clock: Clock) -> Reading:
        return cls(wall_ms=clock.wall_ms(), monotonic_ms=clock.monotonic_ms(), boot_id=clock.boot_id())


@dataclass(frozen=True)
class Anchor:
    """The server time of the last response, and the device's clocks when it arrived."""

    server_time_ms: int
    wall_ms: int
    monotonic_ms: int
    boot_id: str

    @classmethod
    def received(cls, server_time_ms: int, at: Reading) -> Anchor:
        return cls(server_time_ms=server_time_ms, wall_ms=at.wall_ms, monotonic_ms=at.monotonic_ms, boot_id=at.boot_id)

    def raw_elapsed_ms(self, now: Reading) -> int:
        """Time since the anchor: monotonic within the same boot, wall clock across a reboot.

        May be negative (a wall clock set back after a reboot); callers decide what that means.
        """
        if now.boot_id == self.boot_id:
            return now.monotonic_ms - self.monotonic_ms
        return now.wall_ms - self.wall_ms

    def elapsed_ms(self, now: Reading) -> int:
        """:meth:`raw_elapsed_ms` clamped at 0 (records carry ``elapsed_ms >= 0``)."""
        return max(0, self.raw_elapsed_ms(now))

    def server_now_ms(self, now: Reading) -> int:
        """The server's time now, as far as the device can tell: ``anchor + elapsed``."""
        return self.server_time_ms + self.elapsed_ms(now)
