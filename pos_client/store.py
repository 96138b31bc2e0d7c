"""The device's one SQLite file: connection settings, schema and its versions, device state.

Durability: the file is in WAL mode with ``PRAGMA synchronous=FULL``, so a transaction whose
``COMMIT`` returned is on disk (the WAL is fsynced at every commit) and survives ``kill -9``
and power loss. Every change the SDK makes goes through :meth:`Store.write`, one
``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction: the write lock is taken up front, so two
processes on the same file (the app and the CLI) serialise instead of failing half-way.

Schema versions live in ``PRAGMA user_version``; :data:`MIGRATIONS` holds one function per
version, applied in order in one transaction. A file written by a newer SDK is refused.

Tables (see ``docs/pos-client.md``): ``device`` (one row: key, identity, anchor, ack state),
``server_keys`` (pinned), ``raffles``, ``grants``, ``revocations``, ``records`` (the hash chain);
from version 2 ``events`` and ``event_ack`` (device events, their own chain: :mod:`pos_client.events`);
from version 3 ``sellers`` (the venue's roster, PIN hashes) and ``seller_lockout`` (:mod:`pos_client.sellers`);
from version 4 ``settings`` (key/value: the printer) and ``receipts`` (print state: :mod:`pos_client.printing`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from pos_client.clock import Anchor
from pos_client.errors import NotAPosDatabase, NotEnrolled, StoreError
from sync_protocol.messages import GENESIS_HASH

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 10.0


def _schema_v1(db: Database) -> None:
    db.table("device").create(
        {
            "id": int,
            "key_pem": str,
            "public_key": str,
            "key_id": str,
            "device_id": str,
            "venue_id": str,
            "device_name": str,
            "server_url": str,
            "status": str,
            "lease_s": int,
            "anchor_server_ms": int,
            "anchor_wall_ms": int,
            "anchor_mono_ms": int,
            "anchor_boot_id": str,
            "acked_seq": int,
            "acked_hash": str,
            "enrolled_at_ms": int,
            "last_sync_ms": int,
        },
        pk="id",
        not_null={"key_pem", "public_key", "key_id", "device_name", "status", "acked_seq", "acked_hash"},
        defaults={"device_name": "", "status": "pending", "acked_seq": 0, "acked_hash": GENESIS_HASH},
    )
    db.table("server_keys").create(
        {"key_id": str, "algorithm": str, "public_key": str},
        pk="key_id",
        not_null={"algorithm", "public_key"},
    )
    db.table("raffles").create(
        {
            "raffle_id": str,
            "name": str,
            "currency": str,
            "status": str,
            "sales_open_at_ms": int,
            "sales_close_at_ms": int,
            "body": str,
        },
        pk="raffle_id",
        not_null={"name", "currency", "status", "sales_open_at_ms", "sales_close_at_ms", "body"},
    )
    db.table("grants").create(
        {
            "grant_id": str,
            "raffle_id": str,
            "first_number": int,
            "last_number": int,
            "next_number": int,
            "sales_close_at_ms": int,
            "revoked": int,
            "received_at_ms": int,
            "body": str,
        },
        pk="grant_id",
        not_null={
            "raffle_id",
            "first_number",
            "last_number",
            "next_number",
            "sales_close_at_ms",
            "revoked",
            "received_at_ms",
            "body",
        },
        defaults={"revoked": 0},
    )
    db.table("grants").create_index(["raffle_id", "first_number"])
    db.table("revocations").create({"grant_id": str, "revoked_at_ms": int}, pk="grant_id", not_null={"revoked_at_ms"})
    db.table("records").create(
        {
            "seq": int,
            "sale_id": str,
            "kind": str,
            "raffle_id": str,
            "hash": str,
            "device_time_ms": int,
            "amount_cents": int,
            "numbers": str,
            "voids": str,
            "voided_by": str,
            "rejected_code": str,
            "rejected_detail": str,
            "rejected_at_ms": int,
            "body": str,
        },
        pk="seq",
        not_null={"sale_id", "kind", "raffle_id", "hash", "device_time_ms", "body"},
    )
    db.table("records").create_index(["sale_id"], unique=True)


def _schema_v2_events(db: Database) -> None:
    """Device events (:mod:`pos_client.events`): their own hash chain, and what the server acknowledged of it."""
    db.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, type TEXT NOT NULL, "
        "seller_id TEXT NOT NULL DEFAULT '', device_time_ms INTEGER NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_events_type ON events (type, seq)")
    db.execute("CREATE TABLE event_ack (id INTEGER PRIMARY KEY, acked_seq INTEGER NOT NULL, acked_hash TEXT NOT NULL)")
    db.execute("INSERT INTO event_ack (id, acked_seq, acked_hash) VALUES (1, 0, ?)", (GENESIS_HASH,))


def _schema_v3_sellers(db: Database) -> None:
    """The venue's seller roster as sync delivers it, and wrong-PIN counts (:mod:`pos_client.sellers`)."""
    db.execute(
        "CREATE TABLE sellers (seller_id TEXT PRIMARY KEY, name TEXT NOT NULL, supervisor INTEGER NOT NULL DEFAULT 0, "
        "pin_scheme TEXT NOT NULL, pin_salt TEXT NOT NULL, pin_hash TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE seller_lockout (seller_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
        "locked_until_ms INTEGER NOT NULL)"
    )


