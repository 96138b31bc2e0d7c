"""Signed checkpoints of the audit log (``gli_core.audit.note``, ``gli_core.audit.signers``).

What is proven here:

- interoperability: Go's ``golang.org/x/mod/sumdb/note`` test vector (key "PeterNeumann") is
  reproduced byte for byte, and real ECDSA checkpoints of Sigstore Rekor and the Pixel log
  (``transparency-dev/formats`` test vectors, signature type 0x02) verify;
- the vectors of ``tests/vectors/audit-checkpoint/`` (fixed seed; they are rebuilt here and
  compared, so they cannot drift: ``python -m tests.gli_core.test_audit_note`` rewrites them);
- every tamper is refused with its own code, and (hypothesis) no single-byte change of a signed
  note opens to the same body;
- the key types are told apart by the type byte of the verifier key;
- the HSM signer on the real SoftHSM2 token (rotation keeps old keys verifiable) and the KMS
  signer on moto's standalone server, verified offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core import merkle
from gli_core.audit import note as notes
from gli_core.audit.note import (
    MAX_SIGNATURES,
    SIG_ECDSA,
    SIG_ED25519,
    Checkpoint,
    CheckpointInvalid,
    NoteInvalid,
    NoteKeyInvalid,
    NoteSignatureInvalid,
    NoteUnverified,
    NoteVerifier,
    SoftwareNoteSigner,
    audit_origin,
    check_key_name,
    checkpoint_body,
    key_hash,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from gli_core.audit.signers import (
    AuditSignerMisconfigured,
    AuditSignerUnavailable,
    HsmNoteSigner,
    KmsNoteSigner,
    create_kms_audit_key,
    hsm_audit_verifiers,
)
from gli_core.hsm import Hsm
from tests.support.moto import MotoServer, TcpCut, unique_name

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "audit-checkpoint"
REFERENCE_LEAVES = [
    bytes.fromhex(x)
    for x in json.loads((VECTORS.parent / "rfc9162-merkle" / "leaves.json").read_text(encoding="utf-8"))["leaves"]
]

# -- reference data from other implementations ----------------------------------------------

#: golang.org/x/mod/sumdb/note, note_test.go (BSD-3-Clause, Copyright 2019 The Go Authors).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

#: github.com/transparency-dev/formats, note/note_verifier_test.go (Apache-2.0, Copyright 2021
#: Google LLC): real checkpoints of Sigstore Rekor and the Pixel 6 log, ECDSA P-256, type 0x02.
REKOR_VKEY = (
    "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l"
    "+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="
)
REKOR_NOTE = (
    "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n— rekor.sigstore.dev "
    "wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n"
)
PIXEL_VKEY = (
    "pixel6_transparency_log+91c16e30+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VW"
    "D3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8="
)
PIXEL_NOTE = (
    "DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n— pixel6_transparency_log "
    "kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n"
)

# -- Tombola's own fixed key -----------------------------------------------------------------

ORIGIN = "tombola.local/audit/0123456789ab"
SEED = hashlib.sha256(b"tombola/audit-checkpoint/test-vector/1").digest()
OTHER_SEED = hashlib.sha256(b"tombola/audit-checkpoint/test-vector/2").digest()


def _signer(name: str = ORIGIN, seed: bytes = SEED) -> SoftwareNoteSigner:
    return SoftwareNoteSigner.from_seed(name, seed)


class EcdsaSoftwareSigner:
    """An ECDSA P-256 note signer in software (type 0x02), standing in for KMS in pure tests."""

    def __init__(self, key_name: str, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.key_name = key_name
        self.sig_type = SIG_ECDSA
        self._private = private_key or ec.generate_private_key(ec.SECP256R1())
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message, ec.ECDSA(hashes.SHA256()))


def _checkpoint(size: int = 7, extensions: tuple[str, ...] = ()) -> Checkpoint:
    root = merkle.root(merkle.leaf_hashes(REFERENCE_LEAVES[:size]))
    return Checkpoint(ORIGIN, size, root, extensions)


def _signed(size: int = 7) -> str:
    return sign_checkpoint(_checkpoint(size), [_signer()])


def _code(exc: pytest.ExceptionInfo[NoteInvalid]) -> str:
    return exc.value.code


# -- vectors: built here, compared with the files ----------------------------------------------

VECTOR_CASES: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("checkpoint-size-7", "The RFC 9162 reference tree's first 7 leaves.", 7, ()),
    ("checkpoint-empty", "The empty log: tree size 0, root SHA-256 of the empty string.", 0, ()),
    (
        "checkpoint-extension",
        "All 8 reference leaves, with one extension line (Tombola writes none; verifiers accept them).",
        8,
        ("tombola.local/extension example",),
    ),
]


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every vector file's content, computed from the fixed seed."""
    signer = _signer()
    verifier = NoteVerifier.from_key(signer)
    files: dict[str, dict[str, Any]] = {}
    for name, description, size, extensions in VECTOR_CASES:
        cp = _checkpoint(size, extensions)
        body = checkpoint_body(cp)
        note = sign_note(body, [signer])
        files[f"{name}.json"] = {
            "description": description,
            "signature_type": SIG_ED25519,
            "key_name": ORIGIN,
            "ed25519_seed": SEED.hex(),
            "public_key": signer.public_key.hex(),
            "key_id": verifier.key_hash.hex(),
            "vkey": verifier.vkey,
            "leaves": [leaf.hex() for leaf in REFERENCE_LEAVES[:size]],
            "checkpoint": {
                "origin": cp.origin,
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash.hex(),
                "extensions": list(cp.extensions),
            },
            "body": body,
            "note": note,
        }
    files["invalid.json"] = {
        "description": (
            "Mutations of checkpoint-size-7.json's note, opened with its vkey; each must fail with `error`."
        ),
        "vkey": verifier.vkey,
        "cases": [{"description": d, "note": n, "error": e} for d, n, e in _invalid_cases(files)],
    }
    return files


