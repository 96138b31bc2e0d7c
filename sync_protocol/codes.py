"""Ticket verification codes: 8 Crockford base32 characters, printed as ``XXXX-XXXX``.

code = Crockford-base32(first 5 bytes of SHA-256(``domain_bytes("ticket-code",
{"raffle_id", "number", "record_hash"})``)). The device computes it offline from the hash of
the sale record that sold the ticket; the server, which stores that hash, recomputes it. A
code cannot be guessed for a ticket without knowing its sale's chain hash (40 bits).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from sync_protocol.canonical import canonical_bytes, domain_bytes
from sync_protocol.errors import TombolaError

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: the two symbols of every 10-bit value, so a 40-bit code is four lookups
_PAIRS = [_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024)]
_PREFIX = domain_bytes("ticket-code", {})[:-2]  # b"tombola/ticket-code/v1\\x00"
_MAX_SAFE = 2**53 - 1


def ticket_code(raffle_id: str, number: int, record_hash: str) -> str:
    """The verification code of ticket ``number`` of ``raffle_id`` sold by record ``record_hash``."""
    digest = hashlib.sha256(
        domain_bytes("ticket-code", {"raffle_id": raffle_id, "number": number, "record_hash": record_hash})
    ).digest()
    value = int.from_bytes(digest[:5], "big")
    chars = [_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(8))]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def _json_string(value: str) -> bytes:
    """The RFC 8785 form of a string: quoted as is when printable ASCII without quote or backslash."""
    if type(value) is str and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return b'"' + value.encode() + b'"'
    return canonical_bytes(value)


def ticket_codes(raffle_id: str, numbers: Sequence[int], record_hash: str) -> list[str]:
    """:func:`ticket_code` of each of ``numbers`` (one sale), the canonical bytes written once.

    The JCS object ``{"number":N,"raffle_id":R,"record_hash":H}`` (keys sorted) is a template:
    ``R`` and ``H`` are encoded once, ``N`` is the decimal integer. A number outside the
    canonical integer range goes through :func:`ticket_code`, which names the problem.
    """
    head = _PREFIX + b'{"number":'
    tail = b',"raffle_id":' + _json_string(raffle_id) + b',"record_hash":' + _json_string(record_hash) + b"}"
    sha, pairs = hashlib.sha256, _PAIRS
    codes = []
    for number in numbers:
        if type(number) is not int or not -_MAX_SAFE <= number <= _MAX_SAFE:
            codes.append(ticket_code(raffle_id, number, record_hash))
            continue
        value = int.from_bytes(sha(b"%b%d%b" % (head, number, tail)).digest()[:5], "big")
        codes.append(
            f"{pairs[value >> 30]}{pairs[(value >> 20) & 1023]}-{pairs[(value >> 10) & 1023]}{pairs[value & 1023]}"
        )
    return codes


def normalise_code(code: str) -> str:
    """Accept what people type: lower case, no dash, O for 0, I/L for 1."""
    text = code.upper().replace("-", "").replace(" ", "").replace("O", "0").replace("I", "1").replace("L", "1")
    return text[:4] + "-" + text[4:] if len(text) == 8 else code


def ticket_check_url(check_url: str, raffle_id: str, number: int, code: str) -> str:
    """The URL that checks ticket ``number`` of ``raffle_id`` with its verification ``code``.

    ``check_url`` is the server's public ticket-check page (``RaffleInfo.check_url``); the
    ticket goes in its query as ``raffle``, ``number`` and ``code`` (percent-encoded,
    ``application/x-www-form-urlencoded``), after any query the page already has:
    ``https://t.example/check?raffle=rf_1&number=42&code=7K3M-Q9TX``. Receipts print it as a QR
    code (``docs/sync-protocol.md`` section 7).
    """
    query = urlencode({"raffle": raffle_id, "number": number, "code": code})
    return f"{check_url}{'&' if '?' in check_url else '?'}{query}"


def codes_match(given: str, expected: str) -> bool:
    """Whether ``given`` (as typed: :func:`normalise_code` applies) is the verification code ``expected``.

    Compared in constant time (:func:`hmac.compare_digest` over the ASCII bytes), so the time an
    answer takes says nothing of how much of a guessed code was right. A non-ASCII ``given``
    never matches (codes are Crockford base32).
    """
    typed = normalise_code(given)
    if not typed.isascii() or not expected.isascii():
        return False
    return hmac.compare_digest(typed.encode("ascii"), expected.encode("ascii"))


class BadCheckUrl(TombolaError):
    """Text that is not a ticket-check URL (or not one ticket's): it needs exactly one ``raffle``,
    one ``number`` (a decimal integer) and one ``code`` in its query."""

    code = "bad_check_url"
    status = 422


@dataclass(frozen=True)
class TicketRef:
    """The three values that name a ticket to check: what :func:`ticket_check_url` puts in a URL."""

    raffle_id: str
    number: int
    code: str


def parse_ticket_check_url(text: str) -> TicketRef:
    """The raffle, number and code of a ticket-check URL (the inverse of :func:`ticket_check_url`).

    Accepts what a QR scan or a handheld scanner types: surrounding white space is dropped, the
    query is read as ``application/x-www-form-urlencoded``, members other than ``raffle``,
    ``number`` and ``code`` are ignored (the page's own query may have some). ``number`` is a
    decimal integer from 0 to 2^53-1; the raffle id is at most 64 characters and the code at most
    32; the code is returned as it was written (:func:`codes_match` normalises it).

    Raises:
        BadCheckUrl: not such a URL (``bad_check_url``), with a sentence saying what is missing.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > 2048:
        raise BadCheckUrl("that is not a ticket-check URL: it is empty or over 2048 characters")
    query = urlsplit(stripped).query
    if not query:
        raise BadCheckUrl("that is not a ticket-check URL: it has no ?raffle=...&number=...&code=... part")
    values = parse_qs(query, keep_blank_values=True)
    found: dict[str, str] = {}
    for name in ("raffle", "number", "code"):
        given = values.get(name, [])
        if len(given) != 1 or not given[0].strip():
            raise BadCheckUrl(f"that is not one ticket's check URL: it needs exactly one {name!r} in its query")
        found[name] = given[0].strip()
    number = found["number"]
    if not (number.isascii() and number.isdigit()) or int(number) > _MAX_SAFE:
        raise BadCheckUrl(f"the ticket number in that URL is not a whole number: {number[:20]!r}")
    if len(found["raffle"]) > 64 or len(found["code"]) > 32:
        raise BadCheckUrl("the raffle id or the code in that URL is too long to be a ticket's")
    return TicketRef(raffle_id=found["raffle"], number=int(number), code=found["code"])
