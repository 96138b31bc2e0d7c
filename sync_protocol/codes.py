"""Ticket verification codes: 8 Crockford base32 characters, printed as ``XXXX-XXXX``.

code = Crockford-base32(first 5 bytes of SHA-256(``domain_bytes("ticket-code",
{"raffle_id", "number", "record_hash"})``)). The device computes it offline from the hash of
the sale record that sold the ticket; the server, which stores that hash, recomputes it. A
code cannot be guessed for a ticket without knowing its sale's chain hash (40 bits).
"""

from __future__ import annotations

import hashlib

from sync_protocol.canonical import domain_bytes

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ticket_code(raffle_id: str, number: int, record_hash: str) -> str:
    """The verification code of ticket ``number`` of ``raffle_id`` sold by record ``record_hash``."""
    digest = hashlib.sha256(
        domain_bytes("ticket-code", {"raffle_id": raffle_id, "number": number, "record_hash": record_hash})
    ).digest()
    value = int.from_bytes(digest[:5], "big")
    chars = [_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(8))]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def normalise_code(code: str) -> str:
    """Accept what people type: lower case, no dash, O for 0, I/L for 1."""
    text = code.upper().replace("-", "").replace(" ", "").replace("O", "0").replace("I", "1").replace("L", "1")
    return text[:4] + "-" + text[4:] if len(text) == 8 else code
