"""RSA-FDH-VRF-SHA256, the verifiable random function of RFC 9381 section 4 (suite 0x01).

Notation of RFC 8017: ``(n, e)`` the RSA public key, ``k`` the length of ``n`` in octets,
I2OSP/OS2IP big-endian integer <-> octet string, MGF1 with SHA-256 (RFC 8017 B.2.1)::

    suite_string = 0x01
    MGF_salt     = I2OSP(k, 4) || I2OSP(n, k)                          (section 4.4)
    EM           = MGF1(suite_string || 0x01 || MGF_salt || alpha, k - 1)
    prove:  pi   = I2OSP(RSASP1(K, OS2IP(EM)), k)                      (section 4.1)
    hash:   beta = SHA-256(suite_string || 0x02 || pi)                 (section 4.2)
    verify: RSAVP1((n, e), OS2IP(pi)) == OS2IP(EM), then beta         (section 4.3)

The private operation is injected: :func:`prove` takes ``rsasp1``, a function that raises an
integer to the private exponent modulo ``n``. In production that is the HSM computing raw RSA
(PKCS#11 ``CKM_RSA_X_509`` on the ``k``-octet I2OSP of the integer), so the key never leaves
the token; tests pass a software key. :func:`prove` checks the result with the public key before
returning it, so a faulty token cannot publish a proof that does not verify.

RSA-FDH-VRF has *trusted* uniqueness only (RFC 9381 sections 3.3 and 7.1.1): a key pair that
was not generated honestly (``n`` or ``e`` not as RFC 8017 section 3 requires) could admit
several valid proofs for one input. ``docs/draw-proof.md`` describes how the draw key is
generated and witnessed. :func:`check_public_key` refuses the keys that are visibly wrong
(modulus below 2048 bits, even modulus, ``e`` outside ``[3, n)`` or even).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

from gli_core.errors import CoreError

__all__ = [
    "MIN_MODULUS_BITS",
    "SUITE",
    "SUITE_STRING",
    "VrfInvalid",
    "VrfPublicKey",
    "check_public_key",
    "encode_to_em",
    "mgf1_sha256",
    "proof_to_hash",
    "prove",
    "verify",
]

SUITE = "RSA-FDH-VRF-SHA256"
SUITE_STRING = b"\x01"
MGF_DOMAIN_SEPARATOR = b"\x01"
PROOF_TO_HASH_DOMAIN_SEPARATOR = b"\x02"
HASH_LEN = 32
MIN_MODULUS_BITS = 2048


class VrfInvalid(CoreError):
    """A VRF proof does not verify, or a VRF key or private operation is unusable."""

    code = "vrf_invalid"
    status = 422


def _i2osp(x: int, length: int) -> bytes:
    """I2OSP of RFC 8017 4.1 (raises ``OverflowError`` when ``x`` does not fit)."""
    return x.to_bytes(length, "big")


def _os2ip(octets: bytes) -> int:
    """OS2IP of RFC 8017 4.2."""
    return int.from_bytes(octets, "big")


def mgf1_sha256(seed: bytes, length: int) -> bytes:
    """MGF1 of RFC 8017 B.2.1 with SHA-256: ``SHA-256(seed || I2OSP(counter, 4))`` for counter 0, 1, ..."""
    if length < 0 or length > (1 << 32) * HASH_LEN:
        raise ValueError("mask too long")
    blocks = [hashlib.sha256(seed + _i2osp(counter, 4)).digest() for counter in range(-(-length // HASH_LEN))]
    return b"".join(blocks)[:length]


def _modulus_octets(n: int) -> int:
    return (n.bit_length() + 7) // 8


def check_public_key(n: int, e: int) -> None:
    """Refuse a public key that RSA-FDH-VRF cannot safely use.

    Raises:
        VrfInvalid: the modulus is below :data:`MIN_MODULUS_BITS` bits or even, or ``e`` is not an
            odd integer in ``[3, n)``.
    """
    if n.bit_length() < MIN_MODULUS_BITS:
        raise VrfInvalid(f"the RSA modulus has {n.bit_length()} bits; at least {MIN_MODULUS_BITS} are required")
    if n % 2 == 0:
        raise VrfInvalid("the RSA modulus is even")
    if not (3 <= e < n) or e % 2 == 0:
        raise VrfInvalid("the RSA public exponent must be odd and in [3, n)")


def encode_to_em(alpha: bytes, n: int) -> bytes:
    """``EM = MGF1(suite_string || 0x01 || MGF_salt || alpha, k - 1)`` (RFC 9381 4.1 step 2, 4.4)."""
    k = _modulus_octets(n)
    mgf_salt = _i2osp(k, 4) + _i2osp(n, k)
    return mgf1_sha256(SUITE_STRING + MGF_DOMAIN_SEPARATOR + mgf_salt + alpha, k - 1)


def proof_to_hash(pi: bytes) -> bytes:
    """``beta = SHA-256(suite_string || 0x02 || pi)`` (RFC 9381 4.2).

    Only for a ``pi`` that :func:`prove` made or :func:`verify` accepted.
    """
    return hashlib.sha256(SUITE_STRING + PROOF_TO_HASH_DOMAIN_SEPARATOR + pi).digest()


def prove(alpha: bytes, *, n: int, e: int, rsasp1: Callable[[int], int]) -> bytes:
    """The VRF proof ``pi`` of ``alpha`` (RFC 9381 4.1), ``k`` octets.

    Args:
        alpha: the VRF input.
        n: the RSA modulus of the key.
        e: its public exponent (to check the result).
        rsasp1: RSASP1 of RFC 8017 5.2.1 with the private key: ``m -> m^d mod n``.

    Raises:
        VrfInvalid: the key is refused by :func:`check_public_key`, or ``rsasp1`` returned a value
            that is not the RSA signature representative of ``EM`` (a faulty or wrong token).
    """
    check_public_key(n, e)
    k = _modulus_octets(n)
    m = _os2ip(encode_to_em(alpha, n))
    s = rsasp1(m)
    if not 0 <= s < n or pow(s, e, n) != m:
        raise VrfInvalid("the private RSA operation returned a wrong result (wrong key or faulty token)")
    return _i2osp(s, k)


def verify(alpha: bytes, pi: bytes, *, n: int, e: int) -> bytes:
    """Verify ``pi`` for ``alpha`` under ``(n, e)`` and return ``beta`` (RFC 9381 4.3).

    Raises:
        VrfInvalid: the proof is not valid (``INVALID`` in the RFC), including a ``pi`` that is
            not exactly ``k`` octets, or the key is refused by :func:`check_public_key`.
    """
    check_public_key(n, e)
    k = _modulus_octets(n)
    if len(pi) != k:
        raise VrfInvalid(f"the proof is {len(pi)} octets; the key needs exactly {k}")
    s = _os2ip(pi)
    if s >= n:  # RSAVP1: "signature representative out of range"
        raise VrfInvalid("the proof is out of range for the key")
    if pow(s, e, n) != _os2ip(encode_to_em(alpha, n)):
        raise VrfInvalid("the proof does not verify for this input and key")
    return proof_to_hash(pi)


@dataclass(frozen=True)
class VrfPublicKey:
    """The public half ``(n, e)`` of the draw's RSA-FDH-VRF key.

    ``fingerprint`` (SHA-256 of the DER ``SubjectPublicKeyInfo``, what
    ``openssl pkey -pubin -outform DER | sha256sum`` prints) is published when sales open;
    ``key_id`` is derived from it, so neither can be chosen.
    """

    n: int
    e: int

    def __post_init__(self) -> None:
        check_public_key(self.n, self.e)

    @property
    def k(self) -> int:
        """Length of the modulus in octets (also the length of every proof)."""
        return _modulus_octets(self.n)

    def spki_der(self) -> bytes:
        """The DER ``SubjectPublicKeyInfo`` (rsaEncryption) of the key."""
        return (
            RSAPublicNumbers(self.e, self.n)
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    @property
    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of :meth:`spki_der`."""
        return hashlib.sha256(self.spki_der()).hexdigest()

    @property
    def key_id(self) -> str:
        """``rsa-fdh-vrf-sha256:`` + the first 16 hex digits of :attr:`fingerprint`."""
        return f"rsa-fdh-vrf-sha256:{self.fingerprint[:16]}"

    def to_dict(self) -> dict[str, Any]:
        """The ``vrf`` member of a draw proof."""
        return {
            "suite": SUITE,
            "key_id": self.key_id,
            "fingerprint": self.fingerprint,
            "n": _i2osp(self.n, self.k).hex(),
            "e": self.e,
        }
