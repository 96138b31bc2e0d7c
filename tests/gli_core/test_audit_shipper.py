"""Shipping the audit log to write-once archives: exactly-once effect through cuts and retries.

The database-backed ``AuditSource`` and ``ShipmentLedger`` come from the audit log itself; here
they are in memory (``MemorySource``, ``MemoryLedger``), which is all the shipper relies on.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ConnectionClosedError

from gli_core.audit.shipper import (
    AuditSource,
    RetryPolicy,
    ShipmentLedger,
    Shipper,
    checkpoint_key,
    parse_checkpoint_key,
    parse_segment_key,
    read_archive,
    seal,
    segment_key,
    unseal,
)
from gli_core.audit.store import (
    AuditArchiveInvalid,
    AuditStoreConflict,
    AuditStoreUnavailable,
    LocalSegmentStore,
    S3SegmentStore,
    setup_bucket,
)
from tests.support.moto import MotoServer, TcpCut, unique_name

FAST = RetryPolicy(attempts=3, initial_s=0.001, max_s=0.005)


def entry(i: int) -> bytes:
    return orjson.dumps({"v": 1, "index": i, "type": "test.event", "payload": {"n": i, "name": "Zoë"}})


def note(size: int) -> str:
    return f"tombola.test/audit\n{size}\nroot{size:04d}=\n\n— tombola.test/audit sig{size}\n"


class MemorySource:
    def __init__(self, size: int = 0, checkpoint_every: int = 4) -> None:
        self.entries: list[bytes] = []
        self.checkpoints: dict[int, str] = {}
        self.checkpoint_every = checkpoint_every
        self.reads: list[tuple[int, int]] = []
        self.checkpoint_queries: list[int] = []
        self.grow(size)

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.entries.append(entry(len(self.entries)))
            if len(self.entries) % self.checkpoint_every == 0:
                self.checkpoints[len(self.entries)] = note(len(self.entries))

    def size(self) -> int:
        return len(self.entries)

    def entry_bytes(self, start: int, end: int) -> list[bytes]:
        self.reads.append((start, end))
        return self.entries[start:end]

    def checkpoint_notes(self, after_size: int = 0) -> list[tuple[int, str]]:
        self.checkpoint_queries.append(after_size)
        return sorted((size, text) for size, text in self.checkpoints.items() if size > after_size)


class MemoryLedger:
    def __init__(self) -> None:
        self.marks: dict[str, dict[str, tuple[str, int]]] = {}
        self.fail_next = 0

    def shipped_keys(self, store: str) -> set[str]:
        return set(self.marks.get(store, {}))

    def mark_shipped(self, store: str, key: str, sha256: str, nbytes: int) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database is gone")
        self.marks.setdefault(store, {})[key] = (sha256, nbytes)


class FlakyStore:
    """A store in front of another that fails (``AuditStoreUnavailable``) on command."""

    def __init__(self, inner: LocalSegmentStore, name: str = "flaky") -> None:
        self.inner = inner
        self.name = name
        self.down = False
        self.fail_calls = 0  # the next N calls fail
        self.puts: list[str] = []

    def _maybe_fail(self) -> None:
        if self.down:
            raise AuditStoreUnavailable("connection refused")
        if self.fail_calls:
            self.fail_calls -= 1
            raise AuditStoreUnavailable("connection reset")

    def put(self, key: str, data: bytes) -> None:
        self._maybe_fail()
        self.puts.append(key)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self._maybe_fail()
        return self.inner.get(key)

    def digest(self, key: str) -> str | None:
        self._maybe_fail()
        return self.inner.digest(key)

    def keys(self, prefix: str) -> list[str]:
        self._maybe_fail()
        return self.inner.keys(prefix)


def expected_keys(source: MemorySource, segment_size: int) -> set[str]:
    full = source.size() // segment_size
    segments = {segment_key(k * segment_size, (k + 1) * segment_size) for k in range(full)}
    return segments | {checkpoint_key(size) for size in source.checkpoints}


def test_protocols_are_satisfied_by_the_test_doubles() -> None:
    source: AuditSource = MemorySource()
    ledger: ShipmentLedger = MemoryLedger()
    assert source.size() == 0 and ledger.shipped_keys("x") == set()


def test_names_and_sealing() -> None:
    assert segment_key(4096, 8192) == "segments/000000004096-000000008192.jsonl"
    assert checkpoint_key(12) == "checkpoints/000000000012.note"
    assert parse_segment_key("segments/000000004096-000000008192.jsonl") == (4096, 8192)
    assert parse_checkpoint_key("checkpoints/000000000012.note") == 12
    for bad in ("segments/4096-8192.jsonl", "segments/000000000008-000000000004.jsonl", "segments/x"):
        with pytest.raises(AuditArchiveInvalid):
            parse_segment_key(bad)
    with pytest.raises(ValueError):
        segment_key(4, 4)
    assert seal([b"{}", b'{"a":1}']) == b'{}\n{"a":1}\n'
    assert unseal(seal([b"{}", b'{"a":1}'])) == [b"{}", b'{"a":1}']
    for bad_entry in (b'{"a":\n1}', b""):
        with pytest.raises(ValueError):
            seal([bad_entry])
    with pytest.raises(AuditArchiveInvalid):
        unseal(b"{}\n{}")
    with pytest.raises(ValueError, match="power of two"):
        Shipper(MemorySource(), [], MemoryLedger(), segment_size=12)


def test_ships_full_segments_and_checkpoints_in_order_segment_by_segment(tmp_path: Path) -> None:
    source = MemorySource(14)
    store = LocalSegmentStore(tmp_path)
    ledger = MemoryLedger()
    shipper = Shipper(source, [store], ledger, segment_size=4, retry=FAST)

    report = shipper.ship_once()
    assert report.ok and report.tree_size == 14
    assert report["local"].shipped == [
        segment_key(0, 4),
        segment_key(4, 8),
        segment_key(8, 12),
        checkpoint_key(4),
        checkpoint_key(8),
        checkpoint_key(12),
    ]
    assert source.reads == [(0, 4), (4, 8), (8, 12)]  # one segment at a time, 12..13 is not sealed yet
    assert set(ledger.marks["local"]) == expected_keys(source, 4)
    sha, nbytes = ledger.marks["local"][segment_key(0, 4)]
    data = seal(source.entries[0:4])
    assert (sha, nbytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.get(segment_key(0, 4)) == data
    assert store.get(checkpoint_key(8)) == note(8).encode()

    source.reads.clear()
    again = shipper.ship_once()
    assert again.ok and again["local"].shipped == [] and again["local"].already_present == []
    assert source.reads == []  # nothing read again

    source.grow(3)  # 17 entries: the fourth segment and checkpoint 16
    third = shipper.ship_once()
    assert third["local"].shipped == [segment_key(12, 16), checkpoint_key(16)]
    assert source.reads == [(12, 16)]
    assert source.checkpoint_queries[-1] == 12  # only checkpoints after the shipped ones are asked for

    entries, checkpoints = read_archive(store)
    assert list(entries) == source.entries[:16]
    assert checkpoints == sorted(source.checkpoints.items())


def test_a_fresh_shipper_trusts_the_ledger(tmp_path: Path) -> None:
    source = MemorySource(8)
    ledger = MemoryLedger()
    store = LocalSegmentStore(tmp_path)
    Shipper(source, [store], ledger, segment_size=4, retry=FAST).ship_once()
    source.reads.clear()
    report = Shipper(source, [store], ledger, segment_size=4, retry=FAST).ship_once()
    assert report.ok and report["local"].shipped == [] and source.reads == []


def test_an_object_already_in_the_store_is_marked_not_sent_again(tmp_path: Path) -> None:
    source = MemorySource(8)
    inner = LocalSegmentStore(tmp_path)
    inner.put(segment_key(0, 4), seal(source.entries[:4]))  # a put whose answer was lost
    store = FlakyStore(inner)
    ledger = MemoryLedger()
    report = Shipper(source, [store], ledger, segment_size=4, retry=FAST).ship_once()
    assert report["flaky"].already_present == [segment_key(0, 4)]
    assert segment_key(0, 4) not in store.puts
    assert set(ledger.marks["flaky"]) == expected_keys(source, 4)


def test_a_lost_ledger_write_does_not_send_twice(tmp_path: Path) -> None:
    source = MemorySource(8)
    store = FlakyStore(LocalSegmentStore(tmp_path))
    ledger = MemoryLedger()
    shipper = Shipper(source, [store], ledger, segment_size=4, retry=FAST)
    ledger.fail_next = 1
    with pytest.raises(RuntimeError, match="database is gone"):
        shipper.ship_once()
    assert store.puts == [segment_key(0, 4)]
    report = shipper.ship_once()
    assert report["flaky"].already_present == [segment_key(0, 4)]
    assert store.puts.count(segment_key(0, 4)) == 1
    assert set(ledger.marks["flaky"]) == expected_keys(source, 4)


def test_a_conflict_is_reported_and_never_overwritten(tmp_path: Path) -> None:
    source = MemorySource(12)
    inner = LocalSegmentStore(tmp_path)
    inner.put(segment_key(4, 8), b"something else\n")
    ledger = MemoryLedger()
    report = Shipper(source, [inner], ledger, segment_size=4, retry=FAST).ship_once()
    assert not report.ok
    [conflict] = report.conflicts
    assert conflict.key == segment_key(4, 8) and conflict.code == AuditStoreConflict.code
    assert segment_key(4, 8) not in ledger.marks["local"]
    assert {segment_key(0, 4), segment_key(8, 12), checkpoint_key(12)} <= set(ledger.marks["local"])  # the rest goes on
    assert inner.get(segment_key(4, 8)) == b"something else\n"


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    source = MemorySource(8)
    store = FlakyStore(LocalSegmentStore(tmp_path))
    store.fail_calls = 2  # two failures, the third attempt works
    ledger = MemoryLedger()
    report = Shipper(source, [store], ledger, segment_size=4, retry=FAST).ship_once()
    assert report.ok and len(report["flaky"].shipped) == 4


def test_an_unavailable_store_leaves_the_rest_pending_and_others_unaffected(tmp_path: Path) -> None:
    source = MemorySource(12)
    local = LocalSegmentStore(tmp_path / "local")
    flaky = FlakyStore(LocalSegmentStore(tmp_path / "remote"))
    ledger = MemoryLedger()
    shipper = Shipper(source, [local, flaky], ledger, segment_size=4, retry=FAST)
    flaky.down = True
    report = shipper.ship_once()
    assert report["local"].ok and len(report["local"].shipped) == 6
    assert report["flaky"].shipped == [] and len(report["flaky"].pending) == 6
    assert [e.code for e in report["flaky"].errors] == ["audit_store_unavailable"]  # gave up after one key
    assert source.reads == [(0, 4), (4, 8), (8, 12)]  # read once, for the store that is up
    assert "flaky" not in ledger.marks

    flaky.down = False
    source.reads.clear()
    report = shipper.ship_once()
    assert report.ok and len(report["flaky"].shipped) == 6 and report["local"].shipped == []
    assert source.reads == [(0, 4), (4, 8), (8, 12)]
    assert ledger.marks["flaky"] == ledger.marks["local"]


def test_run_in_background(tmp_path: Path) -> None:
    source = MemorySource(8)
    ledger = MemoryLedger()
    store = LocalSegmentStore(tmp_path)
    handle = Shipper(source, [store], ledger, segment_size=4, retry=FAST).run_in_background(0.02)
    try:
        deadline = time.monotonic() + 5
        while set(ledger.marks.get("local", {})) != expected_keys(source, 4):
            assert time.monotonic() < deadline, "the background shipper did not ship"
            time.sleep(0.01)
        source.grow(4)
        handle.wake()
        while set(ledger.marks["local"]) != expected_keys(source, 4):
            assert time.monotonic() < deadline, "the background shipper did not ship the new segment"
            time.sleep(0.01)
    finally:
        handle.stop(timeout_s=5)
    assert not handle.alive and handle.last_error is None and handle.passes >= 2
    assert threading.active_count() >= 1


# ------------------------------------------------------------------------------------------
# read_archive refuses archives that do not add up


def test_read_archive_refuses_a_gap(tmp_path: Path) -> None:
    source = MemorySource(12)
    store = LocalSegmentStore(tmp_path)
    store.put(segment_key(0, 4), seal(source.entries[0:4]))
    store.put(segment_key(8, 12), seal(source.entries[8:12]))
    with pytest.raises(AuditArchiveInvalid, match=r"entries 4\.\.7") as caught:
        read_archive(store)
    assert caught.value.extra == {"missing_start": 4, "missing_end": 8}


def test_read_archive_refuses_a_missing_start_and_an_overlap(tmp_path: Path) -> None:
    source = MemorySource(12)
    store = LocalSegmentStore(tmp_path / "a")
    store.put(segment_key(4, 8), seal(source.entries[4:8]))
    with pytest.raises(AuditArchiveInvalid, match=r"entries 0\.\.3"):
        read_archive(store)
    store.put(segment_key(0, 4), seal(source.entries[0:4]))
    store.put(segment_key(2, 6), seal(source.entries[2:6]))
    with pytest.raises(AuditArchiveInvalid, match="overlaps"):
        read_archive(store)


def test_read_archive_checks_line_counts_and_names(tmp_path: Path) -> None:
    source = MemorySource(8)
    store = LocalSegmentStore(tmp_path / "a")
    store.put(segment_key(0, 4), seal(source.entries[0:4]))
    store.put(segment_key(4, 8), seal(source.entries[4:7]))  # one entry short
    entries, _ = read_archive(store)
    assert next(entries) == source.entries[0]
    with pytest.raises(AuditArchiveInvalid, match="holds 3 entries, its name says 4"):
        list(entries)
    odd = LocalSegmentStore(tmp_path / "b")
    odd.put("segments/stray.jsonl", b"x\n")
    with pytest.raises(AuditArchiveInvalid, match="not a segment name"):
        read_archive(odd)


# ------------------------------------------------------------------------------------------
# S3 through a link that is cut in the middle of a shipment


def test_cut_link_mid_shipment_loses_nothing_and_sends_nothing_twice(moto_server: MotoServer) -> None:
    bucket = unique_name("audit-cut")
    admin = moto_server.client("s3")
    setup_bucket(admin, bucket)
    source = MemorySource(10 * 4 + 2, checkpoint_every=4)  # 10 segments of 4 + 2 unsealed, 10 checkpoints
    ledger = MemoryLedger()
    port = int(moto_server.endpoint.rsplit(":", 1)[1])

    with TcpCut(port) as link:
        client = moto_server.client(
            "s3",
            endpoint=link.endpoint,
            connect_timeout=0.5,
            read_timeout=1.0,
            retries={"max_attempts": 1, "mode": "standard"},  # no botocore retries: the shipper's own are tested
        )
        store = S3SegmentStore(client, bucket)
        shipper = Shipper(source, [store], ledger, segment_size=4, retry=FAST)
        puts: list[str] = []

        # 1. the link is cut just before the 4th PutObject goes out
        def cut_before_send(request: Any, **_: Any) -> None:
            puts.append(request.url)
            if len(puts) == 4:
                link.cut()

        client.meta.events.register("before-send.s3.PutObject", cut_before_send)
        first = shipper.ship_once()
        client.meta.events.unregister("before-send.s3.PutObject", cut_before_send)
        assert len(first[store.name].shipped) == 3
        assert first[store.name].errors[0].code == "audit_store_unavailable"
        assert len(first[store.name].pending) == 20 - 3
        assert len(ledger.marks[store.name]) == 3
        link.restore()

        # 2. the 3rd PutObject of the next pass lands in S3, but its answer is lost with the link
        landed: list[str] = []

        def lose_answer(context: Any, **_: Any) -> None:
            landed.append("put")
            if len(landed) == 3:
                link.cut()
                raise ConnectionClosedError(endpoint_url=link.endpoint)

        client.meta.events.register("after-call.s3.PutObject", lose_answer)
        second = shipper.ship_once()
        client.meta.events.unregister("after-call.s3.PutObject", lose_answer)
        assert len(second[store.name].shipped) == 2 and second[store.name].pending
        lost = second[store.name].pending[0]
        assert lost not in ledger.marks[store.name]
        assert len(versions_of(admin, bucket, lost)) == 1  # it did land
        link.restore()

        # 3. the link is back: the landed object is recognised by its digest, the rest is sent
        third = shipper.ship_once()
        assert third.ok
        assert third[store.name].already_present == [lost]
        assert len(third[store.name].shipped) == 20 - 3 - 2 - 1

    keys = expected_keys(source, 4)
    assert set(ledger.marks[store.name]) == keys and len(keys) == 20
    listing = admin.list_object_versions(Bucket=bucket)
    per_key: dict[str, int] = {}
    for version in listing.get("Versions", []):
        per_key[version["Key"]] = per_key.get(version["Key"], 0) + 1
    assert per_key == dict.fromkeys(keys, 1)  # every object exactly once
    assert not listing.get("DeleteMarkers")
    for key, (sha, nbytes) in ledger.marks[store.name].items():
        head = admin.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == sha and head["ContentLength"] == nbytes
        assert head["ObjectLockMode"] == "COMPLIANCE"

    archive_store = S3SegmentStore(admin, bucket)
    entries, checkpoints = read_archive(archive_store)
    assert list(entries) == source.entries[:40]
    assert checkpoints == sorted(source.checkpoints.items())


def versions_of(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in listing.get("Versions", []) if v["Key"] == key]
