"""Write-once archives of the audit log: local files and S3 with Object Lock (against moto's server).

What moto lets through that S3 refuses is not tested as a guarantee here (see
/work/shared/ENVIRONMENT.md and docs/audit-storage.md): moto does not check a request's
SHA-256 or Content-MD5 against the body, and it refuses an Object Lock configuration change on
a bucket that holds objects.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from gli_core.audit.shipper import read_archive, seal, segment_key
from gli_core.audit.store import (
    DEFAULT_RETENTION_DAYS,
    LIFECYCLE_RULE_ID,
    AuditArchiveInvalid,
    AuditBucketUnlocked,
    AuditStoreConflict,
    AuditStoreUnavailable,
    LocalSegmentStore,
    S3SegmentStore,
    SegmentStore,
    lifecycle_rule,
    setup_bucket,
)
from gli_core.errors import CoreError
from tests.support.moto import MotoServer, unique_name
from tests.support.processes import free_port

KEY = segment_key(0, 4)
DATA = seal([b'{"index":0}', b'{"index":1}', b'{"index":2}', b'{"index":3}'])
SHA = hashlib.sha256(DATA).hexdigest()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def index_lines(root: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in (root / "index.jsonl").read_bytes().splitlines()]


# ------------------------------------------------------------------------------------------
# errors


def test_error_classes() -> None:
    assert issubclass(AuditStoreConflict, CoreError)
    assert (AuditStoreConflict.code, AuditStoreConflict.status) == ("audit_store_conflict", 409)
    assert (AuditStoreUnavailable.code, AuditStoreUnavailable.status) == ("audit_store_unavailable", 503)
    assert (AuditBucketUnlocked.code, AuditBucketUnlocked.status) == ("audit_bucket_unlocked", 409)
    assert (AuditArchiveInvalid.code, AuditArchiveInvalid.status) == ("audit_archive_invalid", 422)


# ------------------------------------------------------------------------------------------
# local files


def test_local_put_get_digest_keys(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path, clock=lambda: NOW)
    assert isinstance(store, SegmentStore)
    assert store.digest(KEY) is None
    store.put(KEY, DATA)
    store.put("checkpoints/000000000004.note", "note — ü\n".encode())
    assert store.get(KEY) == DATA
    assert store.digest(KEY) == SHA
    assert store.keys("segments/") == [KEY]
    assert store.keys("") == ["checkpoints/000000000004.note", KEY]
    path = tmp_path / "segments" / "000000000000-000000000004.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert index_lines(tmp_path)[0] == {
        "key": KEY,
        "sha256": SHA,
        "bytes": len(DATA),
        "time": "2026-11-25T12:00:00.000Z",
    }
    with pytest.raises(KeyError):
        store.get(segment_key(4, 8))
    with pytest.raises(ValueError, match="not an archive key"):
        store.put("../escape", b"x")
    with pytest.raises(ValueError, match="not an archive key"):
        store.digest("/abs/path")


def test_local_write_once(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path)
    store.put(KEY, DATA)
    store.put(KEY, DATA)  # same bytes: nothing happens
    assert len(index_lines(tmp_path)) == 1
    with pytest.raises(AuditStoreConflict) as caught:
        store.put(KEY, DATA + b'{"index":4}\n')
    assert caught.value.code == "audit_store_conflict" and caught.value.status == 409
    assert caught.value.extra["stored_sha256"] == SHA
    assert store.get(KEY) == DATA
    assert len(index_lines(tmp_path)) == 1


def test_local_concurrent_puts_of_one_key(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            store.put(KEY, DATA)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(index_lines(tmp_path)) == 1
    assert os.listdir(tmp_path / "segments") == ["000000000000-000000000004.jsonl"]  # no temporary file left


def test_local_torn_index_line_is_cut_on_open(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path)
    store.put(KEY, DATA)
    with open(tmp_path / "index.jsonl", "ab") as handle:
        handle.write(b'{"key":"segments/0000000')  # the crash tore the next line
    reopened = LocalSegmentStore(tmp_path)
    assert any("torn" in note for note in reopened.recovered)
    raw = (tmp_path / "index.jsonl").read_bytes()
    assert raw.endswith(b"\n") and len(index_lines(tmp_path)) == 1
    assert reopened.digest(KEY) == SHA
    reopened.put(segment_key(4, 8), DATA)
    assert [line["key"] for line in index_lines(tmp_path)] == [KEY, segment_key(4, 8)]


def test_local_garbage_last_line_is_torn_but_a_bad_middle_line_is_corruption(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path)
    store.put(KEY, DATA)
    with open(tmp_path / "index.jsonl", "ab") as handle:
        handle.write(b"\0\0\0\0\n")  # a crash that extended the file with zeros
    LocalSegmentStore(tmp_path)
    assert len(index_lines(tmp_path)) == 1
    with open(tmp_path / "index.jsonl", "ab") as handle:
        handle.write(b"not json\n")
    LocalSegmentStore(tmp_path).put(segment_key(4, 8), DATA)  # cut, then a good line after it
    (tmp_path / "index.jsonl").write_bytes(b"garbage\n" + (tmp_path / "index.jsonl").read_bytes())
    with pytest.raises(AuditArchiveInvalid, match="line 1"):
        LocalSegmentStore(tmp_path)


def test_local_object_without_index_line_is_indexed_on_open(tmp_path: Path) -> None:
    LocalSegmentStore(tmp_path).put(KEY, DATA)
    # A crash after the link and before the index line: the object is there, its line is not,
    # and the line being written was torn.
    other = segment_key(4, 8)
    path = tmp_path / "segments" / "000000000004-000000000008.jsonl"
    path.write_bytes(DATA)
    path.chmod(0o444)
    (tmp_path / "segments" / ".tmp-deadbeef").write_bytes(b"half a segm")  # and a temporary file
    with open(tmp_path / "index.jsonl", "ab") as handle:
        handle.write(b'{"key":"segments/000000000004-0000')
    store = LocalSegmentStore(tmp_path)
    lines = index_lines(tmp_path)
    assert [line["key"] for line in lines] == [KEY, other]
    assert lines[1]["recovered"] is True and lines[1]["sha256"] == SHA
    assert not (tmp_path / "segments" / ".tmp-deadbeef").exists()
    assert store.digest(other) == SHA
    store.put(other, DATA)  # same bytes: a no-op
    with pytest.raises(AuditStoreConflict):
        store.put(other, b"other\n")
    assert LocalSegmentStore(tmp_path).recovered == []  # nothing left to repair


def test_local_tampered_or_missing_file_is_detected(tmp_path: Path) -> None:
    store = LocalSegmentStore(tmp_path)
    store.put(KEY, DATA)
    path = tmp_path / "segments" / "000000000000-000000000004.jsonl"
    path.chmod(0o644)
    path.write_bytes(DATA.replace(b"2", b"9"))
    with pytest.raises(AuditArchiveInvalid, match="no longer matches"):
        store.get(KEY)
    with pytest.raises(AuditArchiveInvalid):
        store.digest(KEY)
    path.unlink()
    with pytest.raises(AuditArchiveInvalid, match="missing"):
        store.get(KEY)


def test_local_read_archive(tmp_path: Path) -> None:
    entries = [orjson.dumps({"index": i, "payload": {"name": "é"}}) for i in range(8)]
    store = LocalSegmentStore(tmp_path)
    store.put(segment_key(4, 8), seal(entries[4:]))
    store.put(segment_key(0, 4), seal(entries[:4]))
    store.put("checkpoints/000000000008.note", "log\n8\nroot\n\n— sig\n".encode())
    reopened = LocalSegmentStore(tmp_path)
    got, checkpoints = read_archive(reopened)
    assert list(got) == entries
    assert checkpoints == [(8, "log\n8\nroot\n\n— sig\n")]


# ------------------------------------------------------------------------------------------
# S3 with Object Lock (moto's server)


@pytest.fixture
def s3(moto_server: MotoServer) -> Any:
    return moto_server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = unique_name("audit")
    setup_bucket(s3, name)
    return name


def versions(client: Any, bucket: str, key: str) -> list[dict[str, object]]:
    found = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in found.get("Versions", []) if v["Key"] == key]


def test_s3_put_locks_and_checksums(s3: Any, bucket: str) -> None:
    store = S3SegmentStore(s3, bucket, clock=lambda: NOW)
    assert isinstance(store, SegmentStore) and store.name == f"s3://{bucket}"
    assert store.digest(KEY) is None and store.keys("") == []
    store.put(KEY, DATA)
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == NOW + timedelta(days=DEFAULT_RETENTION_DAYS)
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(SHA)).decode()
    assert head["Metadata"] == {"sha256": SHA}
    assert store.get(KEY) == DATA and store.digest(KEY) == SHA
    assert store.keys("segments/") == [KEY] and store.keys("checkpoints/") == []


def test_s3_write_once(s3: Any, bucket: str) -> None:
    store = S3SegmentStore(s3, bucket)
    store.put(KEY, DATA)
    store.put(KEY, DATA)
    with pytest.raises(AuditStoreConflict):
        store.put(KEY, b"other\n")
    assert len(versions(s3, bucket, KEY)) == 1  # neither the repeat nor the conflict added a version


def test_s3_locked_version_cannot_be_deleted(s3: Any, bucket: str) -> None:
    store = S3SegmentStore(s3, bucket)
    store.put(KEY, DATA)
    [version] = versions(s3, bucket, KEY)
    for bypass in (False, True):
        with pytest.raises(ClientError) as caught:
            s3.delete_object(Bucket=bucket, Key=KEY, VersionId=version["VersionId"], BypassGovernanceRetention=bypass)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert store.get(KEY) == DATA


def test_s3_first_version_is_the_truth_after_an_overwrite(s3: Any, bucket: str) -> None:
    store = S3SegmentStore(s3, bucket)
    store.put(KEY, DATA)
    s3.put_object(Bucket=bucket, Key=KEY, Body=b"forged\n")
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"forged\n"
    assert store.get(KEY) == DATA
    assert store.digest(KEY) == SHA == hashlib.sha256(store.get(KEY)).hexdigest()
    store.put(KEY, DATA)  # the original is there: no-op
    with pytest.raises(AuditStoreConflict):
        store.put(KEY, b"forged\n")  # the forged bytes are not the archive's
    assert len(versions(s3, bucket, KEY)) == 2


def test_s3_first_version_is_the_truth_after_a_delete_marker(s3: Any, bucket: str) -> None:
    store = S3SegmentStore(s3, bucket)
    store.put(KEY, DATA)
    s3.delete_object(Bucket=bucket, Key=KEY)  # only adds a delete marker
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=KEY)
    assert store.keys("segments/") == [KEY]
    assert store.digest(KEY) == SHA and store.get(KEY) == DATA
    store.put(KEY, DATA)  # no second version on top of the marker
    assert len(versions(s3, bucket, KEY)) == 1


def test_s3_object_written_first_by_someone_else_is_a_conflict(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key=KEY, Body=b"squatter\n")
    store = S3SegmentStore(s3, bucket)
    assert store.digest(KEY) == hashlib.sha256(b"squatter\n").hexdigest()
    with pytest.raises(AuditStoreConflict):
        store.put(KEY, DATA)


def test_s3_unreachable_endpoint_is_unavailable(moto_server: MotoServer) -> None:
    dead = moto_server.client(
        "s3",
        endpoint=f"http://127.0.0.1:{free_port()}",
        connect_timeout=0.5,
        read_timeout=0.5,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    store = S3SegmentStore(dead, "whatever-bucket")
    for call in (lambda: store.digest(KEY), lambda: store.put(KEY, DATA), lambda: store.keys("")):
        with pytest.raises(AuditStoreUnavailable) as caught:
            call()
        assert caught.value.status == 503
    with pytest.raises(AuditStoreUnavailable):
        setup_bucket(dead, "whatever-bucket")


def test_setup_bucket_reads_back_and_is_idempotent(s3: Any) -> None:
    name = unique_name("audit-setup")
    first = setup_bucket(s3, name)
    assert first["created"] is True and first["versioning"] == "Enabled"
    assert first["object_lock"]["ObjectLockEnabled"] == "Enabled"
    retention = first["object_lock"]["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"], retention.get("Years", 0)) == (
        "COMPLIANCE",
        DEFAULT_RETENTION_DAYS,
        0,
    )
    assert first["lifecycle"] == [lifecycle_rule()]
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rule["ID"] == LIFECYCLE_RULE_ID and rule["Status"] == "Enabled"
    assert rule["Transitions"] == [
        {"Days": 90, "StorageClass": "GLACIER"},
        {"Days": 365, "StorageClass": "DEEP_ARCHIVE"},
    ]
    assert rule["NoncurrentVersionTransitions"] == [
        {"NoncurrentDays": 90, "StorageClass": "GLACIER"},
        {"NoncurrentDays": 365, "StorageClass": "DEEP_ARCHIVE"},
    ]
    S3SegmentStore(s3, name).put(KEY, DATA)
    again = setup_bucket(s3, name)  # on a bucket that holds objects now: changes nothing
    assert again == {**first, "created": False}


def test_setup_bucket_keeps_other_lifecycle_rules_and_sets_retention(s3: Any) -> None:
    name = unique_name("audit-setup")
    setup_bucket(s3, name, retention_days=30)
    other = {"ID": "other", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": [other, {**lifecycle_rule(), "Status": "Disabled"}]}
    )
    result = setup_bucket(s3, name, retention_days=365)
    retention = result["object_lock"]["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 365)
    assert result["lifecycle"] == [other, lifecycle_rule()]


def test_setup_bucket_refuses_a_bucket_without_object_lock(s3: Any) -> None:
    name = unique_name("audit-plain")
    s3.create_bucket(Bucket=name)
    with pytest.raises(AuditBucketUnlocked) as caught:
        setup_bucket(s3, name)
    assert caught.value.code == "audit_bucket_unlocked" and "Object Lock" in caught.value.detail
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    with pytest.raises(AuditBucketUnlocked):
        setup_bucket(s3, name)  # versioning alone is not Object Lock
