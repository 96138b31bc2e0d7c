"""Test vectors of the audit log (``tests/vectors/audit-log/``): entry bytes, leaf hashes, roots,
proofs and a signed checkpoint, for an independent implementation of ``docs/audit-log.md``.

The vectors are recomputed from their inputs on every run and compared with the stored files
(a change of encoding shows as a failing test, not as silently new vectors). To rewrite them
after a deliberate change: ``.venv/bin/python -m tests.gli_core.test_audit_vectors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gli_core import merkle
from gli_core.audit.entry import AuditEvent, entry_bytes, parse_entry
from gli_core.audit.log import consistency_path, inclusion_path
from gli_core.audit.note import Checkpoint, NoteVerifier, SoftwareNoteSigner, checkpoint_body, open_note, sign_note
from gli_core.audit.verify import verify_log

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "audit-log"
ORIGIN = "tombola.local/audit/vectors"
SEED = bytes(range(32))

EVENTS = [
    AuditEvent("key.generated", "service:core", {"purpose": "grant", "algorithm": "ed25519", "key_id": "ed25519:0"}),
    AuditEvent("raffle.created", "user:admin", {"raffle_id": "rf-1", "number_space": 1000}, tenant="org-1"),
    AuditEvent("grant.issued", "device:dv-1", {"grant_id": "g-1", "first_number": 1, "last_number": 100}, "org-1"),
    AuditEvent(
        "tickets.recorded", "device:dv-1", {"device_id": "dv-1", "tickets": 3, "note": "Caf\u00e9 \u2603"}, "org-1"
    ),
    AuditEvent("sync.accepted", "device:dv-1", {"device_id": "dv-1", "acked_seq": 3, "rejected": []}, "org-1"),
    AuditEvent("auth.login_failed", "service:server", {"reason": "unknown_token", "path": "/v1/admin/venues"}),
    AuditEvent(
        "draw.state_changed", "user:admin", {"raffle_id": "rf-1", "from": "SALES_CLOSED", "to": "RECONCILED"}, "org-1"
    ),
    AuditEvent("rng.call", "service:core", {"purpose": "draw_nonce", "n_bytes": 32, "ratio": 0.5}),
]


def build() -> dict[str, Any]:
    data = [entry_bytes(i, 1_767_225_600_000 + i, e) for i, e in enumerate(EVENTS)]
    leaves = merkle.leaf_hashes(data)

    def mth(lo: int, hi: int) -> bytes:
        return merkle.root(leaves[lo:hi])

    signer = SoftwareNoteSigner.from_seed(ORIGIN, SEED)
    size = len(data)
    body = checkpoint_body(Checkpoint(ORIGIN, size, merkle.root(leaves), ()))
    return {
        "description": "docs/audit-log.md: entries 0..7, their leaf data (RFC 8785), leaf hashes, every root, "
        "proofs, and a checkpoint of the 8 entries signed with the Ed25519 seed 00 01 .. 1f",
        "origin": ORIGIN,
        "ed25519_seed": SEED.hex(),
        "verifier_key": NoteVerifier.from_key(signer).vkey,
        "entries": [{"leaf_data": d.decode(), "leaf_hash": h.hex()} for d, h in zip(data, leaves, strict=True)],
        "roots": {str(n): merkle.root(leaves[:n]).hex() for n in range(size + 1)},
        "inclusion": [
            {"index": i, "tree_size": n, "proof": [h.hex() for h in inclusion_path(i, n, mth)]}
            for i, n in ((0, 8), (5, 8), (6, 7), (2, 3))
        ],
        "consistency": [
            {"first": m, "second": n, "proof": [h.hex() for h in consistency_path(m, n, mth)]}
            for m, n in ((3, 8), (4, 8), (1, 2), (6, 7))
        ],
        "checkpoint_note": sign_note(body, [signer]),
    }


def test_the_stored_vectors_are_what_the_implementation_computes() -> None:
    stored = json.loads((VECTORS / "log-8.json").read_text())
    assert stored == build()


def test_the_vectors_verify_with_the_rfc9162_verifiers() -> None:
    v = json.loads((VECTORS / "log-8.json").read_text())
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in v["entries"]]
    for i, e in enumerate(v["entries"]):
        assert parse_entry(e["leaf_data"].encode())["index"] == i
        assert merkle.leaf_hash(e["leaf_data"].encode()).hex() == e["leaf_hash"]
    for case in v["inclusion"]:
        root = bytes.fromhex(v["roots"][str(case["tree_size"])])
        proof = [bytes.fromhex(h) for h in case["proof"]]
        merkle.verify_inclusion(leaves[case["index"]], case["index"], case["tree_size"], proof, root)
    for case in v["consistency"]:
        r1, r2 = (bytes.fromhex(v["roots"][str(case[k])]) for k in ("first", "second"))
        merkle.verify_consistency(case["first"], case["second"], r1, r2, [bytes.fromhex(h) for h in case["proof"]])
    opened = open_note(v["checkpoint_note"], [v["verifier_key"]])
    assert opened.body.split("\n")[1] == "8"
    report = verify_log(
        ((e["leaf_data"].encode(), None) for e in v["entries"]),
        [v["checkpoint_note"]],
        [NoteVerifier.parse(v["verifier_key"])],
        origin=v["origin"],
    )
    assert report.ok and report.latest_size == 8


if __name__ == "__main__":
    VECTORS.mkdir(parents=True, exist_ok=True)
    (VECTORS / "log-8.json").write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {VECTORS / 'log-8.json'}")