def _invalid_cases(files: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    good = files["checkpoint-size-7.json"]["note"]
    body, sigs = good.split("\n\n")
    line = sigs.rstrip("\n")
    sig64 = line.split(" ")[2]
    raw = base64.b64decode(sig64)
    other = _signer("tombola.local/audit/other", OTHER_SEED)
    flipped_sig = base64.b64encode(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:]).decode()
    wrong_hash = base64.b64encode(bytes([raw[0] ^ 0x80]) + raw[1:]).decode()
    # the last character of a 68-byte signature carries 4 data bits and 2 padding bits
    loose = sig64[:-2] + chr(ord(sig64[-2]) + 1) + "="
    return [
        ("tree size changed 7 -> 8", good.replace("\n7\n", "\n8\n", 1), "audit_note_bad_signature"),
        ("origin changed", good.replace(ORIGIN + "\n", ORIGIN + "x\n", 1), "audit_note_bad_signature"),
        ("one bit of the signature flipped", good.replace(sig64, flipped_sig), "audit_note_bad_signature"),
        (
            "key name changed: an unknown key",
            good.replace("— " + ORIGIN, "— tombola.local/audit/x"),
            "audit_note_unverified",
        ),
        ("key ID changed: an unknown key", good.replace(sig64, wrong_hash), "audit_note_unverified"),
        ("final newline missing", good[:-1], "audit_note_invalid"),
        ("no blank line before the signatures", body + "\n" + line + "\n", "audit_note_invalid"),
        (
            "two blank lines: the signed text would end in an empty line",
            body + "\n\n\n" + line + "\n",
            "audit_note_bad_signature",
        ),
        ("signature line repeated", good + line + "\n", "audit_note_invalid"),
        ("no signature line", body + "\n\n", "audit_note_invalid"),
        ("hyphen instead of em dash", good.replace("— ", "- "), "audit_note_invalid"),
        ("non-canonical base64 (padding bits set)", good.replace(sig64, loose), "audit_note_invalid"),
        ("carriage return before a newline", good.replace("\n7\n", "\n7\r\n", 1), "audit_note_invalid"),
        ("signed by another key only", sign_note(body + "\n", [other]), "audit_note_unverified"),
        ("text after the signature lines", good + "Unexpected line.\n", "audit_note_invalid"),
    ]


def _write_vectors() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    for name, content in build_vectors().items():
        (VECTORS / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name", sorted(build_vectors()))
def test_vector_files_have_not_drifted(name: str) -> None:
    stored = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert stored == build_vectors()[name], f"{name} differs: run python -m tests.gli_core.test_audit_note"


@pytest.mark.parametrize("path", sorted(VECTORS.glob("checkpoint-*.json")), ids=lambda p: p.name)
def test_vector_is_reproduced_from_the_seed_and_opens(path: Path) -> None:
    """What an independent implementation does with a vector file, from its members alone."""
    v = json.loads(path.read_text(encoding="utf-8"))
    signer = SoftwareNoteSigner.from_seed(v["key_name"], bytes.fromhex(v["ed25519_seed"]))
    assert signer.public_key.hex() == v["public_key"]
    assert key_hash(v["key_name"], SIG_ED25519, signer.public_key).hex() == v["key_id"]
    assert verifier_key(signer) == v["vkey"]
    c = v["checkpoint"]
    root = merkle.root(merkle.leaf_hashes([bytes.fromhex(x) for x in v["leaves"]]))
    assert root.hex() == c["root_hash"]
    cp = Checkpoint(c["origin"], c["tree_size"], root, tuple(c["extensions"]))
    assert checkpoint_body(cp) == v["body"]
    assert sign_note(v["body"], [signer]) == v["note"]  # Ed25519 is deterministic
    opened = open_note(v["note"], [v["vkey"]])
    assert opened.body == v["body"]
    assert opened.verified_by == (v["vkey"],)
    assert open_checkpoint(v["note"].encode("utf-8"), [v["vkey"]], origin=c["origin"]) == cp


def _invalid_vector_cases() -> list[dict[str, str]]:
    path = VECTORS / "invalid.json"
    if not path.exists():  # being written (python -m ...); the drift test fails on a missing file
        return []
    cases: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["cases"]
    return cases


@pytest.mark.parametrize("case", _invalid_vector_cases(), ids=lambda c: c["description"])
def test_invalid_vectors_fail_with_their_code(case: dict[str, str]) -> None:
    vkey = json.loads((VECTORS / "invalid.json").read_text(encoding="utf-8"))["vkey"]
    with pytest.raises(NoteInvalid) as exc:
        open_note(case["note"], [vkey])
    assert exc.value.code == case["error"], exc.value.detail


# -- interoperability with the Go reference ----------------------------------------------------


def test_go_sumdb_note_signature_is_reproduced_byte_for_byte() -> None:
    signer = SoftwareNoteSigner.from_skey(GO_SKEY)
    assert signer.key_name == "PeterNeumann"
    assert verifier_key(signer) == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_sumdb_note_opens_with_one_or_both_keys() -> None:
    text = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    one = open_note(text, [GO_VKEY])
    assert one.body == GO_TEXT
    assert one.verified_by == (GO_VKEY,)
    assert one.ignored == ("EnochRoot+af0cfe78",)
    both = open_note(text, [NoteVerifier.parse(GO_VKEY), GO_ENOCH_VKEY])
    assert both.verified_by == (GO_VKEY, GO_ENOCH_VKEY)
    with pytest.raises(NoteUnverified):
        open_note(text, [])


def test_go_sumdb_note_invalid_signature_is_refused() -> None:
    """Go's TestOpen: four base64 characters inserted into Peter's signature."""
    bad = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(NoteSignatureInvalid, match="PeterNeumann"):
        open_note(bad, [GO_VKEY])


@pytest.mark.parametrize(
    "msg",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,
        GO_TEXT + "\n" + GO_PETER_SIG.replace("PeterNeumann", "Bad Name").rstrip("\n"),
        GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + GO_PETER_SIG * (MAX_SIGNATURES + 1),
    ],
    ids=["no-signatures", "blank-only", "no-final-newline", "control-char", "bad-name", "trailing-line", "101-sigs"],
)
def test_go_sumdb_note_malformed_messages(msg: str) -> None:
    with pytest.raises(NoteInvalid) as exc:
        open_note(msg, [GO_VKEY])
    assert exc.value.code == "audit_note_invalid"


