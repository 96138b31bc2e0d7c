"""Sellers on the device: the roster sync delivers, offline PIN sign-in, lockout, the idle lock.

The server sends the full roster of the device's venue (active sellers and their PIN hashes,
:class:`~sync_protocol.messages.SellerInfo`) with every enrollment answer and sync
acknowledgement; :func:`store_roster` replaces the device's ``sellers`` table with it in the
same transaction as the rest of the answer (a disabled seller disappears at the next sync). An
answer without the member (an older server) leaves the roster as it is.

Sign-in needs no server: :func:`check_pin` verifies the PIN against the stored hash
(:func:`sync_protocol.pins.verify_pin`, constant-time compare). Failures are counted per seller
in ``seller_lockout``, durably (a restart does not reset them): after :data:`MAX_FAILURES`
wrong PINs in a row the seller is locked for :func:`lock_ms` (60 s, doubling with each further
failure, at most an hour); a right PIN clears the count. A supervisor PIN typed for a void
without naming the supervisor counts against the device-wide key :data:`ANY_SUPERVISOR`.

The lock uses the wall clock (``device_time``), which survives restarts; a device whose clock
is moved forward unlocks early, which the device's events (``seller.pin_failed``) let an
auditor see. The idle lock (:data:`IDLE_LOCK_MS`, 5 minutes) is kept by
:class:`~pos_client.client.PosClient` on the monotonic clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from pos_client.clock import Clock
from pos_client.errors import PinWrong, SellerLocked, SellerUnknown, SupervisorRequired
from pos_client.store import Store
from sync_protocol.messages import SellerInfo
from sync_protocol.pins import PinHash, verify_pin

__all__ = [
    "ANY_SUPERVISOR",
    "IDLE_LOCK_MS",
    "MAX_FAILURES",
    "Seller",
    "check_pin",
    "check_supervisor",
    "get",
    "lock_ms",
    "roster",
    "store_roster",
]

#: wrong PINs in a row before a seller is locked
MAX_FAILURES = 5
#: the first lock; each further wrong PIN doubles it, up to :data:`LOCK_MAX_MS`
LOCK_BASE_MS = 60_000
LOCK_MAX_MS = 3_600_000
#: the screen locks (a seller must sign in again) after this long without activity
IDLE_LOCK_MS = 5 * 60_000
#: the lockout key of supervisor PINs typed without naming the supervisor
ANY_SUPERVISOR = "*supervisor"


@dataclass(frozen=True)
class Seller:
    """A seller of the device's venue (the PIN hash stays in the database)."""

    seller_id: str
    name: str
    supervisor: bool


