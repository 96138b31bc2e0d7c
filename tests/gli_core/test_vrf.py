"""RSA-FDH-VRF-SHA256 (RFC 9381 section 4) against the RFC's Appendix A.1 vectors, with the
private operation injected as a software RSASP1 (the HSM's CKM_RSA_X_509 in production)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core.draw import vrf
from gli_core.draw.vrf import VrfInvalid, VrfPublicKey

HERE = Path(__file__).resolve()
VECTOR_DIR = HERE.parents[1] / "vectors" / "rfc9381"
VECTOR_FILE = VECTOR_DIR / "rsa-fdh-vrf-sha256.json"
DRAFT = HERE.parents[3] / "shared" / "vectors" / "draft-irtf-cfrg-vrf-15.txt"
DATA = json.loads(VECTOR_FILE.read_text())
VECTORS: list[dict[str, Any]] = DATA["vectors"]


def _key(bits: int) -> tuple[int, int, int]:
    k = DATA["keys"][str(bits)]
    return int(k["n"], 16), int(k["e"], 16), int(k["d"], 16)


def software_rsasp1(n: int, d: int) -> Callable[[int], int]:
    """RSASP1 of RFC 8017 5.2.1 with a software key: ``m -> m^d mod n``."""

    def rsasp1(m: int) -> int:
        assert 0 <= m < n
        return pow(m, d, n)

    return rsasp1


N, E, D = _key(2048)
RSASP1 = software_rsasp1(N, D)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def test_three_sha256_vectors_with_their_keys() -> None:
    assert [(v["example"], v["key_bits"]) for v in VECTORS] == [(1, 2048), (2, 3072), (3, 4096)]
    for bits in (2048, 3072, 4096):
        k = DATA["keys"][str(bits)]
        p, q, n = int(k["p"], 16), int(k["q"], 16), int(k["n"], 16)
        assert p * q == n and n.bit_length() == bits


@pytest.mark.skipif(not DRAFT.exists(), reason="the shared draft text is not next to the repository")
def test_vector_file_is_what_the_draft_says() -> None:
    spec = importlib.util.spec_from_file_location("extract_rsa_fdh_vrf", VECTOR_DIR / "extract_rsa_fdh_vrf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.extract(DRAFT.read_text(encoding="utf-8")) == DATA


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"example-{v['example']}-{v['key_bits']}bit")
def test_rfc9381_appendix_a1(vector: dict[str, Any]) -> None:
    n, e, d = _key(vector["key_bits"])
    alpha = bytes.fromhex(vector["alpha"])
    assert vrf.encode_to_em(alpha, n).hex() == vector["EM"]
    pi = vrf.prove(alpha, n=n, e=e, rsasp1=software_rsasp1(n, d))
    assert pi.hex() == vector["pi"]
    assert vrf.proof_to_hash(pi).hex() == vector["beta"]
    assert vrf.verify(alpha, pi, n=n, e=e).hex() == vector["beta"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"example-{v['example']}")
def test_a_flipped_bit_in_pi_fails(vector: dict[str, Any]) -> None:
    n, e, _ = _key(vector["key_bits"])
    alpha, pi = bytes.fromhex(vector["alpha"]), bytes.fromhex(vector["pi"])
    for bit in range(0, 8 * len(pi), 97):  # a spread of positions, first and last byte included
        with pytest.raises(VrfInvalid):
            vrf.verify(alpha, _flip(pi, bit), n=n, e=e)
    with pytest.raises(VrfInvalid):
        vrf.verify(alpha, _flip(pi, 8 * len(pi) - 1), n=n, e=e)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"example-{v['example']}")
def test_a_changed_alpha_fails(vector: dict[str, Any]) -> None:
    n, e, _ = _key(vector["key_bits"])
    alpha, pi = bytes.fromhex(vector["alpha"]), bytes.fromhex(vector["pi"])
    with pytest.raises(VrfInvalid):
        vrf.verify(alpha + b"\x00", pi, n=n, e=e)
    for bit in range(8 * len(alpha)):
        with pytest.raises(VrfInvalid):
            vrf.verify(_flip(alpha, bit), pi, n=n, e=e)


def test_another_key_fails() -> None:
    v = VECTORS[0]
    n3, e3, _ = _key(3072)
    with pytest.raises(VrfInvalid):
        vrf.verify(b"", bytes.fromhex(v["pi"]), n=n3, e=e3)


def test_pi_must_be_exactly_k_octets_and_below_n() -> None:
    pi = bytes.fromhex(VECTORS[0]["pi"])
    for bad in (b"\x00" + pi, pi[1:], pi + b"\x00", b""):
        with pytest.raises(VrfInvalid):
            vrf.verify(b"", bad, n=N, e=E)
    with pytest.raises(VrfInvalid, match="out of range"):
        vrf.verify(b"", N.to_bytes(256, "big"), n=N, e=E)


def test_prove_checks_what_the_token_returns() -> None:
    with pytest.raises(VrfInvalid, match="wrong result"):
        vrf.prove(b"x", n=N, e=E, rsasp1=lambda m: m)
    with pytest.raises(VrfInvalid, match="wrong result"):
        vrf.prove(b"x", n=N, e=E, rsasp1=lambda m: (RSASP1(m) + 1) % N)
    with pytest.raises(VrfInvalid, match="wrong result"):
        vrf.prove(b"x", n=N, e=E, rsasp1=lambda m: RSASP1(m) + N)


def test_weak_keys_are_refused() -> None:
    small = 0xC5 << 1016 | 1  # 1024-bit odd number: too short whatever it factors into
    with pytest.raises(VrfInvalid, match="2048"):
        vrf.check_public_key(small, 65537)
    for e in (1, 2, 65536, N, N + 2):
        with pytest.raises(VrfInvalid, match="exponent"):
            vrf.check_public_key(N, e)
    with pytest.raises(VrfInvalid, match="even"):
        vrf.check_public_key(N + 1, 65537)
    with pytest.raises(VrfInvalid):
        VrfPublicKey(small, 65537)


def test_public_key_fingerprint_and_id() -> None:
    key = VrfPublicKey(N, E)
    # openssl pkey -pubin -outform DER | sha256sum, on the RFC 9381 2048-bit key:
    assert key.fingerprint == "29441f3a319b1bf4ba87c77d944929fd409f1e489a5b55b137eef8b9d1eda152"
    assert key.key_id == "rsa-fdh-vrf-sha256:29441f3a319b1bf4"
    assert key.k == 256
    assert key.to_dict() == {
        "suite": "RSA-FDH-VRF-SHA256",
        "key_id": key.key_id,
        "fingerprint": key.fingerprint,
        "n": DATA["keys"]["2048"]["n"],
        "e": 65537,
    }


def test_mgf1_lengths() -> None:
    assert vrf.mgf1_sha256(b"seed", 0) == b""
    long = vrf.mgf1_sha256(b"seed", 100)
    assert len(long) == 100 and vrf.mgf1_sha256(b"seed", 33) == long[:33]


@given(st.binary(max_size=200))
@settings(max_examples=25, deadline=None)
def test_prove_then_verify_round_trip(alpha: bytes) -> None:
    pi = vrf.prove(alpha, n=N, e=E, rsasp1=RSASP1)
    assert len(pi) == 256
    assert vrf.verify(alpha, pi, n=N, e=E) == vrf.proof_to_hash(pi)
    assert vrf.prove(alpha, n=N, e=E, rsasp1=RSASP1) == pi  # deterministic: one proof per input