def test_go_sumdb_note_invalid_utf8_is_refused() -> None:
    with pytest.raises(NoteInvalid) as exc:
        open_note(b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode(), [GO_VKEY])
    assert exc.value.code == "audit_note_invalid"


def test_go_sumdb_note_verifier_key_manglings_are_refused() -> None:
    """Go's TestNewVerifier: every proper substring and every single-byte increment of the vkey."""
    NoteVerifier.parse(GO_VKEY)
    b = GO_VKEY.encode()
    bad = {b[i:j].decode() for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1) if (i, j) != (0, len(b))}
    bad |= {(b[:i] + bytes([b[i] + 1]) + b[i + 1 :]).decode() for i in range(len(b))}
    accepted = []
    for k in sorted(bad):
        try:
            NoteVerifier.parse(k)
        except NoteKeyInvalid:
            continue
        accepted.append(k)
    assert accepted == []
    # wrong length key, and unknown algorithm, each with a key hash adjusted to match
    for k in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(NoteKeyInvalid):
            NoteVerifier.parse(k)


@pytest.mark.parametrize(("vkey", "note"), [(REKOR_VKEY, REKOR_NOTE), (PIXEL_VKEY, PIXEL_NOTE)], ids=["rekor", "pixel"])
def test_ecdsa_checkpoints_of_real_logs_verify(vkey: str, note: str) -> None:
    verifier = NoteVerifier.parse(vkey)
    assert verifier.sig_type == SIG_ECDSA
    assert verifier.algorithm == "ECDSA P-256"
    assert verifier.key_hash == hashlib.sha256(verifier.public_key).digest()[:4]  # the spec's 0x02 key ID
    cp = open_checkpoint(note, [vkey])
    assert checkpoint_body(cp) == note.split("\n\n")[0] + "\n"
    with pytest.raises(NoteSignatureInvalid):
        open_note(note.replace("\n798034\n", "\n798035\n").replace("\n10\n", "\n11\n"), [vkey])
    renamed = vkey.replace(verifier.key_name, "bananas.example", 1)
    with pytest.raises(NoteUnverified):
        open_note(note, [renamed])  # 0x02 key IDs ignore the name, so the vkey parses; the name differs


# -- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_body_round_trips() -> None:
    for cp in (_checkpoint(0), _checkpoint(7), _checkpoint(8, ("a", "b c"))):
        body = checkpoint_body(cp)
        assert body.endswith("\n") and "\n\n" not in body
        assert parse_checkpoint(body) == cp
    cp = _checkpoint(0)
    assert cp.root_hash == merkle.EMPTY_ROOT
    assert checkpoint_body(cp) == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    big = Checkpoint(ORIGIN, 2**64 - 1, bytes(32))
    assert parse_checkpoint(checkpoint_body(big)) == big


