"""Ed25519 signatures (RFC 8032) and key ids.

Keys travel as base64url without padding (RFC 4648 section 5) of their 32 raw bytes; a key id
is ``"ed25519:"`` followed by the first 16 hex digits of SHA-256 over the raw public key.
Signatures are 64 bytes, base64url without padding.

Who signs what is abstracted by :class:`Signer`, so the grant-signing key can live in software
(tests, a device) or in an HSM through PKCS#11 without the callers changing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync_protocol.errors import BadSignature, Malformed, UnknownKey

ALGORITHM = "ed25519"


def b64u_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Inverse of :func:`b64u_encode`; raises :class:`Malformed` on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Malformed(f"not base64url: {text[:20]!r}") from exc


def key_id_for(public_key: bytes) -> str:
    """``ed25519:`` + first 16 hex digits of SHA-256(raw public key)."""
    return f"{ALGORITHM}:{hashlib.sha256(public_key).hexdigest()[:16]}"


class Signer(Protocol):
    """Anything that signs with an Ed25519 key it may not reveal."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class SoftwareSigner:
    """A :class:`Signer` over an in-memory Ed25519 private key (devices, tests)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._key_id = key_id_for(self._public)

    @classmethod
    def generate(cls) -> SoftwareSigner:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SoftwareSigner:
        """A key from a 32-byte seed (test vectors)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> SoftwareSigner:
        """Load a PKCS#8 PEM private key."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise Malformed("the PEM key is not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM of the private key (for a device's own key file only)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def verify(public_key: bytes, signature: bytes, message: bytes, *, what: str = "message") -> None:
    """Verify an Ed25519 signature; raise :class:`BadSignature` naming ``what`` if it fails."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise BadSignature(f"the signature on the {what} does not verify") from exc


@dataclass(frozen=True)
class PublicKey:
    """A public key as published by the server (``server_keys`` in enrollment)."""

    key_id: str
    public_key: bytes
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "public_key": b64u_encode(self.public_key),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> PublicKey:
        try:
            key = b64u_decode(data["public_key"])
            kid, alg = data["key_id"], data.get("algorithm", ALGORITHM)
        except KeyError as exc:
            raise Malformed(f"server key without {exc.args[0]}") from exc
        if alg != ALGORITHM or len(key) != 32:
            raise Malformed(f"server key {kid} is not a 32-byte Ed25519 key")
        if key_id_for(key) != kid:
            raise Malformed(f"server key id {kid} does not match its key")
        return cls(key_id=kid, public_key=key, algorithm=alg)


class KeyRing:
    """Pinned public keys by key id; verifies a signature by the key it names."""

    def __init__(self, keys: list[PublicKey] | None = None) -> None:
        self._keys: dict[str, PublicKey] = {k.key_id: k for k in keys or []}

    def add(self, key: PublicKey) -> None:
        self._keys[key.key_id] = key

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def keys(self) -> list[PublicKey]:
        return list(self._keys.values())

    def verify(self, key_id: str, signature: bytes, message: bytes, *, what: str = "message") -> None:
        """Verify with the key named ``key_id``; :class:`UnknownKey` if it is not pinned."""
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(f"the {what} is signed by key {key_id}, which is not pinned here")
        verify(key.public_key, signature, message, what=what)
