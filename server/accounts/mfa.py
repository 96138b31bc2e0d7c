"""TOTP second factor (RFC 6238 with ``pyotp``: SHA-1, 6 digits, 30-second steps).

A code is accepted for its own step and the one before or after (clock drift of +-30 s), and
only for a step later than the last accepted one, so a code seen over a shoulder cannot be
replayed. Roles in :data:`MFA_ROLES` (system admin, auditor) cannot log in without it.
"""

from __future__ import annotations

import pyotp

ISSUER = "Tombola"
MFA_ROLES = frozenset({"admin", "auditor"})
STEP_S = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    """A fresh base32 secret (160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads (often as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def code_at(secret: str, now_ms: int) -> str:
    """The code of ``secret`` at ``now_ms`` (for the demo's ``tombola user totp`` and tests)."""
    return pyotp.TOTP(secret).at(now_ms // 1000)


def accepted_step(secret: str, code: str, now_ms: int, last_step: int) -> int | None:
    """The time step ``code`` belongs to when it is valid now and newer than ``last_step``; else None."""
    code = code.strip()
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_s = now_ms // 1000
    step_now = now_s // STEP_S
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        step = step_now + offset
        if step > last_step and totp.verify(code, for_time=step * STEP_S):
            return step
    return None
