"""Canonical bytes for hashing and signing: RFC 8785 (JSON Canonicalization Scheme).

Every signed or hashed object is first encoded with :func:`canonical_bytes` and then prefixed
with a domain tag (``tombola/<purpose>/v1`` followed by a NUL byte, :func:`domain_bytes`), so a
signature made for one purpose can never be replayed as another.

The protocol never puts floats on the wire (money is integer cents, time is integer
milliseconds), so JCS here reduces to: keys sorted by UTF-16 code units, no whitespace, and
the shortest JSON string escapes.
"""

from __future__ import annotations

from typing import Any

import rfc8785

from sync_protocol.errors import Malformed


def canonical_bytes(obj: Any) -> bytes:
    """Return the RFC 8785 canonical encoding of ``obj``.

    Raises:
        Malformed: the object holds something JSON cannot carry canonically.
    """
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise Malformed(f"cannot encode canonically: {exc}") from exc


def domain_bytes(purpose: str, obj: Any) -> bytes:
    """``b"tombola/" + purpose + b"/v1\\x00" + canonical_bytes(obj)``."""
    return b"tombola/" + purpose.encode("ascii") + b"/v1\x00" + canonical_bytes(obj)