ROOT64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n7\n{ROOT64}",
        f"{ORIGIN}\n7\n",
        f"\n7\n{ROOT64}\n",
        f"{ORIGIN}\n07\n{ROOT64}\n",
        f"{ORIGIN}\n+7\n{ROOT64}\n",
        f"{ORIGIN}\n 7\n{ROOT64}\n",
        f"{ORIGIN}\n7_0\n{ROOT64}\n",
        f"{ORIGIN}\n\u0667\n{ROOT64}\n",
        f"{ORIGIN}\n-1\n{ROOT64}\n",
        f"{ORIGIN}\n{2**64}\n{ROOT64}\n",
        f"{ORIGIN}\n{'9' * 5000}\n{ROOT64}\n",
        f"{ORIGIN}\n7\n{base64.b64encode(bytes(31)).decode()}\n",
        f"{ORIGIN}\n7\n{ROOT64.rstrip('=')}\n",
        f"{ORIGIN}\n7\n{ROOT64[:-2]}B=\n",
        f"{ORIGIN}\n7\n{ROOT64}\n\n",
        f"{ORIGIN}\n7\n{ROOT64}\next\n\n",
        f"{ORIGIN}\n7\n{ROOT64}\r\n",
    ],
    ids=[
        "no-final-newline",
        "two-lines",
        "empty-origin",
        "leading-zero",
        "plus-sign",
        "space",
        "underscore",
        "arabic-digit",
        "negative",
        "2**64",
        "huge",
        "31-byte-root",
        "unpadded-root",
        "padding-bits",
        "empty-extension",
        "empty-last-extension",
        "carriage-return",
    ],
)
def test_parse_checkpoint_refuses(body: str) -> None:
    with pytest.raises(CheckpointInvalid) as exc:
        parse_checkpoint(body)
    assert exc.value.code == "audit_checkpoint_invalid"
    assert exc.value.status == 422


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"tree_size": -1},
        {"tree_size": 2**64},
        {"tree_size": True},
        {"root_hash": bytes(31)},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
        {"extensions": ("tab\there",)},
    ],
)
def test_checkpoint_is_valid_on_construction(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"origin": ORIGIN, "tree_size": 1, "root_hash": bytes(32), "extensions": ()} | kwargs
    with pytest.raises(CheckpointInvalid):
        Checkpoint(**values)


def test_open_checkpoint_pins_the_origin() -> None:
    vkey = verifier_key(_signer())
    assert open_checkpoint(_signed(), [vkey], origin=ORIGIN) == _checkpoint()
    with pytest.raises(CheckpointInvalid, match=r"not 'tombola\.local/audit/other'"):
        open_checkpoint(_signed(), [vkey], origin="tombola.local/audit/other")
    not_a_checkpoint = sign_note("hello\n", [_signer()])
    with pytest.raises(CheckpointInvalid):
        open_checkpoint(not_a_checkpoint, [vkey])


def test_audit_origin() -> None:
    assert audit_origin("3f9a0c1d2e4b") == "tombola.local/audit/3f9a0c1d2e4b"
    for bad in ("", "a/b", "a b", "a+b"):
        with pytest.raises(NoteKeyInvalid):
            audit_origin(bad)


# -- signing and opening ---------------------------------------------------------------------


def test_sign_and_open_round_trip_with_several_signers() -> None:
    ed = _signer()
    ecdsa = EcdsaSoftwareSigner("tombola.local/audit/kms")
    body = checkpoint_body(_checkpoint())
    text = sign_note(body, [ed, ecdsa])
    lines = text.split("\n\n", 1)[1].splitlines()
    assert [line.split(" ")[1] for line in lines] == [ORIGIN, "tombola.local/audit/kms"]
    assert all(line.startswith("\u2014 ") for line in lines)
    both = open_note(text, [verifier_key(ed), verifier_key(ecdsa)])
    assert both.body == body
    assert both.verified_by == (verifier_key(ed), verifier_key(ecdsa))
    only_ecdsa = open_note(text, [NoteVerifier.from_key(ecdsa)])
    assert only_ecdsa.verified_by == (verifier_key(ecdsa),)
    assert only_ecdsa.ignored == (NoteVerifier.from_key(ed).key_id,)


def test_signature_line_layout() -> None:
    signer = _signer()
    text = _signed()
    _, block = text.split("\n\n")
    assert block.endswith("\n") and block.count("\n") == 1
    dash, name, b64 = block[:-1].split(" ")
    assert dash == "\u2014" and name == ORIGIN
    raw = base64.b64decode(b64)
    assert len(raw) == 4 + 64
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key).digest()[:4]
    assert raw[:4] == expected_id == key_hash(ORIGIN, SIG_ED25519, signer.public_key)
    vkey = verifier_key(signer)
    key64 = base64.b64encode(b"\x01" + signer.public_key).decode()
    assert vkey == f"{ORIGIN}+{expected_id.hex()}+{key64}"
    assert verifier_key(ORIGIN, SIG_ED25519, signer.public_key) == vkey
    assert str(NoteVerifier.parse(vkey)) == vkey


def test_unknown_extra_signature_is_ignored() -> None:
    text = _signed()
    stranger = sign_note(checkpoint_body(_checkpoint()), [_signer("witness.example/w1", OTHER_SEED)])
    extra = text + stranger.split("\n\n")[1]
    opened = open_note(extra, [verifier_key(_signer())])
    assert opened.body == checkpoint_body(_checkpoint())
    assert opened.ignored == (NoteVerifier.from_key(_signer("witness.example/w1", OTHER_SEED)).key_id,)
    # an unknown line with garbage signature bytes is ignored too (it is not checked)
    garbage = text + "\u2014 witness.example/w2 " + base64.b64encode(bytes(70)).decode() + "\n"
    assert open_note(garbage, [verifier_key(_signer())]).body == opened.body