def _schema_v4_receipts(db: Database) -> None:
    """Device settings (key/value: the printer) and each sale's receipt print state (:mod:`pos_client.printing`)."""
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE receipts (sale_id TEXT PRIMARY KEY, state TEXT NOT NULL, prints INTEGER NOT NULL DEFAULT 0, "
        "failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated_at_ms INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX idx_receipts_state ON receipts (state)")


MIGRATIONS: dict[int, Callable[[Database], None]] = {
    1: _schema_v1,
    2: _schema_v2_events,
    3: _schema_v3_sellers,
    4: _schema_v4_receipts,
}


@dataclass(frozen=True)
class DeviceState:
    """The ``device`` row."""

    key_pem: str
    public_key: str
    key_id: str
    device_id: str | None
    venue_id: str | None
    device_name: str
    server_url: str | None
    status: str
    lease_s: int | None
    anchor: Anchor | None
    acked_seq: int
    acked_hash: str
    enrolled_at_ms: int | None
    last_sync_ms: int | None

    @property
    def enrolled(self) -> bool:
        return self.device_id is not None

    def require_enrolled(self) -> EnrolledDevice:
        """The enrolled view of this row, or :class:`NotEnrolled`."""
        if self.device_id is None or self.anchor is None or self.lease_s is None or self.server_url is None:
            raise NotEnrolled("this device is not enrolled: run `tombola-pos enroll CODE --server URL` first")
        return EnrolledDevice(
            device_id=self.device_id,
            venue_id=self.venue_id or "",
            server_url=self.server_url,
            status=self.status,
            lease_s=self.lease_s,
            anchor=self.anchor,
            acked_seq=self.acked_seq,
            acked_hash=self.acked_hash,
            key_pem=self.key_pem,
            last_sync_ms=self.last_sync_ms,
        )


@dataclass(frozen=True)
class EnrolledDevice:
    """What an enrolled device always has."""

    device_id: str
    venue_id: str
    server_url: str
    status: str
    lease_s: int
    anchor: Anchor
    acked_seq: int
    acked_hash: str
    key_pem: str
    last_sync_ms: int | None

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"


_DEVICE_COLUMNS = (
    "key_pem, public_key, key_id, device_id, venue_id, device_name, server_url, status, lease_s, "
    "anchor_server_ms, anchor_wall_ms, anchor_mono_ms, anchor_boot_id, acked_seq, acked_hash, "
    "enrolled_at_ms, last_sync_ms"
)


