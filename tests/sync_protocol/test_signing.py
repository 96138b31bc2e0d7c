"""Ed25519 signing, key ids, base64url and pinned key rings."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.errors import BadSignature, Malformed, UnknownKey
from sync_protocol.signing import (
    KeyRing,
    PublicKey,
    SoftwareSigner,
    b64u_decode,
    b64u_encode,
    key_id_for,
    verify,
)
from tests.sync_protocol.strategies import relaxed, seeds, signers

messages = st.binary(max_size=300)


@relaxed
@given(signers, messages)
def test_sign_verify_round_trip(signer: SoftwareSigner, message: bytes) -> None:
    signature = signer.sign(message)
    assert len(signature) == 64
    verify(signer.public_key, signature, message)
    assert signer.sign(message) == signature, "Ed25519 is deterministic"


@relaxed
@given(signers, messages.filter(bool), st.data())
def test_any_byte_flip_in_the_message_fails(signer: SoftwareSigner, message: bytes, data: st.DataObject) -> None:
    signature = signer.sign(message)
    i = data.draw(st.integers(0, len(message) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = message[:i] + bytes([message[i] ^ mask]) + message[i + 1 :]
    with pytest.raises(BadSignature):
        verify(signer.public_key, signature, flipped)


@relaxed
@given(signers, messages, st.data())
def test_any_byte_flip_in_the_signature_fails(signer: SoftwareSigner, message: bytes, data: st.DataObject) -> None:
    signature = signer.sign(message)
    i = data.draw(st.integers(0, 63), label="index")
    mask = data.draw(st.integers(1, 255), label="xor")
    flipped = signature[:i] + bytes([signature[i] ^ mask]) + signature[i + 1 :]
    with pytest.raises(BadSignature):
        verify(signer.public_key, flipped, message)


@relaxed
@given(signers, signers, messages)
def test_another_key_fails(a: SoftwareSigner, b: SoftwareSigner, message: bytes) -> None:
    if a.public_key != b.public_key:
        with pytest.raises(BadSignature):
            verify(b.public_key, a.sign(message), message)


@pytest.mark.parametrize("signature", [b"", b"\x00" * 63, b"\x00" * 65])
def test_signature_of_wrong_length_fails(signature: bytes) -> None:
    signer = SoftwareSigner.from_seed(b"\x01" * 32)
    with pytest.raises(BadSignature):
        verify(signer.public_key, signature, b"m")


def test_public_key_of_wrong_length_fails() -> None:
    with pytest.raises(BadSignature):
        verify(b"\x01" * 31, b"\x00" * 64, b"m")


@relaxed
@given(st.binary(max_size=100))
def test_b64u_round_trip_without_padding(data: bytes) -> None:
    text = b64u_encode(data)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", text)
    assert b64u_decode(text) == data


@pytest.mark.parametrize("text", ["A", "AAAAA", "é"])
def test_b64u_decode_refuses_junk(text: str) -> None:
    with pytest.raises(Malformed):
        b64u_decode(text)


@relaxed
@given(seeds)
def test_key_id_format(seed: bytes) -> None:
    signer = SoftwareSigner.from_seed(seed)
    assert re.fullmatch(r"ed25519:[0-9a-f]{16}", signer.key_id)
    assert signer.key_id == key_id_for(signer.public_key)


def test_key_id_of_the_vector_key() -> None:
    assert SoftwareSigner.from_seed(b"\x01" * 32).key_id == "ed25519:34750f98bd59fcfc"


@relaxed
@given(signers)
def test_public_key_round_trip(signer: SoftwareSigner) -> None:
    key = PublicKey(key_id=signer.key_id, public_key=signer.public_key)
    assert PublicKey.from_dict(key.to_dict()) == key


@pytest.mark.parametrize(
    "change",
    [
        {"key_id": "ed25519:0000000000000000"},
        {"algorithm": "rsa"},
        {"public_key": b64u_encode(b"\x01" * 31)},
        {"public_key": "%%%"},
    ],
    ids=["id-mismatch", "algorithm", "short-key", "not-base64"],
)
def test_public_key_refuses_inconsistent_keys(change: dict[str, str]) -> None:
    signer = SoftwareSigner.from_seed(b"\x01" * 32)
    data = PublicKey(key_id=signer.key_id, public_key=signer.public_key).to_dict() | change
    with pytest.raises(Malformed):
        PublicKey.from_dict(data)


def test_public_key_missing_member_is_malformed() -> None:
    with pytest.raises(Malformed):
        PublicKey.from_dict({"key_id": "ed25519:0000000000000000"})


def test_key_ring_verifies_by_key_id() -> None:
    a, b = SoftwareSigner.from_seed(b"\x01" * 32), SoftwareSigner.from_seed(b"\x04" * 32)
    ring = KeyRing([PublicKey(key_id=a.key_id, public_key=a.public_key)])
    ring.verify(a.key_id, a.sign(b"m"), b"m")
    assert a.key_id in ring and b.key_id not in ring
    with pytest.raises(UnknownKey):
        ring.verify(b.key_id, b.sign(b"m"), b"m")
    ring.add(PublicKey(key_id=b.key_id, public_key=b.public_key))
    ring.verify(b.key_id, b.sign(b"m"), b"m")
    assert {k.key_id for k in ring.keys()} == {a.key_id, b.key_id}
    with pytest.raises(BadSignature):
        ring.verify(a.key_id, b.sign(b"m"), b"m")


def test_pem_round_trip() -> None:
    signer = SoftwareSigner.generate()
    again = SoftwareSigner.from_pem(signer.to_pem())
    assert again.key_id == signer.key_id
    verify(signer.public_key, again.sign(b"m"), b"m")


def test_pem_of_another_algorithm_is_malformed() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(Malformed):
        SoftwareSigner.from_pem(pem)
