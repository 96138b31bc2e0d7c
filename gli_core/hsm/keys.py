"""Keys that live in the token: labels with a generation, rotation, and the key handles.

A purpose key is labelled ``{prefix}-{purpose}-{YYYYMMDDTHHMMSSZ}-{tag}``, e.g.
``tombola-grant-20261125T101500Z-3f9a``: the UTC time it was generated and four hex digits
from the token's RNG (two processes generating in the same second get two labels). Labels sort
by age; the newest key of a purpose is its current key, the older ones stay in the token so
that grants and proofs they signed still verify (rotation never destroys a key).

Key ids:

- Ed25519: ``sync_protocol.signing.key_id_for`` (``ed25519:`` + 16 hex digits of SHA-256 over
  the raw 32-byte public key), the id devices pin.
- RSA (the draw's VRF key): ``rsa-fdh-vrf-sha256:`` + the first 16 hex digits of its
  fingerprint, SHA-256 of the DER SubjectPublicKeyInfo: the one id the key has everywhere (the
  token's key list, ``key.generated`` in the audit log, the draw status and the proof's
  ``vrf.key_id``, ``docs/draw-proof.md`` section 3).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from pkcs11 import Mechanism

from sync_protocol.signing import PublicKey, key_id_for

ED25519 = "ed25519"
RSA = "rsa"

#: The algorithm of each purpose's keys: grant signing, the draw VRF (RSA-FDH-VRF, RFC 9381),
#: audit checkpoints.
PURPOSES: dict[str, str] = {"grant": ED25519, "vrf": RSA, "audit": ED25519}
RSA_BITS = 2048
DEFAULT_ROTATION_DAYS = 90

_STAMP = "%Y%m%dT%H%M%SZ"
_LABEL = re.compile(r"^(?P<prefix>.+)-(?P<purpose>[a-z0-9]+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<tag>[0-9a-f]{4})$")


@dataclass(frozen=True)
class KeyLabel:
    """The parts of a purpose key's label."""

    prefix: str
    purpose: str
    created_at: datetime
    tag: str

    def __str__(self) -> str:
        return f"{self.prefix}-{self.purpose}-{self.created_at.astimezone(UTC).strftime(_STAMP)}-{self.tag}"

    @classmethod
    def parse(cls, label: str) -> KeyLabel | None:
        """The parts of ``label``, or None when it is not a purpose key's label."""
        m = _LABEL.match(label)
        if m is None:
            return None
        created = datetime.strptime(m["stamp"], _STAMP).replace(tzinfo=UTC)
        return cls(prefix=m["prefix"], purpose=m["purpose"], created_at=created, tag=m["tag"])


def rotation_due(created_at: datetime, *, days: int = DEFAULT_ROTATION_DAYS, now: datetime | None = None) -> bool:
    """True when a key generated at ``created_at`` is ``days`` old or older."""
    now = now or datetime.now(UTC)
    return now - created_at >= timedelta(days=days)


def rsa_key_id(n: int, e: int) -> str:
    """``rsa-fdh-vrf-sha256:`` + 16 hex digits of SHA-256(DER SubjectPublicKeyInfo of ``(n, e)``):
    the same id as ``gli_core.draw.vrf.VrfPublicKey(n, e).key_id`` (one key, one id)."""
    der = (
        RSAPublicNumbers(e, n)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return f"rsa-fdh-vrf-sha256:{hashlib.sha256(der).hexdigest()[:16]}"


class _PrivateOps(Protocol):
    def _private_op(self, label: str, mechanism: Mechanism, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class HsmPublicKey:
    """The public part of a key in the token (what verifiers need, for any generation)."""

    label: str
    purpose: str | None
    algorithm: str
    key_id: str
    created_at: datetime | None
    #: Ed25519: the raw 32 bytes; RSA: DER SubjectPublicKeyInfo.
    public_key: bytes
    n: int | None = None
    e: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "purpose": self.purpose,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created_at else None,
            "public_key": self.public_key.hex(),
        }


class HsmEd25519Signer:
    """An Ed25519 key in the token; a :class:`sync_protocol.signing.Signer` (CKM_EDDSA)."""

    algorithm = ED25519

    def __init__(self, ops: _PrivateOps, label: str, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
        self._ops = ops
        self.label = label
        self._public = public_key
        self._key_id = key_id_for(public_key)
        parsed = KeyLabel.parse(label)
        self.purpose = parsed.purpose if parsed else None
        self.created_at = parsed.created_at if parsed else None

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (pure Ed25519, RFC 8032) inside the token.

        Raises:
            HsmUnavailable: the token cannot be used.
        """
        return self._ops._private_op(self.label, Mechanism.EDDSA, message)

    def to_public_key(self) -> PublicKey:
        """The key as the server publishes it to devices."""
        return PublicKey(key_id=self._key_id, public_key=self._public)

    def public(self) -> HsmPublicKey:
        return HsmPublicKey(self.label, self.purpose, ED25519, self._key_id, self.created_at, self._public)

    def __repr__(self) -> str:
        return f"HsmEd25519Signer({self.label!r}, {self._key_id})"


class HsmRsaKey:
    """An RSA key in the token whose private operation (RSASP1, RFC 8017 section 5.2.1) runs
    inside it with CKM_RSA_X_509: what RSA-FDH-VRF proving (RFC 9381 section 5) needs."""

    algorithm = RSA

    def __init__(self, ops: _PrivateOps, label: str, n: int, e: int) -> None:
        self._ops = ops
        self.label = label
        self.n = n
        self.e = e
        self.bits = n.bit_length()
        #: k, the length of the modulus in bytes
        self.size = (self.bits + 7) // 8
        self.key_id = rsa_key_id(n, e)
        parsed = KeyLabel.parse(label)
        self.purpose = parsed.purpose if parsed else None
        self.created_at = parsed.created_at if parsed else None

    def raw_rsa(self, m: int) -> int:
        """RSASP1: ``m^d mod n`` computed in the token (``0 <= m < n``).

        Raises:
            ValueError: ``m`` is out of range.
            HsmUnavailable: the token cannot be used.
        """
        if not 0 <= m < self.n:
            raise ValueError("RSASP1 needs 0 <= m < n")
        out = self.raw_rsa_bytes(m.to_bytes(self.size, "big"))
        return int.from_bytes(out, "big")

    def raw_rsa_bytes(self, m: bytes) -> bytes:
        """RSASP1 on the big-endian ``m`` of exactly ``size`` bytes; the result has ``size`` bytes."""
        if len(m) != self.size or int.from_bytes(m, "big") >= self.n:
            raise ValueError(f"RSASP1 needs {self.size} big-endian bytes of an integer below n")
        out = self._ops._private_op(self.label, Mechanism.RSA_X_509, m)
        return out.rjust(self.size, b"\0")

    def public_key_der(self) -> bytes:
        """DER SubjectPublicKeyInfo of the public key."""
        key = RSAPublicNumbers(self.e, self.n).public_key()
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def public(self) -> HsmPublicKey:
        return HsmPublicKey(
            self.label,
            self.purpose,
            f"rsa{self.bits}",
            self.key_id,
            self.created_at,
            self.public_key_der(),
            self.n,
            self.e,
        )

    def __repr__(self) -> str:
        return f"HsmRsaKey({self.label!r}, {self.key_id})"