def test_a_known_key_that_fails_refuses_the_note_even_if_another_verifies() -> None:
    body = checkpoint_body(_checkpoint())
    good_other = sign_note(body, [_signer("witness.example/w1", OTHER_SEED)]).split("\n\n")[1]
    forged = sign_note(body.replace("\n7\n", "\n8\n"), [_signer()]).split("\n\n")[1]
    text = body + "\n" + good_other + forged
    verifiers = [verifier_key(_signer("witness.example/w1", OTHER_SEED)), verifier_key(_signer())]
    with pytest.raises(NoteSignatureInvalid) as exc:
        open_note(text, verifiers)
    assert exc.value.code == "audit_note_bad_signature"
    assert ORIGIN in exc.value.detail


def test_duplicate_signature_lines_are_refused_even_by_unknown_keys() -> None:
    text = _signed()
    line = text.split("\n\n")[1]
    with pytest.raises(NoteInvalid, match="repeats") as exc:
        open_note(text + line, [verifier_key(_signer())])
    assert exc.value.code == "audit_note_invalid"
    stranger = sign_note(checkpoint_body(_checkpoint()), [_signer("w.example/1", OTHER_SEED)]).split("\n\n")[1]
    with pytest.raises(NoteInvalid, match="repeats"):
        open_note(text + stranger + stranger, [verifier_key(_signer())])


def _unknown_lines(count: int, prefix: str = "w.example/") -> str:
    return "".join(f"\u2014 {prefix}{i} {base64.b64encode(bytes(68)).decode()}\n" for i in range(count))


def test_signature_limit() -> None:
    text = _signed()
    vkey = verifier_key(_signer())
    assert open_note(text + _unknown_lines(MAX_SIGNATURES - 1), [vkey]).body == checkpoint_body(_checkpoint())
    with pytest.raises(NoteInvalid, match="at most 100") as exc:
        open_note(text + _unknown_lines(MAX_SIGNATURES), [vkey])
    assert exc.value.code == "audit_note_invalid"


def test_no_trusted_key_signed() -> None:
    with pytest.raises(NoteUnverified) as exc:
        open_note(_signed(), [verifier_key(_signer("x.example/log", OTHER_SEED))])
    assert exc.value.code == "audit_note_unverified"
    assert ORIGIN in exc.value.detail


def test_same_verifier_twice_is_one_key() -> None:
    vkey = verifier_key(_signer())
    assert open_note(_signed(), [vkey, vkey, NoteVerifier.parse(vkey)]).verified_by == (vkey,)


def test_sign_note_refusals() -> None:
    with pytest.raises(NoteInvalid, match="newline"):
        sign_note("no newline", [_signer()])
    with pytest.raises(NoteInvalid, match="control"):
        sign_note("tab\there\n", [_signer()])
    with pytest.raises(NoteInvalid, match="at least one signer"):
        sign_note("x\n", [])
    with pytest.raises(NoteKeyInvalid, match="same key"):
        sign_note("x\n", [_signer(), _signer()])


class _LyingSigner:
    """Claims one key, signs with another (a misconfigured KMS key or a faulty token)."""

    key_name = ORIGIN
    sig_type = SIG_ED25519

    def __init__(self) -> None:
        self.public_key = _signer().public_key
        self._other = _signer(seed=OTHER_SEED)

    def sign(self, message: bytes) -> bytes:
        return self._other.sign(message)


def test_sign_note_checks_each_signature_against_the_signers_key() -> None:
    with pytest.raises(NoteSignatureInvalid, match="its own Ed25519 public key"):
        sign_note("x\n", [_LyingSigner()])


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\nb", "a\x00b", "a\ud800b"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(NoteKeyInvalid):
        check_key_name(name)
    with pytest.raises(NoteKeyInvalid):
        SoftwareNoteSigner.generate(name)


def test_note_text_and_body_may_contain_unicode_and_empty_lines() -> None:
    body = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    text = sign_note(body, [_signer("quasimodo.example/salvatore")])
    assert open_note(text, [verifier_key(_signer("quasimodo.example/salvatore"))]).body == body


def test_lone_surrogate_is_not_utf8() -> None:
    text = _signed().replace("\n7\n", "\n7\ud800\n")
    with pytest.raises(NoteInvalid, match="UTF-8"):
        open_note(text, [verifier_key(_signer())])


# -- the type byte tells the key types apart ---------------------------------------------------


def test_type_byte_separates_ed25519_and_ecdsa() -> None:
    ed = _signer()
    ecdsa = EcdsaSoftwareSigner(ORIGIN)
    ed_v, ec_v = NoteVerifier.from_key(ed), NoteVerifier.from_key(ecdsa)
    msg = b"same message\n"
    assert ed_v.verify(msg, ed.sign(msg)) and ec_v.verify(msg, ecdsa.sign(msg))
    assert not ed_v.verify(msg, ecdsa.sign(msg))  # an Ed25519 key refuses an ECDSA signature
    assert not ec_v.verify(msg, ed.sign(msg))  # and the other way round
    assert base64.b64decode(ed_v.vkey.split("+", 2)[2])[0] == 0x01
    assert base64.b64decode(ec_v.vkey.split("+", 2)[2])[0] == 0x02
    assert NoteVerifier.parse(ec_v.vkey).algorithm == "ECDSA P-256"


