"""The grant wallet (pure number picking, grant intake) and the SQLite store (pragmas, schema)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pos_client import NumbersExhausted, StoreError, wallet
from pos_client.store import SCHEMA_VERSION, Store
from pos_client.wallet import GrantSlice
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner

SIGNER = SoftwareSigner.from_seed(bytes(range(32)))
KEYS = KeyRing([PublicKey(key_id=SIGNER.key_id, public_key=SIGNER.public_key)])


def _grant(grant_id: str, first: int, last: int, device_id: str = "dv-1") -> RangeGrant:
    return RangeGrant(
        grant_id=grant_id,
        raffle_id="R1",
        device_id=device_id,
        first_number=first,
        last_number=last,
        issued_at_ms=1,
        lease_s=3600,
        sales_close_at_ms=10**13,
        signer_key_id="",
    ).signed_by(SIGNER)


def test_pick_numbers_lowest_first_across_slices() -> None:
    slices = [GrantSlice("b", 50, 52), GrantSlice("a", 8, 10)]
    picks = wallet.pick_numbers(slices, 5)
    assert [(s.grant_id, numbers) for s, numbers in picks] == [("a", [8, 9, 10]), ("b", [50, 51])]


def test_pick_numbers_refuses_more_than_left() -> None:
    with pytest.raises(NumbersExhausted) as info:
        wallet.pick_numbers([GrantSlice("a", 9, 10)], 3)
    assert info.value.extra["numbers_left"] == 2


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "w.db")


def test_store_grants_verifies_and_refuses(store: Store) -> None:
    tampered = _grant("g-bad", 300, 399).model_copy(update={"last_number": 999})
    with store.write() as conn:
        intake = wallet.store_grants(
            conn,
            [
                _grant("g-1", 1, 100),
                _grant("g-1", 1, 100),  # the same grant again: silently kept as held
                _grant("g-other", 101, 200, device_id="dv-2"),
                _grant("g-overlap", 50, 150),
                tampered,
                _grant("g-2", 201, 210).to_dict(),
            ],
            keys=KEYS,
            device_id="dv-1",
            now_ms=5,
        )
    assert intake.stored == ["g-1", "g-2"]
    assert {r.grant_id: r.reason.split(":")[0] for r in intake.refused} == {
        "g-other": "grant_invalid",
        "g-overlap": "grant_invalid",
        "g-bad": "grant_invalid",
    }
    assert [g.grant_id for g in wallet.held_grants(store.conn)] == ["g-1", "g-2"]


def test_revocation_that_arrives_before_its_grant_still_applies(store: Store) -> None:
    with store.write() as conn:
        assert wallet.revoke(conn, ["g-1"], now_ms=1) == []
        wallet.store_grants(conn, [_grant("g-1", 1, 10)], keys=KEYS, device_id="dv-1", now_ms=2)
    assert wallet.usable_slices(store.conn, "R1") == []
    assert wallet.counts_by_raffle(store.conn) == {}


def test_store_is_wal_with_full_sync_and_versioned(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= {"device", "server_keys", "raffles", "grants", "revocations", "records"}
    store.close()
    Store(tmp_path / "s.db").close()  # reopening an up-to-date file changes nothing


def test_a_file_from_a_newer_sdk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE device (id INTEGER PRIMARY KEY)")  # every schema version has it
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as info:
        Store(path)
    assert info.value.code == "store_error"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Store(path)


def test_a_failed_write_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("INSERT INTO revocations (grant_id, revoked_at_ms) VALUES ('x', 1)")
        raise RuntimeError("boom")
    assert store.conn.execute("SELECT COUNT(*) FROM revocations").fetchone()[0] == 0


def test_a_busy_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    store = Store(path)
    store.conn.execute("PRAGMA busy_timeout = 50")
    try:
        with pytest.raises(StoreError, match="locked"), store.write():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
