"""The audit log in the core database: numbering, Merkle tree, proofs, outbox dedupe, I7.

Every test runs on SQLite and PostgreSQL (``db_backend``). The log's roots and proofs are checked
against ``gli_core.merkle`` (itself checked against every RFC 9162 vector) over the same leaves,
and the proof generator against the shared vectors directly.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, text

from gli_core import merkle
from gli_core.audit.entry import AuditEntryInvalid, AuditEvent, parse_entry
from gli_core.audit.log import NODE_MIN_LEVEL, AuditLog, AuditRangeInvalid, consistency_path, inclusion_path
from gli_core.models import RngCall

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162-merkle"
REFERENCE = json.loads((VECTORS / "leaves.json").read_text())
REF_HASHES = merkle.leaf_hashes(bytes.fromhex(x) for x in REFERENCE["leaves"])


def _event(i: int, **kw: Any) -> AuditEvent:
    return AuditEvent(type="rng.call", actor="service:test", payload={"i": i}, **kw)


@pytest.fixture
def engine(core_engine: Engine) -> Engine:
    return core_engine


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    return AuditLog(engine, origin="tombola.test/audit/unit")


def _leaves(log: AuditLog) -> list[bytes]:
    return [merkle.leaf_hash(d) for d in log.entry_bytes(0, log.size())]


def test_entries_are_numbered_and_hashed_as_documented(log: AuditLog) -> None:
    assert log.append_now([_event(0), _event(1)]) == [0, 1]
    assert log.append_now([_event(2, tenant="org_1")]) == [2]
    data = log.entry_bytes(0, 3)
    entries = [parse_entry(d) for d in data]
    assert [e["index"] for e in entries] == [0, 1, 2]
    assert entries[2]["tenant"] == "org_1" and entries[2]["type"] == "rng.call"
    # the leaf data is RFC 8785 canonical JSON: sorted keys, no spaces
    assert data[0].startswith(b'{"actor":"service:test","index":0,"payload":{"i":0},"tenant":"","time_ms":')
    size, root = log.head()
    assert size == 3 and root == merkle.root(merkle.leaf_hashes(data))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=8),
    picks=st.tuples(*[st.integers(0, 10**9)] * 4),
)
def test_root_and_proofs_match_the_reference(log: AuditLog, batches: list[int], picks: tuple[int, ...]) -> None:
    # the log keeps growing across examples (function-scoped fixture): positions are drawn as
    # numbers and reduced modulo the size, so data generation never depends on that state
    for n in batches:
        log.append_now([_event(i) for i in range(n)])
    leaves = _leaves(log)
    size = len(leaves)
    assert log.head() == (size, merkle.root(leaves))
    index = picks[0] % size
    at = index + 1 + picks[1] % (size - index)
    proof = log.inclusion_proof(index, at)
    assert proof == merkle.inclusion_proof(leaves[:at], index)
    merkle.verify_inclusion(leaves[index], index, at, proof, merkle.root(leaves[:at]))
    first = 1 + picks[2] % size
    second = first + picks[3] % (size - first + 1)
    cproof = log.consistency_proof(first, second)
    assert cproof == (merkle.consistency_proof(leaves[:second], first) if first < second else [])
    merkle.verify_consistency(first, second, merkle.root(leaves[:first]), merkle.root(leaves[:second]), cproof)


def test_stored_subtree_nodes_serve_large_proofs(log: AuditLog, engine: Engine) -> None:
    n = (1 << NODE_MIN_LEVEL) * 3 + 17
    for start in range(0, n, 200):
        log.append_now([_event(i) for i in range(start, min(n, start + 200))])
    with engine.connect() as conn:
        nodes = conn.execute(text("SELECT level, " + '"index"' + " FROM core_audit_node ORDER BY 1, 2")).all()
    assert [tuple(r) for r in nodes] == [(8, 0), (8, 1), (8, 2), (9, 0)]
    leaves = _leaves(log)
    for index in (0, 255, 256, 700, n - 1):
        assert log.inclusion_proof(index, n) == merkle.inclusion_proof(leaves, index)
    assert log.consistency_proof(300, n) == merkle.consistency_proof(leaves, 300)
    assert log.root_at(512) == merkle.root(leaves[:512])


def test_proof_requests_outside_the_log_are_refused(log: AuditLog) -> None:
    log.append_now([_event(i) for i in range(5)])
    for bad in ((5, 5), (0, 6), (-1, 3)):
        with pytest.raises(AuditRangeInvalid):
            log.inclusion_proof(*bad)
    with pytest.raises(AuditRangeInvalid):
        log.consistency_proof(0, 3)
    with pytest.raises(AuditRangeInvalid):
        log.consistency_proof(4, 9)


def test_the_generator_reproduces_every_valid_rfc9162_vector() -> None:
    def mth(lo: int, hi: int) -> bytes:
        return merkle.root(REF_HASHES[lo:hi])

    checked = 0
    for path in sorted((VECTORS / "inclusion").rglob("*.json")):
        case = json.loads(path.read_text())
        if "happy" not in str(path):
            continue
        expected = [base64.b64decode(h) for h in case["proof"] or []]
        assert inclusion_path(case["leafIdx"], case["treeSize"], mth) == expected, path
        checked += 1
    for path in sorted((VECTORS / "consistency").rglob("*.json")):
        case = json.loads(path.read_text())
        if "happy" not in str(path):
            continue
        expected = [base64.b64decode(h) for h in case["proof"] or []]
        assert consistency_path(case["size1"], case["size2"], mth) == expected, path
        checked += 1
    assert checked == len(list(VECTORS.rglob("happy-path.json"))) > 0


def test_outbox_events_are_appended_once(log: AuditLog) -> None:
    assert log.append_now([_event(0, source_id="ob-1"), _event(1, source_id="ob-2")]) == [0, 1]
    # drained again after a crash between the core commit and the outbox delete
    assert log.append_now([_event(0, source_id="ob-1"), _event(1, source_id="ob-2"), _event(2, source_id="ob-3")]) == [
        2
    ]
    assert log.append_now([_event(3, source_id="ob-4"), _event(3, source_id="ob-4")]) == [3]
    assert log.size() == 4


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (AuditEvent(type="nope.nope", actor="service:x"), "unknown audit event type"),
        (AuditEvent(type="rng.call", actor="root"), "actor"),
        (AuditEvent(type="rng.call", actor="service:x", payload={"card": {"PAN": "x"}}), "card data or a secret"),
        (AuditEvent(type="rng.call", actor="service:x", payload={"ref": "4111 1111 1111 1111"}), "card number"),
        (AuditEvent(type="rng.call", actor="service:x", payload={"password": "x"}), "secret"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_appended(log: AuditLog, event: AuditEvent, words: str) -> None:
    log.append_now([_event(0)])
    with pytest.raises(AuditEntryInvalid, match=words) as info:
        log.append_now([_event(1), event])
    assert info.value.code == "audit_entry_invalid"
    assert log.size() == 1 and len(log.entry_bytes(0, 10)) == 1


def test_a_terminal_reference_that_is_not_a_card_number_is_kept(log: AuditLog) -> None:
    log.append_now([AuditEvent(type="rng.call", actor="service:x", payload={"ref": "TRM-4111111111111112"})])
    assert log.size() == 1


RNG = RngCall.__table__  # type: ignore[attr-defined]


def _effect_and_entry(log: AuditLog, engine: Engine, call_id: str, fail_at: str | None) -> None:
    with engine.begin() as conn:
        if fail_at == "before-effect":
            raise RuntimeError("crash")
        conn.execute(insert(RNG).values(id=call_id, purpose="t", request="", output_sha256="", at_ms=1))
        if fail_at == "between":
            raise RuntimeError("crash")
        log.append(conn, [AuditEvent(type="rng.call", actor="service:t", payload={"request_id": call_id})])
        if fail_at == "before-commit":
            raise RuntimeError("crash")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from([None, "before-effect", "between", "before-commit"]), min_size=1, max_size=12))
def test_i7_no_effect_without_its_entry_and_no_entry_without_its_effect(
    log: AuditLog, engine: Engine, plan: list[str | None]
) -> None:
    with engine.begin() as conn:
        conn.execute(RNG.delete())
    start = log.size()
    for n, fail_at in enumerate(plan):
        try:
            _effect_and_entry(log, engine, f"{start}-{n}", fail_at)
        except RuntimeError:
            pass
    with engine.connect() as conn:
        effects = set(conn.execute(select(RNG.c.id)).scalars())
    entries = {parse_entry(d)["payload"]["request_id"] for d in log.entry_bytes(start, log.size())}
    assert effects == entries
    assert len(effects) == plan.count(None)
    assert log.head()[1] == merkle.root(_leaves(log))


@pytest.mark.parametrize(
    "value",
    [
        "01a212ea-c28f-7932-99b3-df15c2a0ee6e",
        "12345678-1234-1234-1234-123456789012",
        "41111111111111112222",
        "sale 0190-4111-1111-1111-1111-99",
    ],
)
def test_ids_that_contain_digit_runs_are_not_taken_for_card_numbers(log: AuditLog, value: str) -> None:
    log.append_now([AuditEvent(type="rng.call", actor="service:x", payload={"id": value})])
    assert log.size() == 1


@pytest.mark.parametrize("value", ["4111111111111111", "card 4111 1111 1111 1111 used", "5500-0000-0000-0004"])
def test_card_numbers_are_refused_wherever_they_hide(log: AuditLog, value: str) -> None:
    with pytest.raises(AuditEntryInvalid, match="card number"):
        log.append_now([AuditEvent(type="rng.call", actor="service:x", payload={"note": [{"x": value}]})])


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=6), _json, max_size=5), time_ms=st.integers(0, 2**53 - 1))
def test_entry_bytes_are_rfc8785_whichever_encoder_runs(payload: dict[str, Any], time_ms: int) -> None:
    import rfc8785

    from gli_core.audit.entry import entry_bytes, entry_dict

    event = AuditEvent(type="rng.call", actor="service:x", payload=payload, tenant="org-1")
    try:
        event.check()
    except AuditEntryInvalid:
        return  # a forbidden key or a card-like string: refused, never encoded
    assert entry_bytes(7, time_ms, event) == rfc8785.dumps(entry_dict(7, time_ms, event))


@pytest.mark.parametrize("value", ["anchor 1795613704720 was never issued", "t=1795613704720123456", "1234567890128"])
def test_timestamps_and_counters_are_not_card_numbers(log: AuditLog, value: str) -> None:
    log.append_now([AuditEvent(type="rng.call", actor="service:x", payload={"detail": value})])
    assert log.size() == 1
