"""Seller PINs: the one hash the server writes and the device verifies offline.

A PIN is 4 to 8 ASCII digits (:func:`check_pin`). Only a slow, salted hash of it is stored on
the server and sent to the devices of the seller's venue (``SellerInfo``, ``docs/sync-protocol.md``
section 7), so a device can check a PIN with no server and with the standard library only
(``hashlib.scrypt``, present in every CPython built with OpenSSL 1.1+, Android included).

The scheme is fixed and named ``scrypt-n16384-r8-p1`` (:data:`PIN_SCHEME`)::

    salt     = 16 random bytes, one per seller (each new PIN gets a new salt)
    pin_hash = scrypt(password=PIN as ASCII, salt=salt, n=16384, r=8, p=1, dklen=32)

``pin_salt`` and ``pin_hash`` travel as unpadded base64url. A verifier refuses any other
scheme name (it never takes cost parameters from the wire, so a forged roster cannot make it
spend unbounded memory). What a 4-digit PIN's hash protects against is said plainly in
``docs/sync-protocol.md`` section 7: it keeps the PIN from being read off the wire, the server
or a backup at a glance; 10,000 PINs remain few for someone holding the device's database, so
the device also limits tries (``pos_client.sellers``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sync_protocol.errors import Malformed
from sync_protocol.signing import b64u_decode, b64u_encode

__all__ = ["PIN_MAX", "PIN_MIN", "PIN_SCHEME", "PinHash", "check_pin", "hash_pin", "verify_pin"]

#: the one scheme of protocol 1.x; its parameters are fixed here, never read from the wire
PIN_SCHEME = "scrypt-n16384-r8-p1"
PIN_MIN = 4
PIN_MAX = 8
SALT_BYTES = 16
_N, _R, _P, _DKLEN = 16384, 8, 1, 32
_MAXMEM = 64 * 1024 * 1024  # scrypt needs 128 * r * n = 16 MiB; room for its bookkeeping


def check_pin(pin: str) -> str:
    """``pin`` if it is 4 to 8 ASCII digits.

    Raises:
        Malformed: anything else (``field`` = ``pin``).
    """
    if not (PIN_MIN <= len(pin) <= PIN_MAX and pin.isascii() and pin.isdigit()):
        raise Malformed(f"a PIN is {PIN_MIN} to {PIN_MAX} digits (0-9)", field="pin")
    return pin


def _derive(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("ascii"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=_MAXMEM)


class PinHash:
    """A stored PIN: scheme, salt and hash as the wire carries them (base64url, no padding)."""

    __slots__ = ("pin_hash", "pin_salt", "pin_scheme")

    def __init__(self, pin_scheme: str, pin_salt: str, pin_hash: str) -> None:
        self.pin_scheme = pin_scheme
        self.pin_salt = pin_salt
        self.pin_hash = pin_hash


def hash_pin(pin: str, *, salt: bytes | None = None) -> PinHash:
    """The stored form of ``pin`` under :data:`PIN_SCHEME` with a new random salt (or ``salt``).

    Raises:
        Malformed: ``pin`` is not 4 to 8 digits.
    """
    check_pin(pin)
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return PinHash(PIN_SCHEME, b64u_encode(salt), b64u_encode(_derive(pin, salt)))


def verify_pin(pin: str, stored: PinHash) -> bool:
    """Whether ``pin`` is the PIN of ``stored``; the hashes are compared in constant time.

    A PIN that is not 4 to 8 digits, a scheme other than :data:`PIN_SCHEME` or a salt or hash
    that is not base64url of the right length never matches (``False``, no exception): the
    caller counts it as a wrong PIN.
    """
    if stored.pin_scheme != PIN_SCHEME or not (PIN_MIN <= len(pin) <= PIN_MAX and pin.isascii() and pin.isdigit()):
        return False
    try:
        salt, expected = b64u_decode(stored.pin_salt), b64u_decode(stored.pin_hash)
    except Malformed:
        return False
    if len(salt) != SALT_BYTES or len(expected) != _DKLEN:
        return False
    return hmac.compare_digest(_derive(pin, salt), expected)