def test_an_ecdsa_signature_under_an_ed25519_key_id_is_refused() -> None:
    """A signature line that names the Ed25519 key (name and key ID) but carries an ECDSA
    signature of the same text: the verifier checks it as Ed25519 and refuses the note."""
    ed = _signer()
    ecdsa = EcdsaSoftwareSigner(ORIGIN)
    body = checkpoint_body(_checkpoint())
    forged = base64.b64encode(NoteVerifier.from_key(ed).key_hash + ecdsa.sign(body.encode())).decode()
    with pytest.raises(NoteSignatureInvalid):
        open_note(f"{body}\n\u2014 {ORIGIN} {forged}\n", [verifier_key(ed)])
    # and an Ed25519 signature under the ECDSA key's ID
    forged = base64.b64encode(NoteVerifier.from_key(ecdsa).key_hash + ed.sign(body.encode())).decode()
    with pytest.raises(NoteSignatureInvalid):
        open_note(f"{body}\n\u2014 {ORIGIN} {forged}\n", [verifier_key(ecdsa)])


def test_vkey_with_the_wrong_type_byte_for_its_key_is_refused() -> None:
    ed = _signer()
    spki = EcdsaSoftwareSigner(ORIGIN).public_key
    with pytest.raises(NoteKeyInvalid, match="32"):
        NoteVerifier(ORIGIN, SIG_ED25519, spki)
    with pytest.raises(NoteKeyInvalid, match="SubjectPublicKeyInfo"):
        NoteVerifier(ORIGIN, SIG_ECDSA, ed.public_key)
    with pytest.raises(NoteKeyInvalid, match="0x04"):
        NoteVerifier(ORIGIN, 0x04, ed.public_key)
    for sig_type, key in ((SIG_ECDSA, ed.public_key), (0x04, ed.public_key), (SIG_ED25519, spki)):
        kh = key_hash(ORIGIN, sig_type, key).hex()
        with pytest.raises(NoteKeyInvalid):
            NoteVerifier.parse(f"{ORIGIN}+{kh}+{base64.b64encode(bytes([sig_type]) + key).decode()}")


def test_ecdsa_keys_must_be_p256_in_canonical_spki() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = p384.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(NoteKeyInvalid, match="P-256"):
        NoteVerifier(ORIGIN, SIG_ECDSA, der)
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = p256.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    algorithm = der[2:23]  # SEQUENCE { id-ecPublicKey, prime256v1 }, 21 bytes
    point = p256.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    inner = algorithm + bytes([0x03, len(point) + 1, 0x00]) + point  # BIT STRING, no unused bits
    compressed_spki = bytes([0x30, len(inner)]) + inner
    assert serialization.load_der_public_key(compressed_spki) == p256  # a valid SPKI, but not canonical
    with pytest.raises(NoteKeyInvalid, match="canonical"):
        NoteVerifier(ORIGIN, SIG_ECDSA, compressed_spki)


def test_vkey_key_id_must_match() -> None:
    vkey = verifier_key(_signer())
    name, kh, key = vkey.split("+", 2)
    with pytest.raises(NoteKeyInvalid, match="hashes to"):
        NoteVerifier.parse(f"{name}+{int(kh, 16) ^ 1:08x}+{key}")
    with pytest.raises(NoteKeyInvalid, match="8 hex"):
        NoteVerifier.parse(f"{name}+{kh[:4]}_{kh[5:]}+{key}")
    assert NoteVerifier.parse(f"{name}+{kh.upper()}+{key}").vkey == vkey


# -- tamper evidence (hypothesis) --------------------------------------------------------------

_ED_NOTE = _signed().encode("utf-8")
_ECDSA_SIGNER = EcdsaSoftwareSigner("tombola.local/audit/kms")
_ECDSA_NOTE = sign_checkpoint(_checkpoint(), [_ECDSA_SIGNER]).encode("utf-8")


@settings(max_examples=1500, deadline=None)
@given(
    which=st.sampled_from(["ed25519", "ecdsa"]),
    position=st.integers(min_value=0, max_value=10_000),
    value=st.integers(min_value=0, max_value=255),
)
def test_any_single_byte_change_is_refused_or_changes_the_body(which: str, position: int, value: int) -> None:
    original, vkey = (
        (_ED_NOTE, verifier_key(_signer())) if which == "ed25519" else (_ECDSA_NOTE, verifier_key(_ECDSA_SIGNER))
    )
    position %= len(original)
    if original[position] == value:
        value ^= 0xFF
    changed = original[:position] + bytes([value]) + original[position + 1 :]
    body = original.decode().split("\n\n")[0] + "\n"
    try:
        opened = open_note(changed, [vkey])
    except NoteInvalid:
        return
    assert opened.body != body


#: NUL, newline, space, '+', '/', '=', 'A', 'a': the bytes that matter to the line syntax and base64
REPLACEMENTS = (0x00, 0x0A, 0x20, 0x2B, 0x2F, 0x3D, 0x41, 0x61)


