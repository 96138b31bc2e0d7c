"""``verify_log`` / ``tombola audit verify``: any changed byte, removed, reordered or inserted entry
or checkpoint is caught, and the first failure is named. Runs on SQLite and PostgreSQL; the log
is tampered with the way an attacker with database access would (plain SQL)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from gli_core.audit.entry import AuditEvent
from gli_core.audit.log import AuditLog
from gli_core.audit.note import Checkpoint, NoteVerifier, SoftwareNoteSigner, checkpoint_body, sign_note
from gli_core.audit.shipper import Shipper, read_archive
from gli_core.audit.store import LocalSegmentStore
from gli_core.audit.verify import VerifyReport, verify_checkpoint_chain, verify_chunks, verify_log

ORIGIN = "tombola.local/audit/verify-test"
SIGNER = SoftwareNoteSigner.from_seed(ORIGIN, bytes(range(32)))
KEYS = [NoteVerifier.from_key(SIGNER)]


@pytest.fixture
def engine(core_engine: Engine) -> Engine:
    return core_engine


def _build(engine: Engine, entries: int = 40, every: int = 10) -> AuditLog:
    log = AuditLog(engine, SIGNER, origin=ORIGIN)
    for start in range(0, entries, every):
        log.append_now(
            [
                AuditEvent(type="grant.issued", actor="service:test", payload={"n": i}, tenant=f"org-{i % 2}")
                for i in range(start, start + every)
            ]
        )
        log.checkpoint("test")
    return log


def _verify(log: AuditLog, keys: list[NoteVerifier] = KEYS) -> VerifyReport:
    notes = [c.note for c in log.checkpoints()]
    report = verify_chunks(log.iter_chunks(batch=7), notes, keys, origin=log.origin)
    by_entry = verify_log(((d, h) for _, d, h in log.iter_entries()), notes, keys, origin=log.origin)
    assert (report.failure, report.entries) == (by_entry.failure, by_entry.entries)
    if report.ok:
        report.failure = verify_checkpoint_chain(notes, keys, log.consistency_proof)
    return report


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _data(engine: Engine, index: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT data FROM core_audit_entry WHERE idx = :i"), {"i": index}).scalar_one())


def _rewrite(engine: Engine, index: int, data: str, *, fix_hash: bool = True) -> None:
    """Replace an entry's bytes, recomputing its stored leaf hash as a careful attacker would."""
    leaf = hashlib.sha256(b"\x00" + data.encode()).digest()
    if fix_hash:
        _sql(engine, "UPDATE core_audit_entry SET data = :d, leaf_hash = :h WHERE idx = :i", d=data, h=leaf, i=index)
    else:
        _sql(engine, "UPDATE core_audit_entry SET data = :d WHERE idx = :i", d=data, i=index)


def test_an_untouched_log_verifies(engine: Engine) -> None:
    report = _verify(_build(engine))
    assert report.ok, report.failure
    assert (report.entries, report.checkpoints, report.latest_size, report.uncovered) == (40, 4, 40, 0)


def test_a_changed_entry_is_named_by_the_checkpoint_range(engine: Engine) -> None:
    log = _build(engine)
    _rewrite(engine, 23, _data(engine, 23).replace('"n":23', '"n":24'))
    failure = _verify(log).failure
    assert failure is not None and failure.kind == "checkpoint" and failure.size == 30
    assert "20..29" in failure.reason


def test_a_changed_entry_without_its_hash_is_named_exactly(engine: Engine) -> None:
    log = _build(engine)
    _rewrite(engine, 7, _data(engine, 7).replace("org-1", "org-0"), fix_hash=False)
    failure = _verify(log).failure
    assert failure is not None and (failure.kind, failure.index) == ("entry", 7)


def test_a_removed_entry_is_named(engine: Engine) -> None:
    log = _build(engine)
    _sql(engine, "DELETE FROM core_audit_entry WHERE idx = 12")
    failure = _verify(log).failure
    assert failure is not None and (failure.kind, failure.index) == ("entry", 12)
    assert "removed, inserted or reordered" in failure.reason


def test_removed_entries_at_the_end_are_caught_by_the_last_checkpoint(engine: Engine) -> None:
    log = _build(engine)
    _sql(engine, "DELETE FROM core_audit_entry WHERE idx >= 35")
    failure = _verify(log).failure
    assert failure is not None and (failure.kind, failure.size) == ("checkpoint", 40)
    assert "35..39 were removed" in failure.reason


def test_reordered_entries_are_named(engine: Engine) -> None:
    log = _build(engine)
    a, b = _data(engine, 5), _data(engine, 6)
    _rewrite(engine, 5, b)
    _rewrite(engine, 6, a)
    failure = _verify(log).failure
    assert failure is not None and (failure.kind, failure.index) == ("entry", 5)


def test_an_inserted_entry_is_named(engine: Engine) -> None:
    log = _build(engine)
    forged = _data(engine, 15).replace('"index":15', '"index":16')
    for index in range(39, 15, -1):  # shift the tail up by one, then put the forged entry at 16
        _sql(engine, "UPDATE core_audit_entry SET idx = idx + 1 WHERE idx = :i", i=index)
    _sql(
        engine,
        "INSERT INTO core_audit_entry (idx, time_ms, actor, tenant, type, data, leaf_hash) "
        "VALUES (16, 0, 'service:x', '', 'grant.issued', :d, :h)",
        d=forged,
        h=hashlib.sha256(b"\x00" + forged.encode()).digest(),
    )
    failure = _verify(log).failure
    assert failure is not None and failure.kind == "entry" and failure.index == 17


