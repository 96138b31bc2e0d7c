"""Passwords: the policy (spec 3.2: 8+ characters, upper and lower case, a digit, a symbol) and
argon2id hashing (``argon2-cffi``'s :class:`~argon2.PasswordHasher`, RFC 9106 defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.accounts.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 256
#: What a password can lack, in the order ``missing`` lists them.
RULES = ("length", "upper", "lower", "digit", "symbol")
_SAY = {
    "length": f"at least {MIN_LENGTH} characters",
    "upper": "an upper-case letter",
    "lower": "a lower-case letter",
    "digit": "a digit",
    "symbol": "a symbol (a character that is not a letter, digit or space)",
}

HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
#: spent on a login for an unknown email, so it takes as long as a wrong password
_DUMMY_HASH = HASHER.hash("not a password: the timing twin of an unknown account")


def missing(password: str) -> list[str]:
    """What ``password`` lacks of the policy (:data:`RULES` names), empty when it complies."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append("length")
    if not any(c.isupper() for c in password):
        found.append("upper")
    if not any(c.islower() for c in password):
        found.append("lower")
    if not any(c.isdigit() for c in password):
        found.append("digit")
    if not any(not c.isalnum() and not c.isspace() for c in password):
        found.append("symbol")
    return found


def check_policy(password: str) -> None:
    """Raise :class:`WeakPassword` (``missing``: the rules broken) unless ``password`` complies."""
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters", missing=["max_length"])
    if "\x00" in password:
        raise WeakPassword("a password may not hold U+0000", missing=["no_nul"])
    lacks = missing(password)
    if lacks:
        raise WeakPassword("the password needs " + ", ".join(_SAY[m] for m in lacks), missing=lacks)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (an argon2 hash); never raises on a mismatch."""
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def spend_dummy(password: str) -> None:
    """Take as long as :func:`verify` does, for an email with no account."""
    verify(_DUMMY_HASH, password)


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)