def test_every_single_byte_change_of_the_signature_line_is_refused() -> None:
    """Exhaustively, every position of the signature block and a few replacement values."""
    vkey = verifier_key(_signer())
    start = _ED_NOTE.index(b"\n\n") + 1
    for position in range(start, len(_ED_NOTE)):
        for value in {*REPLACEMENTS, _ED_NOTE[position] ^ 1, _ED_NOTE[position] ^ 0x80}:
            if value == _ED_NOTE[position]:
                continue
            changed = _ED_NOTE[:position] + bytes([value]) + _ED_NOTE[position + 1 :]
            with pytest.raises(NoteInvalid):
                open_note(changed, [vkey])


# -- error codes -------------------------------------------------------------------------------


def test_error_codes_and_statuses() -> None:
    assert (NoteInvalid.code, NoteInvalid.status) == ("audit_note_invalid", 422)
    assert (NoteSignatureInvalid.code, NoteUnverified.code) == ("audit_note_bad_signature", "audit_note_unverified")
    assert (CheckpointInvalid.code, NoteKeyInvalid.code) == ("audit_checkpoint_invalid", "audit_note_key_invalid")
    assert (AuditSignerUnavailable.code, AuditSignerUnavailable.status) == ("audit_signer_unavailable", 503)
    assert (AuditSignerMisconfigured.code, AuditSignerMisconfigured.status) == ("audit_signer_misconfigured", 500)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    for cls in (
        NoteInvalid,
        NoteSignatureInvalid,
        NoteUnverified,
        CheckpointInvalid,
        NoteKeyInvalid,
        AuditSignerUnavailable,
        AuditSignerMisconfigured,
    ):
        assert f"| `{cls.code}` | {cls.status} | `{cls.__module__}.{cls.__qualname__}` |" in doc


def test_module_is_pure() -> None:
    source = Path(notes.__file__).read_text(encoding="utf-8")
    for forbidden in ("import boto3", "import botocore", "import pkcs11", "open(", "sqlalchemy", "gli_core.hsm"):
        assert forbidden not in source


# -- the HSM signer (real SoftHSM2 token) ------------------------------------------------------


@pytest.mark.hsm
def test_hsm_signer_signs_checkpoints_verified_offline(hsm: Hsm) -> None:
    signer = HsmNoteSigner(hsm, ORIGIN)
    assert signer.sig_type == SIG_ED25519 and len(signer.public_key) == 32
    assert "-audit-" in signer.label
    text = sign_checkpoint(_checkpoint(), [signer])
    vkey = verifier_key(signer)
    assert open_checkpoint(text, [vkey], origin=ORIGIN) == _checkpoint()
    assert [v.vkey for v in hsm_audit_verifiers(hsm, ORIGIN)] == [vkey]
    assert HsmNoteSigner(hsm, ORIGIN).public_key == signer.public_key  # the same current key


@pytest.mark.hsm
def test_hsm_rotation_keeps_old_checkpoints_verifiable(hsm: Hsm) -> None:
    old = HsmNoteSigner(hsm, ORIGIN)
    old_note = sign_checkpoint(_checkpoint(7), [old])
    hsm.rotate("audit")
    new = HsmNoteSigner(hsm, ORIGIN)
    assert new.public_key != old.public_key
    new_note = sign_checkpoint(_checkpoint(8), [new])
    published = [v.vkey for v in hsm_audit_verifiers(hsm, ORIGIN)]
    assert published == [verifier_key(old), verifier_key(new)]  # oldest first
    assert open_checkpoint(old_note, published).tree_size == 7
    assert open_checkpoint(new_note, published).tree_size == 8
    with pytest.raises(NoteUnverified):
        open_note(new_note, [verifier_key(old)])


@pytest.mark.hsm
def test_hsm_signer_without_audit_key_and_create_false(hsm: Hsm) -> None:
    from gli_core.hsm import HsmUnavailable

    with pytest.raises(HsmUnavailable):
        HsmNoteSigner(hsm, ORIGIN, create=False)
    with pytest.raises(NoteKeyInvalid):
        HsmNoteSigner(hsm, "bad name")


# -- the KMS signer (moto's standalone server) -------------------------------------------------


def test_kms_signer_signs_checkpoints_verified_offline(moto_server: MotoServer) -> None:
    kms = moto_server.client("kms")
    alias = f"alias/{unique_name()}"
    key_id = create_kms_audit_key(kms, alias)
    assert create_kms_audit_key(kms, alias) == key_id  # idempotent: the alias is reused
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeySpec"] == "ECC_NIST_P256"
    signer = KmsNoteSigner(kms, alias, ORIGIN)
    assert signer.sig_type == SIG_ECDSA
    assert key_id in signer.kms_key_id
    text = sign_checkpoint(_checkpoint(), [signer])
    vkey = verifier_key(signer)  # published once; verification needs no KMS
    verifier = NoteVerifier.parse(vkey)
    assert verifier.key_hash == hashlib.sha256(signer.public_key).digest()[:4]
    assert open_checkpoint(text, [vkey], origin=ORIGIN) == _checkpoint()
    assert KmsNoteSigner(kms, key_id, ORIGIN).public_key == signer.public_key
    # the KMS key's own Verify agrees with ours
    body = checkpoint_body(_checkpoint()).encode()
    raw = base64.b64decode(text.split("\n\n")[1].split(" ")[2])
    ok = kms.verify(KeyId=key_id, Message=body, MessageType="RAW", Signature=raw[4:], SigningAlgorithm="ECDSA_SHA_256")
    assert ok["SignatureValid"]
    # and both key types sign one note
    both = sign_checkpoint(_checkpoint(), [signer, _signer()])
    assert open_note(both, [vkey, verifier_key(_signer())]).verified_by == (vkey, verifier_key(_signer()))


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("ECC_NIST_P384", "SIGN_VERIFY"), ("RSA_2048", "SIGN_VERIFY"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")],
)
def test_kms_key_of_another_spec_is_refused(moto_server: MotoServer, spec: str, usage: str) -> None:
    kms = moto_server.client("kms")
    key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    with pytest.raises(AuditSignerMisconfigured) as exc:
        KmsNoteSigner(kms, key_id, ORIGIN)
    assert exc.value.status == 500
    alias = f"alias/{unique_name()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    with pytest.raises(AuditSignerMisconfigured, match="ECC_NIST_P256"):
        create_kms_audit_key(kms, alias)  # the alias exists but names the wrong kind of key


