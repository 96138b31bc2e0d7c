"""Enrollment: identity, pinned keys, verified grants, the device key kept on the device."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import AlreadyEnrolled, ManualClock, NetworkError, NotEnrolled, PosClient, ServerRefused
from sync_protocol.signing import SoftwareSigner
from tests.pos_client.conftest import CODE, FAST_RETRY
from tests.pos_client.fake_server import BASE_URL, FakeServer


def test_enroll_stores_identity_keys_grants_and_raffles(pos: PosClient, server: FakeServer, db_path: Path) -> None:
    result = pos.enroll(CODE, BASE_URL, device_name="till 1")

    assert result.device_id in server.devices
    assert pos.device_id == result.device_id
    assert result.venue_id == "venue-1"
    assert result.server_key_ids == [server.signer.key_id]
    assert result.raffles == ["R1"]
    assert result.grants == [g.grant_id for g in server.devices[result.device_id].grants]
    assert result.refused_grants == []
    assert result.lease_s == 8 * 3600
    status = pos.status()
    assert status.device_id == result.device_id
    assert [(r.raffle_id, r.numbers_granted, r.numbers_left) for r in status.raffles] == [("R1", 100, 100)]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT status, server_url FROM device").fetchone() == ("active", BASE_URL)
        assert conn.execute("SELECT key_id FROM server_keys").fetchall() == [(server.signer.key_id,)]


def test_device_key_stays_in_the_database_and_signs_the_request(
    pos: PosClient, server: FakeServer, db_path: Path
) -> None:
    pos.enroll(CODE, BASE_URL)
    with sqlite3.connect(db_path) as conn:
        pem = conn.execute("SELECT key_pem FROM device").fetchone()[0]
    signer = SoftwareSigner.from_pem(pem.encode())
    device = server.devices[pos.device_id or ""]
    assert device.public_key == signer.public_key == pos.public_key
    # What the server kept of the request is the public key only.
    _, response = server.used_codes[CODE]
    assert "PRIVATE KEY" not in str(response) and "PRIVATE KEY" not in str(server.used_codes)


def test_enrolling_twice_is_refused(enrolled: PosClient) -> None:
    with pytest.raises(AlreadyEnrolled) as info:
        enrolled.enroll(CODE, BASE_URL)
    assert info.value.code == "already_enrolled"


def test_unknown_code_is_a_hard_error_with_the_servers_code(pos: PosClient) -> None:
    with pytest.raises(ServerRefused) as info:
        pos.enroll("NOPE-0000", BASE_URL)
    assert info.value.code == "enrollment_code_invalid"
    assert info.value.http_status == 403
    assert pos.device_id is None
    with pytest.raises(NotEnrolled):
        pos.sell("R1", 1)


def _files(db_path: Path) -> list[str]:
    return sorted(p.name for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))


def test_refused_enrollment_leaves_no_database_behind(pos: PosClient, server: FakeServer, db_path: Path) -> None:
    with pytest.raises(ServerRefused) as info:
        pos.enroll("NOPE-0000", BASE_URL)
    assert info.value.code == "enrollment_code_invalid"
    assert _files(db_path) == []  # the file this enrollment made is gone, with its key
    result = pos.enroll(CODE, BASE_URL)  # the same object can try again
    assert server.devices[result.device_id].public_key == pos.public_key
    assert _files(db_path)[0] == "pos.db"


def test_enrollment_with_the_server_down_leaves_no_database_behind(
    pos: PosClient, server: FakeServer, db_path: Path
) -> None:
    server.fail_next(*["drop_before"] * FAST_RETRY.attempts)  # connection refused on every try
    with pytest.raises(NetworkError):
        pos.enroll(CODE, BASE_URL)
    assert _files(db_path) == [] and server.devices == {}


def test_failed_enrollment_of_an_existing_file_forgets_only_its_key(
    db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY).close()  # made before: not ours to remove
    with PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY) as pos, pytest.raises(ServerRefused):
        pos.enroll("NOPE-0000", BASE_URL)
    assert db_path.exists()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM device").fetchone() == (0,)


def test_enrollment_whose_answer_was_lost_keeps_the_key_for_the_same_code(
    pos: PosClient, server: FakeServer, db_path: Path
) -> None:
    server.fail_next(*["timeout_after"] * FAST_RETRY.attempts)  # the server enrolled it; the answers were lost
    with pytest.raises(NetworkError):
        pos.enroll(CODE, BASE_URL)
    first_key = pos.public_key  # kept: the server may know the device by it
    result = pos.enroll(CODE, BASE_URL)
    assert pos.public_key == first_key
    assert list(server.devices) == [result.device_id]
    assert server.devices[result.device_id].public_key == first_key


def test_enrollment_answer_lost_is_retried_with_the_same_request(pos: PosClient, server: FakeServer) -> None:
    server.fail_next("drop_after", "503")
    result = pos.enroll(CODE, BASE_URL)
    assert list(server.devices) == [result.device_id]


def test_grant_with_a_bad_signature_at_enrollment_is_refused(
    db_path: Path, clock: ManualClock, server: FakeServer
) -> None:
    # The server signs the second raffle's grant with a key it never publishes.
    server.add_raffle("R2")
    rogue = SoftwareSigner.generate()
    original = server.issue_grant

    def issue(device_id: str, raffle_id: str, size: int | None = None, **kw: object) -> object:
        if raffle_id == "R2":
            return original(device_id, raffle_id, size, signer=rogue)
        return original(device_id, raffle_id, size)

    server.issue_grant = issue  # type: ignore[method-assign]
    with server.client() as http, PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY) as pos:
        result = pos.enroll(CODE, BASE_URL)
        assert len(result.grants) == 1
        assert [r.reason.split(":")[0] for r in result.refused_grants] == ["grant_invalid"]
        assert {r.raffle_id: r.numbers_granted for r in pos.status().raffles} == {"R1": 100, "R2": 0}