def store_roster(conn: sqlite3.Connection, sellers: Iterable[SellerInfo] | None) -> None:
    """Replace the roster with ``sellers`` (inside the caller's transaction); ``None`` keeps it."""
    if sellers is None:
        return
    rows = [(s.seller_id, s.name, int(s.supervisor), s.pin_scheme, s.pin_salt, s.pin_hash) for s in sellers]
    conn.execute("DELETE FROM sellers")
    conn.executemany(
        "INSERT OR REPLACE INTO sellers (seller_id, name, supervisor, pin_scheme, pin_salt, pin_hash) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    # Counts of sellers gone from the roster go with them (a re-added seller starts afresh).
    conn.execute(
        "DELETE FROM seller_lockout WHERE seller_id != ? AND seller_id NOT IN (SELECT seller_id FROM sellers)",
        (ANY_SUPERVISOR,),
    )


def roster(conn: sqlite3.Connection) -> list[Seller]:
    """The sellers this device knows, by name."""
    rows = conn.execute("SELECT seller_id, name, supervisor FROM sellers ORDER BY name, seller_id").fetchall()
    return [Seller(seller_id=r[0], name=r[1], supervisor=bool(r[2])) for r in rows]


def get(conn: sqlite3.Connection, seller_id: str) -> tuple[Seller, PinHash] | None:
    row = conn.execute(
        "SELECT seller_id, name, supervisor, pin_scheme, pin_salt, pin_hash FROM sellers WHERE seller_id = ?",
        (seller_id,),
    ).fetchone()
    if row is None:
        return None
    return Seller(seller_id=row[0], name=row[1], supervisor=bool(row[2])), PinHash(row[3], row[4], row[5])


def lock_ms(failures: int) -> int:
    """How long a seller with ``failures`` wrong PINs in a row is locked (0 below :data:`MAX_FAILURES`)."""
    if failures < MAX_FAILURES:
        return 0
    doubled: int = LOCK_BASE_MS << min(failures - MAX_FAILURES, 16)
    return min(doubled, LOCK_MAX_MS)


def _lockout(conn: sqlite3.Connection, key: str) -> tuple[int, int]:
    row = conn.execute("SELECT failures, locked_until_ms FROM seller_lockout WHERE seller_id = ?", (key,)).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _refuse_if_locked(store: Store, key: str, now_ms: int, who: str) -> None:
    with store.read() as conn:
        failures, until = _lockout(conn, key)
    if until > now_ms:
        wait_s = -(-(until - now_ms) // 1000)
        raise SellerLocked(
            f"{who} is locked after {failures} wrong PINs in a row: try again in {wait_s} s, or ask a supervisor",
            seller_id=key,
            locked_for_s=wait_s,
        )


def _count(store: Store, key: str, *, right: bool, now_ms: int) -> int:
    """Record the outcome of one try durably; the failures in a row after it."""
    with store.write() as conn:
        if right:
            conn.execute("DELETE FROM seller_lockout WHERE seller_id = ?", (key,))
            return 0
        failures = _lockout(conn, key)[0] + 1
        locked = lock_ms(failures)
        conn.execute(
            "INSERT OR REPLACE INTO seller_lockout (seller_id, failures, locked_until_ms) VALUES (?, ?, ?)",
            (key, failures, now_ms + locked if locked else 0),
        )
        return failures


def _wrong(key: str, failures: int, who: str) -> PinWrong:
    left = max(0, MAX_FAILURES - failures)
    if left:
        return PinWrong(f"wrong PIN for {who}: {left} tries left before a lock", seller_id=key, attempts_left=left)
    return PinWrong(
        f"wrong PIN for {who}: locked for {lock_ms(failures) // 1000} s after {failures} wrong PINs in a row",
        seller_id=key,
        attempts_left=0,
        locked_for_s=lock_ms(failures) // 1000,
    )


def check_pin(store: Store, clock: Clock, seller_id: str, pin: str) -> Seller:
    """The seller ``seller_id`` if ``pin`` is theirs; every try is counted (see the module doc).

    Raises:
        SellerUnknown: no such seller on this device (not synced yet, or disabled).
        SellerLocked: too many wrong PINs in a row; nothing was checked.
        PinWrong: the PIN is not the seller's (``attempts_left`` says how many before a lock).
    """
    with store.read() as conn:
        found = get(conn, seller_id)
    if found is None:
        raise SellerUnknown(
            f"no seller {seller_id!r} on this device: sync to get the venue's roster "
            "(`tombola seller add` on the server adds one)",
            seller_id=seller_id,
        )
    seller, stored = found
    who = f"seller {seller.name!r}"
    _refuse_if_locked(store, seller_id, clock.wall_ms(), who)
    right = verify_pin(pin, stored)
    failures = _count(store, seller_id, right=right, now_ms=clock.wall_ms())
    if not right:
        raise _wrong(seller_id, failures, who)
    return seller


def check_supervisor(store: Store, clock: Clock, pin: str, supervisor_id: str | None = None) -> Seller:
    """The supervisor whose PIN ``pin`` is: ``supervisor_id``'s, or any supervisor's on the roster.

    Raises:
        SupervisorRequired: the roster has no supervisor (add one: ``tombola seller add --supervisor``).
        SellerUnknown: ``supervisor_id`` is not a supervisor on this device.
        SellerLocked, PinWrong: as :func:`check_pin`.
    """
    if supervisor_id is not None:
        with store.read() as conn:
            found = get(conn, supervisor_id)
        if found is None or not found[0].supervisor:
            raise SellerUnknown(f"{supervisor_id!r} is not a supervisor on this device", seller_id=supervisor_id)
        return check_pin(store, clock, supervisor_id, pin)
    with store.read() as conn:
        rows = conn.execute(
            "SELECT seller_id, name, pin_scheme, pin_salt, pin_hash FROM sellers WHERE supervisor = 1 "
            "ORDER BY seller_id"
        ).fetchall()
    if not rows:
        raise SupervisorRequired(
            "this device knows no supervisor: add one on the server (`tombola seller add --supervisor`) and sync"
        )
    _refuse_if_locked(store, ANY_SUPERVISOR, clock.wall_ms(), "the supervisor PIN")
    match = next(
        (
            Seller(seller_id=r[0], name=r[1], supervisor=True)
            for r in rows
            if verify_pin(pin, PinHash(r[2], r[3], r[4]))
        ),
        None,
    )
    failures = _count(store, ANY_SUPERVISOR, right=match is not None, now_ms=clock.wall_ms())
    if match is None:
        raise _wrong(ANY_SUPERVISOR, failures, "a supervisor")
    return match