class _RacingKms:
    """A KMS client on which another process creates the alias just before this one does."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms
        self.winner = self.loser = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kms, name)

    def create_alias(self, AliasName: str, TargetKeyId: str) -> Any:
        self.loser = TargetKeyId
        self.winner = self._kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        self._kms.create_alias(AliasName=AliasName, TargetKeyId=self.winner)
        return self._kms.create_alias(AliasName=AliasName, TargetKeyId=TargetKeyId)


def test_kms_key_creation_race_keeps_the_first_alias(moto_server: MotoServer) -> None:
    kms = moto_server.client("kms")
    racing = _RacingKms(kms)
    alias = f"alias/{unique_name()}"
    assert create_kms_audit_key(racing, alias) == racing.winner
    assert create_kms_audit_key(kms, alias) == racing.winner
    assert racing.loser and racing.loser != racing.winner
    assert kms.describe_key(KeyId=racing.loser)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_kms_missing_key_is_misconfigured(moto_server: MotoServer) -> None:
    kms = moto_server.client("kms")
    with pytest.raises(AuditSignerMisconfigured) as exc:
        KmsNoteSigner(kms, "alias/" + unique_name(), ORIGIN)
    assert exc.value.code == "audit_signer_misconfigured"
    assert exc.value.extra["kms_error"] == "NotFoundException"


def test_kms_endpoint_down_is_unavailable(moto_server: MotoServer) -> None:
    port = urlparse(moto_server.endpoint).port
    assert port is not None
    with TcpCut(port) as cut:
        kms = moto_server.client(
            "kms", endpoint=cut.endpoint, retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5
        )
        signer = KmsNoteSigner(kms, create_kms_audit_key(kms, f"alias/{unique_name()}"), ORIGIN)
        sign_checkpoint(_checkpoint(), [signer])
        cut.cut()
        with pytest.raises(AuditSignerUnavailable) as exc:
            sign_checkpoint(_checkpoint(), [signer])
        assert (exc.value.code, exc.value.status) == ("audit_signer_unavailable", 503)
        with pytest.raises(AuditSignerUnavailable):
            KmsNoteSigner(kms, signer.kms_key_id, ORIGIN)
        with pytest.raises(AuditSignerUnavailable):
            create_kms_audit_key(kms, f"alias/{unique_name()}")
        cut.restore()
        assert open_note(sign_checkpoint(_checkpoint(), [signer]), [verifier_key(signer)])


class _FakeKms:
    """A KMS stand-in with the DIGEST semantics of ``kms.sign`` (moto's server lacks them)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[dict[str, Any]] = []

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "KeyId": "arn:aws:kms:us-east-1:123456789012:key/fake",
            "PublicKey": der,
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["ECDSA_SHA_256"],
        }

    def sign(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if kwargs["MessageType"] == "RAW":
            assert len(kwargs["Message"]) <= 4096
            signature = self.private.sign(kwargs["Message"], ec.ECDSA(hashes.SHA256()))
        else:
            assert len(kwargs["Message"]) == 32
            signature = self.private.sign(kwargs["Message"], ec.ECDSA(Prehashed(hashes.SHA256())))
        return {"Signature": signature, "KeyId": kwargs["KeyId"], "SigningAlgorithm": kwargs["SigningAlgorithm"]}


def test_kms_long_messages_are_signed_as_digest() -> None:
    fake = _FakeKms()
    signer = KmsNoteSigner(fake, "alias/whatever", ORIGIN)
    long_body = checkpoint_body(_checkpoint(7, ("x" * 5000,)))
    text = sign_note(long_body, [signer])
    assert fake.calls[-1]["MessageType"] == "DIGEST"
    assert fake.calls[-1]["KeyId"].endswith("key/fake")  # pinned to the ARN, not the alias
    assert open_note(text, [verifier_key(signer)]).body == long_body
    sign_note(checkpoint_body(_checkpoint()), [signer])
    assert fake.calls[-1]["MessageType"] == "RAW"


if __name__ == "__main__":
    _write_vectors()
    print(f"wrote {len(build_vectors())} files to {VECTORS}", file=sys.stderr)
