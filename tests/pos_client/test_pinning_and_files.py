"""Out-of-band pinning of the server's grant key at enrollment, and files that are not POS
databases: refused with a code, left byte for byte as they were."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from pos_client import ManualClock, NotAPosDatabase, PosClient, ServerKeyNotPinned
from pos_client.cli import cli
from sync_protocol.signing import SoftwareSigner, b64u_encode
from tests.pos_client.conftest import CODE, FAST_RETRY
from tests.pos_client.fake_server import BASE_URL, FakeServer

# --- pinning the server's grant key out of band -------------------------------------------------


@pytest.mark.parametrize("form", ["key_id", "public_key"])
def test_enrollment_carrying_the_pinned_key_is_accepted(pos: PosClient, server: FakeServer, form: str) -> None:
    key = server.signer.key_id if form == "key_id" else b64u_encode(server.signer.public_key)
    result = pos.enroll(CODE, BASE_URL, server_key=key)
    assert result.server_key_ids == [server.signer.key_id]
    assert len(result.grants) == 1 and not result.refused_grants


def test_enrollment_without_the_pinned_key_is_refused_and_writes_nothing(
    pos: PosClient, server: FakeServer, db_path: Path
) -> None:
    stranger = SoftwareSigner.generate().key_id
    with pytest.raises(ServerKeyNotPinned) as info:
        pos.enroll(CODE, BASE_URL, server_key=stranger)
    assert info.value.code == "server_key_not_pinned" and stranger in info.value.detail
    assert info.value.extra["server_keys"] == [server.signer.key_id]
    assert not db_path.exists() and pos.device_id is None


def test_only_the_pinned_key_is_pinned(pos: PosClient, server: FakeServer, db_path: Path) -> None:
    """An answer that adds a key of its own gets no grant of that key past the device."""
    rogue = SoftwareSigner.generate()
    server.add_raffle("R2")
    original_issue, original_enroll = server.issue_grant, server._enroll

    def issue(device_id: str, raffle_id: str, size: int | None = None, **kw: object) -> object:
        return original_issue(device_id, raffle_id, size, signer=rogue if raffle_id == "R2" else None)

    def enroll(body: dict[str, Any]) -> dict[str, Any]:
        answer = original_enroll(body)
        extra = {"key_id": rogue.key_id, "algorithm": "ed25519", "public_key": b64u_encode(rogue.public_key)}
        return answer | {"server_keys": [*answer["server_keys"], extra]}

    server.issue_grant = issue  # type: ignore[method-assign]
    server._enroll = enroll  # type: ignore[method-assign]
    result = pos.enroll(CODE, BASE_URL, server_key=server.signer.key_id)
    assert result.server_key_ids == [server.signer.key_id]
    assert [r.reason.split(":")[0] for r in result.refused_grants] == ["grant_invalid"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT key_id FROM server_keys").fetchall() == [(server.signer.key_id,)]


def test_cli_server_key(db_path: Path, clock: ManualClock, http: TestClient, server: FakeServer) -> None:
    runner = CliRunner()
    obj = {"http": http, "clock": clock, "retry": FAST_RETRY}
    refused = runner.invoke(
        cli,
        ["--db", str(db_path), "enroll", CODE, "--server", BASE_URL, "--server-key", "ed25519:0000000000000000"],
        obj=dict(obj),
    )
    assert refused.exit_code != 0 and refused.stderr.startswith("server_key_not_pinned: ")
    assert not db_path.exists()
    server.add_code("CODE-0002")  # the refused answer spent the first code on the server: a new one
    ok = runner.invoke(
        cli,
        ["--db", str(db_path), "enroll", "CODE-0002", "--server", BASE_URL, "--server-key", server.signer.key_id],
        obj=dict(obj),
    )
    assert ok.exit_code == 0, ok.output + ok.stderr
    assert "enrolled as device" in ok.stdout


# --- files that are not POS databases ----------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:  # what var/business.db looks like to the device: tables of its own
        conn.execute("CREATE TABLE venue (id TEXT PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO venue VALUES ('vn-1', 'Hall')")
    conn.close()


def _text(path: Path) -> None:
    path.write_text("these are my notes, not a database\n" * 40)


def _versioned_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:  # another application's schema version, no table
        conn.execute("PRAGMA user_version = 3")
    conn.close()


@pytest.mark.parametrize("make", [_foreign_sqlite, _text, _versioned_sqlite], ids=["sqlite", "text", "versioned"])
def test_a_file_that_is_not_a_pos_database_is_refused_unchanged(tmp_path: Path, make: Any) -> None:
    path = tmp_path / "not-pos.db"
    make(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(NotAPosDatabase) as info:
        PosClient(path)
    assert info.value.code == "not_a_pos_database" and "not a Tombola POS database" in info.value.detail
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-pos.db"]  # no -wal, no -shm left


def test_cli_on_a_foreign_database_refuses_with_a_code(tmp_path: Path) -> None:
    path = tmp_path / "business.db"
    _foreign_sqlite(path)
    before = path.read_bytes()
    for args in (["status"], ["enroll", CODE, "--server", BASE_URL]):
        result = CliRunner().invoke(cli, ["--db", str(path), *args])
        assert result.exit_code != 0 and result.stderr.startswith("not_a_pos_database: "), result.output
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["venue"]
    conn.close()


def test_an_empty_file_and_a_pos_database_open(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    PosClient(empty).close()  # an empty file becomes a POS database
    PosClient(empty).close()  # and opens again as one