class Store:
    """One open device database.

    Args:
        path: the SQLite file (created if missing).

    Raises:
        StoreError: the file is not a usable Tombola POS database.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path} as a SQLite database: {exc}") from exc
        try:
            self._refuse_foreign()
        except BaseException:
            self.conn.close()
            raise
        try:
            self.db = Database(self.conn)
            self.db.enable_wal()
            self.conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path} as a SQLite database: {exc}") from exc
        self._lock = threading.RLock()
        self._migrate()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.conn.close()

    def _refuse_foreign(self) -> None:
        """Refuse a file that is not a POS database, before anything is written to it.

        A POS database has ``user_version`` 1 or more and a ``device`` table; an empty file (or an
        SQLite database with no table at all) becomes one. Anything else, another SQLite database
        or a file that is not SQLite, is refused as it is: only read, its bytes unchanged.

        Raises:
            NotAPosDatabase: the file is something else.
        """
        advice = "nothing was changed; give the device's database, or a new file name to enroll a new device"
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise NotAPosDatabase(
                f"{self.path} is not a Tombola POS database (it is not an SQLite database: {exc}); {advice}",
                path=str(self.path),
            ) from exc
        if version == 0 and not tables:
            return  # new or empty: ours to set up
        if version >= 1 and "device" in tables:
            return  # a POS database (a newer schema is refused by _migrate)
        shown = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
        raise NotAPosDatabase(
            f"{self.path} is an SQLite database but not a Tombola POS database "
            f"(schema version {version}, tables: {shown or 'none'}); {advice}",
            path=str(self.path),
        )

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this SDK knows up to {SCHEMA_VERSION}: upgrade it"
            )
        if version == SCHEMA_VERSION:
            return
        with self.write():
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](self.db)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (``BEGIN IMMEDIATE``); rolled back on any exception.

        Raises:
            StoreError: SQLite could not do it (busy beyond the timeout, disk full, I/O error).
        """
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads (a deferred transaction, never written)."""
        with self._lock:
            if self.conn.in_transaction:  # nested in a write: already consistent
                yield self.conn
                return
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.rollback()  # ends the snapshot; a no-op if nothing is open

    # ------------------------------------------------------------------ helpers

    def one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> dict[str, Any] | None:
        """The first row of ``sql`` as a dict, or ``None``."""
        cursor = self.conn.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def all(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Every row of ``sql`` as dicts."""
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # ------------------------------------------------------------------ device row

    def device(self) -> DeviceState | None:
        """The device row, or ``None`` before a key was ever generated."""
        with self._lock:
            row = self.one(f"SELECT {_DEVICE_COLUMNS} FROM device WHERE id = 1")  # noqa: S608 - constant columns
        if row is None:
            return None
        anchor = None
        if row["anchor_server_ms"] is not None:
            anchor = Anchor(
                server_time_ms=row["anchor_server_ms"],
                wall_ms=row["anchor_wall_ms"],
                monotonic_ms=row["anchor_mono_ms"],
                boot_id=row["anchor_boot_id"],
            )
        return DeviceState(
            key_pem=row["key_pem"],
            public_key=row["public_key"],
            key_id=row["key_id"],
            device_id=row["device_id"],
            venue_id=row["venue_id"],
            device_name=row["device_name"],
            server_url=row["server_url"],
            status=row["status"],
            lease_s=row["lease_s"],
            anchor=anchor,
            acked_seq=row["acked_seq"],
            acked_hash=row["acked_hash"],
            enrolled_at_ms=row["enrolled_at_ms"],
            last_sync_ms=row["last_sync_ms"],
        )

    def enrolled_device(self) -> EnrolledDevice:
        """The enrolled device, or :class:`NotEnrolled`."""
        state = self.device()
        if state is None:
            raise NotEnrolled("this device is not enrolled: run `tombola-pos enroll CODE --server URL` first")
        return state.require_enrolled()

    def set_anchor(self, anchor: Anchor, lease_s: int) -> None:
        """Store a new time anchor and lease (inside a write transaction)."""
        self.conn.execute(
            "UPDATE device SET anchor_server_ms = ?, anchor_wall_ms = ?, anchor_mono_ms = ?, anchor_boot_id = ?, "
            "lease_s = ? WHERE id = 1",
            (anchor.server_time_ms, anchor.wall_ms, anchor.monotonic_ms, anchor.boot_id, lease_s),
        )