def test_a_changed_checkpoint_is_named(engine: Engine) -> None:
    log = _build(engine)
    with engine.connect() as conn:
        note = str(conn.execute(text("SELECT note FROM core_audit_checkpoint WHERE size = 20")).scalar_one())
    _sql(engine, "UPDATE core_audit_checkpoint SET note = :n WHERE size = 20", n=note.replace("\n20\n", "\n21\n"))
    failure = _verify(log).failure
    assert failure is not None and failure.kind == "checkpoint" and failure.size == 21


def test_a_checkpoint_signed_by_another_key_is_refused(engine: Engine) -> None:
    log = _build(engine)
    size, root = log.head()
    other = SoftwareNoteSigner.generate(ORIGIN)
    forged = sign_note(checkpoint_body(Checkpoint(ORIGIN, size, root, ())), [other])
    report = verify_log(((d, h) for _, d, h in log.iter_entries()), [forged], KEYS, origin=ORIGIN)
    assert report.failure is not None and "audit_note_unverified" in report.failure.reason


def test_a_fork_is_caught(engine: Engine) -> None:
    log = _build(engine)
    size, _ = log.head()
    fork = sign_note(checkpoint_body(Checkpoint(ORIGIN, size, bytes(32), ())), [SIGNER])
    notes = [c.note for c in log.checkpoints()] + [fork]
    report = verify_log(((d, h) for _, d, h in log.iter_entries()), notes, KEYS, origin=ORIGIN)
    assert report.failure is not None and "forked" in report.failure.reason


def test_tampered_proof_nodes_break_the_consistency_chain(engine: Engine) -> None:
    log = AuditLog(engine, SIGNER, origin=ORIGIN)
    for start in range(0, 600, 200):
        log.append_now(
            [AuditEvent(type="rng.call", actor="service:t", payload={"n": i}) for i in range(start, start + 200)]
        )
        log.checkpoint("t")
    assert _verify(log).ok
    _sql(engine, 'UPDATE core_audit_node SET hash = :h WHERE level = 8 AND "index" = 0', h=bytes(32))
    failure = _verify(log).failure
    assert failure is not None and failure.kind == "checkpoint" and "not consistent" in failure.reason


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=st.integers(0, 39), position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_any_flipped_bit_of_any_entry_is_caught(engine: Engine, entry: int, position: int, bit: int) -> None:
    with engine.begin() as conn:
        for table in ("core_audit_entry", "core_audit_node", "core_audit_checkpoint"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE core_audit_head SET size = 0, frontier = ''"))
    log = _build(engine)
    original = _data(engine, entry).encode()
    changed = bytearray(original)
    changed[position % len(changed)] ^= 1 << bit
    try:
        _rewrite(engine, entry, changed.decode())
    except UnicodeDecodeError:
        return  # not storable as text: the column cannot hold it
    assert not _verify(log).ok


def test_an_archive_verifies_and_a_changed_segment_byte_is_caught(engine: Engine, tmp_path: Path) -> None:
    log = _build(engine, entries=64, every=16)
    store = LocalSegmentStore(tmp_path / "audit")
    report = Shipper(log, [store], log, segment_size=16).ship_once()
    assert report.ok
    entries, notes = read_archive(store)
    assert verify_log(((e, None) for e in entries), [n for _, n in notes], KEYS, origin=ORIGIN).ok
    segment = tmp_path / "audit" / "segments" / f"{16:012d}-{32:012d}.jsonl"
    os.chmod(segment, 0o644)
    segment.write_bytes(segment.read_bytes().replace(b'"n":20', b'"n":21'))
    try:
        entries, notes = read_archive(store)
        report_after = verify_log(((e, None) for e in entries), [n for _, n in notes], KEYS, origin=ORIGIN)
        assert not report_after.ok
    except Exception as exc:  # the store's own digest check may refuse the segment first
        assert getattr(exc, "code", "") == "audit_archive_invalid"


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6, unique=True),
    extra=st.integers(0, 50),
    chunk=st.sampled_from([1, 7, 1024, 5000]),
)
def test_chunked_verification_agrees_with_the_reference_for_any_checkpoints(
    sizes: list[int], extra: int, chunk: int
) -> None:
    """Pure: entries in memory, checkpoints at arbitrary sizes, any chunking (blocks of 1,024
    leaves pushed whole); the report is the entry-by-entry one, and a changed root is caught."""
    from gli_core import merkle
    from gli_core.audit.entry import entry_bytes

    total = max(sizes) + extra
    datas = [entry_bytes(i, i, AuditEvent(type="rng.call", actor="service:t", payload={"n": i})) for i in range(total)]
    leaves = merkle.leaf_hashes(datas)
    notes = [sign_note(checkpoint_body(Checkpoint(ORIGIN, n, merkle.root(leaves[:n]), ())), [SIGNER]) for n in sizes]
    chunks = [(datas[i : i + chunk], [None] * len(datas[i : i + chunk])) for i in range(0, total, chunk)]
    report = verify_chunks(chunks, notes, KEYS, origin=ORIGIN)
    assert report.ok and report.entries == total and report.latest_size == max(sizes), report.failure
    forged = sign_note(checkpoint_body(Checkpoint(ORIGIN, sizes[0], bytes(32), ())), [SIGNER])
    bad = verify_chunks(chunks, [forged], KEYS, origin=ORIGIN)
    assert bad.failure is not None and bad.failure.size == sizes[0]
