"""The sync protocol against its vectors in ``tests/vectors/sync-protocol/``.

Every file is checked (one test per file, the id is the file name) by the checker its ``type``
names. Positive vectors are recomputed with ``sync_protocol`` and, where it matters, also
checked independently of it (signatures with ``cryptography`` directly over the stored bytes,
hashes with ``hashlib``, canonical bytes with the RFC 8785 encoder in ``reference.py``).
Negative vectors run their ``operation`` and must fail with ``expect_error`` (and the
``expect_extra`` facts). ``test_vectors_drift`` regenerates everything and compares.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync_protocol import errors as protocol_errors
from sync_protocol.canonical import canonical_bytes, domain_bytes
from sync_protocol.chain import verify_chain, verify_event_chain
from sync_protocol.codes import normalise_code, ticket_code
from sync_protocol.errors import SALE_REJECTION_CODES, TombolaError
from sync_protocol.messages import (
    EnrollmentRequest,
    EnrollmentResponse,
    EventRecord,
    RangeGrant,
    SyncAck,
    SyncBatch,
    parse_record,
)
from sync_protocol.pins import PinHash, hash_pin, verify_pin
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner, b64u_decode, b64u_encode, key_id_for
from sync_protocol.version import check_version
from tests.sync_protocol import reference

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_DIR = VECTORS / "sync-protocol"
GENERATOR = VECTORS / "generate_sync_vectors.py"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.json"))
ERRORS_BY_CODE = {
    cls.code: cls for cls in vars(protocol_errors).values() if isinstance(cls, type) and issubclass(cls, TombolaError)
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sync_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_signature(public_key_b64u: str, signature_b64u: str, signing_bytes_hex: str) -> None:
    """Ed25519 straight from ``cryptography``, over the stored bytes, not through sync_protocol."""
    Ed25519PublicKey.from_public_bytes(b64u_decode(public_key_b64u)).verify(
        b64u_decode(signature_b64u), bytes.fromhex(signing_bytes_hex)
    )


def check_domain_bytes(purpose: str, body: Any, signing_bytes_hex: str) -> None:
    """``signing_bytes_hex`` = prefix + RFC 8785 bytes by the independent encoder."""
    expected = f"tombola/{purpose}/v1\x00".encode("ascii") + reference.jcs_reference(body)
    assert bytes.fromhex(signing_bytes_hex) == expected


def check_signer(info: dict[str, str]) -> SoftwareSigner:
    signer = SoftwareSigner.from_seed(bytes.fromhex(info["seed_hex"]))
    assert b64u_encode(signer.public_key) == info["public_key"]
    assert signer.public_key.hex() == info["public_key_hex"]
    assert signer.key_id == info["key_id"] == key_id_for(signer.public_key)
    assert info["key_id"] == "ed25519:" + hashlib.sha256(signer.public_key).hexdigest()[:16]
    return signer


# --------------------------------------------------------------------------- checkers per type


def check_canonical(v: dict[str, Any]) -> None:
    assert v["cases"]
    for case in v["cases"]:
        data = canonical_bytes(case["input"])
        assert data.hex() == case["canonical_hex"], case["name"]
        assert data.decode("utf-8") == case["canonical_text"], case["name"]
        assert reference.jcs_reference(case["input"]) == data, case["name"]
        # The canonical text parses back to the input: nothing lost.
        assert json.loads(case["canonical_text"]) == case["input"], case["name"]


def check_domain(v: dict[str, Any]) -> None:
    purposes = {case["purpose"] for case in v["cases"]}
    assert purposes == {"grant", "record", "batch", "enroll", "export", "ticket-code"}
    for case in v["cases"]:
        prefix = bytes.fromhex(case["prefix_hex"])
        assert prefix == b"tombola/" + case["purpose"].encode() + b"/v1\x00"
        data = domain_bytes(case["purpose"], case["input"])
        assert data.hex() == case["domain_bytes_hex"]
        assert data == prefix + canonical_bytes(case["input"])


def check_keys(v: dict[str, Any]) -> None:
    keys = v["keys"]
    assert bytes.fromhex(keys["server_grant_key"]["seed_hex"]) == b"\x01" * 32
    assert bytes.fromhex(keys["device"]["seed_hex"]) == b"\x02" * 32
    for info in keys.values():
        check_signer(info)


def check_grant(v: dict[str, Any]) -> None:
    signer = check_signer(v["signer"])
    keys = KeyRing([PublicKey.from_dict(k) for k in v["server_keys"]])
    grant = RangeGrant.verified(v["grant"], keys)
    assert grant.to_dict() == v["grant"], "re-encoding is byte-identical, unknown fields included"
    assert canonical_bytes(grant.to_dict()) == canonical_bytes(v["grant"])
    assert grant.signing_bytes().hex() == v["signing_bytes_hex"]
    assert grant.signing_bytes().decode("utf-8") == v["signing_text"]
    assert grant.signer_key_id == v["key_id"] == signer.key_id
    assert grant.signature == v["signature"]
    body = {k: x for k, x in v["grant"].items() if k != "signature"}
    check_domain_bytes("grant", body, v["signing_bytes_hex"])
    check_signature(v["signer"]["public_key"], v["signature"], v["signing_bytes_hex"])
    resigned = RangeGrant.from_dict(body | {"signature": ""}).signed_by(signer)
    assert resigned.signature == v["signature"], "Ed25519 is deterministic: the same key signs the same"


def check_chain(v: dict[str, Any]) -> None:
    records = []
    for entry in v["records"]:
        record = parse_record(entry["record"])
        assert record.to_dict() == entry["record"]
        body = {k: x for k, x in entry["record"].items() if k != "hash"}
        hashed = domain_bytes("record", body)
        assert hashed.hex() == entry["hashed_bytes_hex"]
        assert hashed.decode("utf-8") == entry["hashed_text"]
        check_domain_bytes("record", body, entry["hashed_bytes_hex"])
        assert hashlib.sha256(bytes.fromhex(entry["hashed_bytes_hex"])).hexdigest() == entry["hash"]
        assert record.compute_hash() == record.hash == entry["hash"]
        records.append(record)
    head = verify_chain(records, device_id=v["device_id"], prev_seq=v["prev_seq"], prev_hash=v["prev_hash"])
    assert head == v["head_hash"]
    assert records[-1].seq == v["head_seq"]
    assert {r.kind for r in records} == {"sale", "void"}


def check_batch(v: dict[str, Any]) -> None:
    signer = check_signer(v["device"])
    batch, head = reference.verify_batch(v["batch"], signer.public_key)
    assert head == v["head_hash"] == batch.head_hash
    assert batch.to_dict() == v["batch"]
    assert batch.header() == v["header"]
    assert set(v["batch"]) - set(v["header"]) == {"records", "signature"}
    assert batch.signing_bytes().hex() == v["signing_bytes_hex"]
    assert batch.signing_bytes().decode("utf-8") == v["signing_text"]
    check_domain_bytes("batch", v["header"], v["signing_bytes_hex"])
    check_signature(v["device"]["public_key"], v["signature"], v["signing_bytes_hex"])
    assert SyncBatch.from_dict(v["batch"] | {"signature": ""}).signed_by(signer).signature == v["signature"]
    if not batch.records:
        assert batch.last_seq == batch.first_seq - 1 and batch.prev_hash == batch.head_hash
    if "refusal" in v:
        # The 4xx answer that made the device list the record in `rejected` and send again.
        body = v["refusal"]["body"]
        assert body["error"] in SALE_REJECTION_CODES
        assert {"seq": body["seq"], "code": body["error"]} in v["batch"]["rejected"]
        record = next(r for r in batch.records if r.seq == body["seq"])
        assert body["sale_id"] == record.sale_id
        assert v["refusal"]["status"] == ERRORS_BY_CODE[body["error"]].status


def check_ticket_codes(v: dict[str, Any]) -> None:
    alphabet = v["alphabet"]
    assert len(alphabet) == 32 and not set("ILOU") & set(alphabet)
    for case in v["cases"]:
        data = domain_bytes(
            "ticket-code",
            {"raffle_id": case["raffle_id"], "number": case["number"], "record_hash": case["record_hash"]},
        )
        assert data.hex() == case["input_hex"]
        digest = hashlib.sha256(data).digest()
        assert digest.hex() == case["sha256_hex"]
        # Independent: 40 bits, big-endian, 8 groups of 5 bits, most significant first.
        value = int.from_bytes(digest[:5], "big")
        text = "".join(alphabet[(value >> (35 - 5 * i)) & 31] for i in range(8))
        assert case["code"] == text[:4] + "-" + text[4:]
        assert ticket_code(case["raffle_id"], case["number"], case["record_hash"]) == case["code"]
    for case in v["normalise"]:
        assert normalise_code(case["typed"]) == case["normalised"], case["typed"]


def check_export(v: dict[str, Any]) -> None:
    signer = check_signer(v["device"])
    assert (VECTOR_DIR / v["file"]).read_text(encoding="utf-8") == v["ndjson"]
    head = reference.verify_export(v["ndjson"], signer.public_key)
    assert head == v["head_hash"]
    lines = v["ndjson"].splitlines()
    assert [json.loads(line) for line in lines] == v["lines"]
    assert all(line.encode("utf-8") == canonical_bytes(obj) for line, obj in zip(lines, v["lines"], strict=True))
    trailer = v["lines"][-1]
    signed = {k: trailer[k] for k in ("device_id", "first_seq", "last_seq", "head_hash")}
    check_domain_bytes("export", signed, v["trailer_signing_bytes_hex"])
    assert bytes.fromhex(v["trailer_signing_bytes_hex"]).decode("utf-8") == v["trailer_signing_text"]
    check_signature(v["device"]["public_key"], v["signature"], v["trailer_signing_bytes_hex"])
    assert trailer["signature"] == v["signature"]


def check_enrollment(v: dict[str, Any]) -> None:
    signer = check_signer(v["device"])
    request = EnrollmentRequest.from_dict(v["request"])
    assert request.verify() == signer.public_key
    assert request.to_dict() == v["request"]
    assert request.signing_bytes().hex() == v["signing_bytes_hex"]
    assert request.signing_bytes().decode("utf-8") == v["signing_text"]
    check_domain_bytes("enroll", {k: x for k, x in v["request"].items() if k != "signature"}, v["signing_bytes_hex"])
    check_signature(v["device"]["public_key"], v["signature"], v["signing_bytes_hex"])
    response = EnrollmentResponse.from_dict(v["response"])
    assert response.to_dict() == v["response"]
    keys = KeyRing([PublicKey.from_dict(k) for k in response.server_keys])
    for grant in response.grants:
        grant.verify(keys)
        assert grant.device_id == response.device_id


def check_ack(v: dict[str, Any]) -> None:
    ack = SyncAck.from_dict(v["ack"])
    assert ack.to_dict() == v["ack"]
    keys = KeyRing([PublicKey.from_dict(k) for k in v["server_keys"]])
    assert ack.grants
    for grant in ack.grants:
        RangeGrant.verified(grant.to_dict(), keys)
        assert grant.device_id == ack.device_id
    for rejected in ack.rejected:
        assert rejected.code in SALE_REJECTION_CODES and rejected.seq <= ack.acked_seq


def check_versions(v: dict[str, Any]) -> None:
    for case in v["cases"]:
        if case["accepted"]:
            assert check_version(case["version"]) == case["version"]
        else:
            with pytest.raises(TombolaError) as info:
                check_version(case["version"])
            assert info.value.code == case["expect_error"], case["version"]


def check_negative(v: dict[str, Any]) -> None:
    with pytest.raises(TombolaError) as info:
        reference.run_operation(v["operation"], copy.deepcopy(v["input"]))
    error = info.value
    assert error.code == v["expect_error"], f"{error.code} ({error.detail}) instead of {v['expect_error']}"
    for key, value in v.get("expect_extra", {}).items():
        assert error.extra.get(key) == value, f"{key}: {error.extra.get(key)!r} instead of {value!r}"
    assert error.to_dict()["error"] == v["expect_error"]


def check_seller_pins(v: dict[str, Any]) -> None:
    for case in v["cases"]:
        stored = hash_pin(case["pin"], salt=bytes.fromhex(case["salt_hex"]))
        assert (stored.pin_scheme, stored.pin_salt, stored.pin_hash) == (
            case["pin_scheme"],
            case["pin_salt"],
            case["pin_hash"],
        )
        assert verify_pin(case["pin"], PinHash(case["pin_scheme"], case["pin_salt"], case["pin_hash"]))
        derived = hashlib.scrypt(
            case["pin"].encode("ascii"), salt=bytes.fromhex(case["salt_hex"]), n=16384, r=8, p=1, dklen=32
        )
        assert b64u_encode(derived) == case["pin_hash"]  # the formula of the docs, by hand
    for try_ in v["wrong"]:
        case = v["cases"][try_["of"]]
        stored = PinHash(try_.get("pin_scheme", case["pin_scheme"]), case["pin_salt"], case["pin_hash"])
        assert not verify_pin(try_["pin"], stored), try_


def check_events(v: dict[str, Any]) -> None:
    """Protocol 1.1: the event chain (hashed bytes checked by the independent encoder), and a batch
    carrying the events whose signature covers them."""
    events = []
    for entry in v["events"]:
        event = EventRecord.from_dict(entry["event"])
        assert event.to_dict() == entry["event"]
        body = {k: x for k, x in entry["event"].items() if k != "hash"}
        check_domain_bytes("event", body, entry["hashed_bytes_hex"])
        assert bytes.fromhex(entry["hashed_bytes_hex"]).decode("utf-8") == entry["hashed_text"]
        assert hashlib.sha256(bytes.fromhex(entry["hashed_bytes_hex"])).hexdigest() == entry["hash"] == event.hash
        events.append(event)
    head = verify_event_chain(events, device_id=v["device_id"], prev_seq=v["prev_seq"], prev_hash=v["prev_hash"])
    assert head == v["head_hash"] and events[-1].seq == v["head_seq"]
    signer = check_signer(v["device"])
    batch, _ = reference.verify_batch(v["batch"], signer.public_key)
    assert batch.protocol_version == "1.1" and batch.events == events
    assert "events" in v["header"] and set(v["batch"]) - set(v["header"]) == {"records", "signature"}
    check_domain_bytes("batch", v["header"], v["signing_bytes_hex"])
    check_signature(v["device"]["public_key"], v["signature"], v["signing_bytes_hex"])
    # a 1.0 peer keeps 'events' as an unknown member: the same header, the same signature
    assert {k: x for k, x in v["batch"].items() if k not in ("records", "signature")} == v["header"]
    ack = v["ack_members"]
    assert (ack["events_acked_seq"], ack["events_head_hash"]) == (v["head_seq"], v["head_hash"])


CHECKERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "canonical": check_canonical,
    "domain": check_domain,
    "keys": check_keys,
    "grant": check_grant,
    "chain": check_chain,
    "batch": check_batch,
    "ticket-codes": check_ticket_codes,
    "seller-pins": check_seller_pins,
    "export": check_export,
    "enrollment": check_enrollment,
    "ack": check_ack,
    "versions": check_versions,
    "negative": check_negative,
    "events": check_events,
}


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.name for p in VECTOR_FILES])
def test_vector(path: Path) -> None:
    v = load(path)
    assert v["description"].strip() and v["source"].strip()
    assert v["type"] in CHECKERS, f"{path.name}: no checker for type {v['type']!r}"
    CHECKERS[v["type"]](v)


def test_vector_set_is_complete() -> None:
    """The vector set holds every kind of case the specification promises."""
    vectors = {p.name: load(p) for p in VECTOR_FILES}
    assert {v["type"] for v in vectors.values()} == set(CHECKERS)
    negatives = {v["expect_error"] for v in vectors.values() if v["type"] == "negative"}
    assert {
        "grant_invalid",
        "broken_chain",
        "sequence_gap",
        "device_mismatch",
        "unsupported_version",
        "malformed",
        "bad_signature",
    } <= negatives
    for name, v in vectors.items():
        assert name.startswith("invalid-") == (v["type"] == "negative"), name


def test_vectors_drift(tmp_path: Path) -> None:
    """The committed vectors are exactly what the generator writes today."""
    load_generator().generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in VECTOR_DIR.iterdir() if p.is_file()}
    hint = "run `.venv/bin/python tests/vectors/generate_sync_vectors.py` and review the diff"
    assert sorted(fresh) == sorted(committed), (
        f"missing: {sorted(set(fresh) - set(committed))}, stale: {sorted(set(committed) - set(fresh))}; {hint}"
    )
    changed = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not changed, f"vectors differ from the generator's output: {changed}; {hint}"


def test_generator_is_deterministic(tmp_path: Path) -> None:
    generator = load_generator()
    first = generator.build()
    assert generator.build() == first
    generator.generate(tmp_path / "a")
    generator.generate(tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


SPEC = Path(__file__).resolve().parents[2] / "docs" / "sync-protocol.md"


def test_spec_examples_match_the_vectors() -> None:
    """The worked examples of docs/sync-protocol.md are copied from the vectors: keep them so."""
    spec = "".join(SPEC.read_text(encoding="utf-8").split())  # hex is wrapped over lines there
    grant = load(VECTOR_DIR / "range-grant.json")
    chain = load(VECTOR_DIR / "chain.json")
    batch = load(VECTOR_DIR / "sync-batch.json")
    rejection = load(VECTOR_DIR / "sync-batch-rejection.json")
    codes = load(VECTOR_DIR / "ticket-codes.json")
    export = load(VECTOR_DIR / "export.json")
    keys = load(VECTOR_DIR / "keys.json")["keys"]
    expected = {
        "grant signature": grant["signature"],
        "grant signing bytes (hex)": grant["signing_bytes_hex"],
        "grant signing bytes (text)": grant["signing_text"].replace("\x00", "\\0"),
        "record 1 hashed bytes (hex)": chain["records"][0]["hashed_bytes_hex"],
        "record 1 hashed bytes (text)": chain["records"][0]["hashed_text"].replace("\x00", "\\0"),
        "record 1 hash": chain["records"][0]["hash"],
        "record 2 hash": chain["records"][1]["hash"],
        "head hash": chain["head_hash"],
        "batch signing bytes (text)": batch["signing_text"].replace("\x00", "\\0"),
        "batch signature": batch["signature"],
        "re-sent batch signature": rejection["signature"],
        "refusal detail": rejection["refusal"]["body"]["detail"],
        "ticket code": codes["cases"][0]["code"],
        "ticket digest": codes["cases"][0]["sha256_hex"],
        "export header line": export["ndjson"].splitlines()[0],
        "export trailer line": export["ndjson"].splitlines()[-1],
        "server key": keys["server_grant_key"]["public_key"],
        "server key id": keys["server_grant_key"]["key_id"],
        "device key": keys["device"]["public_key"],
        "device key id": keys["device"]["key_id"],
    }
    expected |= {f"code of ticket {c['number']}": c["code"] for c in codes["cases"]}
    expected |= {f"grant member {k}": json.dumps({k: v})[1:-1] for k, v in grant["grant"].items()}
    expected |= {f"record 1 member {k}": json.dumps({k: v})[1:-1] for k, v in chain["records"][0]["record"].items()}
    stale = [what for what, value in expected.items() if "".join(value.split()) not in spec]
    assert not stale, f"docs/sync-protocol.md no longer matches the vectors: {stale}"
