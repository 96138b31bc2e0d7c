"""Audit-log entries: what an event is, which events exist, and the bytes a leaf hashes.

An entry's leaf data (RFC 9162 leaf input) is the RFC 8785 canonical JSON of::

    {"v": 1, "index": <int>, "time_ms": <int>, "actor": "<kind>:<id>", "tenant": "<id or ''>",
     "type": "<event type>", "payload": {...}}

``index`` is the entry's position in the log (0-based, without gaps), so a removed, reordered or
inserted entry changes the bytes of every entry after it as well as the tree. ``actor`` names who
caused the event: ``user:<id>``, ``device:<id>`` or ``service:<name>``. ``tenant`` is the
organisation the event belongs to (empty for installation-wide events). ``type`` is one of
:data:`EVENT_TYPES`. Canonical JSON has no raw newline, so entries can be stored one per line.

The payload never carries card data or secrets: :func:`check_payload` refuses a key that names
one (:data:`FORBIDDEN_KEYS`) and any string that looks like a card number (15 to 19 digits
starting with 2 to 6, the major card networks' ranges, separators allowed, passing the Luhn
check: millisecond timestamps and other 13-digit counters are not taken for card numbers).
``docs/audit-log.md`` is the normative description.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from gli_core.errors import CoreError
from sync_protocol.canonical import canonical_bytes

__all__ = [
    "ENTRY_VERSION",
    "EVENT_TYPES",
    "FORBIDDEN_KEYS",
    "AuditEntryInvalid",
    "AuditEvent",
    "acting_as",
    "check_payload",
    "current_actor",
    "entry_bytes",
    "entry_dict",
    "parse_entry",
    "set_actor",
]

ENTRY_VERSION = 1

#: Every event type the log accepts, with what it records (docs/audit-log.md lists their payloads).
EVENT_TYPES: dict[str, str] = {
    # devices and enrollment (business database, through the outbox)
    "enrollment.code_created": "an admin created a single-use enrollment code for a venue",
    "device.enrolled": "a device enrolled with a code and its public key",
    "device.revoked": "an admin revoked a device",
    "seller.added": "an admin added a seller (with a PIN, never logged) to a venue's roster",
    "seller.disabled": "an admin took a seller off a venue's roster",
    # grants (core)
    "grant.issued": "a signed range of ticket numbers was given to a device (initial, top-up, extension, online)",
    "grant.voided": "grants were voided (lost device, void-remainder) with a reason",
    "grant.status_changed": "grants changed status otherwise, with a reason",
    # sales (core and business)
    "tickets.recorded": "the core recorded the tickets of a set of sales (one sync batch or online sale)",
    "ticket.status_changed": "a ticket's status was changed through the ticket API",
    "sync.accepted": "a device's signed batch was accepted (records applied, records rejected with reasons, head)",
    "sync.rejected": "a device's request or batch was refused as a whole, with the reason",
    # online sales (business database, through the outbox; docs/online-sales.md)
    "order.created": "a customer started an online purchase: an order and its Stripe PaymentIntent",
    "order.state_changed": "an online order moved (ticketed, refunded, voided, canceled) on a Stripe webhook",
    "payment.webhook_refused": "a Stripe webhook was refused (bad signature or payload), nothing changed",
    # raffles
    "raffle.created": "a raffle was created",
    "raffle.changed": "a raffle's settings or status changed",
    # draws (core)
    "draw.committed": "the draw's nonce commitment and VRF key were fixed (published when sales open)",
    "draw.state_changed": "the draw's state machine moved (from, to, reason)",
    "draw.winners_determined": "the draw was executed: beta, ticket-set root, winners",
    "draw.redrawn": "a prize was redrawn (declined or unclaimed) with the reason",
    "draw.remainder_voided": "an admin voided a device's unsynced remainder for the reconciliation gate",
    "rng.call": "one call to the HSM random number generator (purpose, range, hash of the output)",
    "rng.health_failure": "the RNG's continuous health test failed; the core failed closed",
    # access and operations
    "auth.login": "a user or API token authenticated",
    "auth.login_failed": "an authentication attempt failed",
    "auth.permission_changed": "a role, API token or permission was granted, changed or revoked",
    "auth.break_glass": "break-glass access was used",
    "settings.changed": "the installation's effective settings changed (fingerprint of non-secret values)",
    "key.generated": "a key was generated in the HSM (purpose, key id)",
    "key.rotated": "a purpose key was rotated (old and new key ids)",
}

#: Payload keys that would carry card data or a secret (compared lower-cased, ``-`` as ``_``).
FORBIDDEN_KEYS = frozenset(
    {
        "pan",
        "card_number",
        "cardnumber",
        "cvv",
        "cvc",
        "cvv2",
        "track",
        "track1",
        "track2",
        "pin",
        "pin_block",
        "password",
        "passphrase",
        "secret",
        "private_key",
        "api_key",
        "admin_token",
        "bearer",
        "enrollment_code",
        "nonce",  # a draw nonce is secret until the draw (its commitment is logged instead)
    }
)

_ACTOR = re.compile(r"^(user|device|service):[A-Za-z0-9._@:\-]{1,90}$")
_TYPE = re.compile(r"^[a-z_]+\.[a-z_]+$")
#: 13-19 digits, single spaces or hyphens allowed between them, standing alone (not part of a
#: longer token such as a UUID: no word character or hyphen on either side); a match is a card
#: number when it has 15-19 digits, starts with 2-6 and passes the Luhn check.
_CARDLIKE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")


_ACTOR_VAR: ContextVar[str] = ContextVar("tombola_audit_actor", default="service:core")


def current_actor() -> str:
    """Who the events appended now are attributed to (``service:core`` unless set)."""
    return _ACTOR_VAR.get()


def set_actor(actor: str) -> None:
    """Attribute the rest of the current context's events to ``actor`` (an async request
    dependency calls this; the endpoint's thread inherits the context)."""
    _ACTOR_VAR.set(actor)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute the events appended inside the block to ``actor`` (``user:…``, ``device:…``)."""
    token = _ACTOR_VAR.set(actor)
    try:
        yield
    finally:
        _ACTOR_VAR.reset(token)


class AuditEntryInvalid(CoreError):
    """An event cannot go into the audit log as given (unknown type, bad actor, forbidden data)."""

    code = "audit_entry_invalid"
    status = 422


@dataclass(frozen=True)
class AuditEvent:
    """An event to append: the log assigns its index (and its time unless ``time_ms`` is given).

    ``source_id`` identifies an event drained from the business database's outbox: the log
    appends an event with a given ``source_id`` once, however often it is drained.
    """

    type: str
    actor: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    tenant: str = ""
    time_ms: int | None = None
    source_id: str | None = None

    def check(self) -> bool:
        """Raise :class:`AuditEntryInvalid` unless the event can be logged as it is.

        Returns True when orjson's sorted output of the entry is its RFC 8785 form (the fast path
        of :func:`entry_bytes`), which the same walk over the payload finds out.
        """
        if self.type not in EVENT_TYPES:
            raise AuditEntryInvalid(f"unknown audit event type {self.type!r}; docs/audit-log.md lists them")
        if not _ACTOR.match(self.actor):
            raise AuditEntryInvalid(
                f"actor {self.actor!r} must be user:<id>, device:<id> or service:<name> (at most 90 characters)"
            )
        if len(self.tenant) > 64:
            raise AuditEntryInvalid("tenant must be at most 64 characters")
        return check_payload(self.payload) and _jcs_string(self.tenant)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_MAX_SAFE = 2**53 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: what makes a string worth a closer look: a control character or a card-number-like digit run
_SCAN = re.compile(r"[\x00-\x1f\x7f-\x9f]|(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")


def _jcs_string(value: str) -> bool:
    return _CONTROL.search(value) is None


_KEY_MEMO: dict[str, bool] = {}


def _key_ok(key: object, where: str) -> bool:
    """Refuse a key that is not a string or names a secret; True when JCS-safe (memoised)."""
    if type(key) is not str:
        raise AuditEntryInvalid(f"{where} keys must be strings")
    if key.lower().replace("-", "_") in FORBIDDEN_KEYS:
        raise AuditEntryInvalid(f"{where}.{key} would put card data or a secret into the audit log")
    ok = key.isascii() and _jcs_string(key)
    if len(_KEY_MEMO) < 10_000:
        _KEY_MEMO[key] = ok
    return ok


def check_payload(payload: Mapping[str, Any], where: str = "payload") -> bool:
    """Refuse card data and secrets anywhere in ``payload`` (keys by name, strings by shape).

    Returns True when the payload is in the subset where orjson with sorted keys writes exactly
    the RFC 8785 bytes (ASCII keys, no floats, safe integers, no control characters): one walk
    both checks the payload and picks the encoder. Strings and integers, by far the most common
    values, are handled inline.
    """
    jcs = True
    memo, scan = _KEY_MEMO, _SCAN.search
    for key, value in payload.items():
        key_ok = memo.get(key)
        if key_ok is None:
            key_ok = _key_ok(key, where)
        kind = type(value)
        if kind is str:
            if scan(value) is not None:
                jcs = _check_string(value, where, key) and jcs
        elif kind is int:
            if not -_MAX_SAFE <= value <= _MAX_SAFE:
                jcs = False
        elif value is not None and kind is not bool:
            jcs = _check_value(value, where, key) and jcs
        jcs = jcs and key_ok
    return jcs


def _check_string(value: str, where: str, key: str | int) -> bool:
    match = _CARDLIKE.search(value)
    while match is not None:
        digits = re.sub(r"\D", "", match.group())
        if 15 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits):
            raise AuditEntryInvalid(f"{where}.{key} looks like a card number; the audit log never stores card data")
        match = _CARDLIKE.search(value, match.end())
    return _jcs_string(value)


def _check_value(value: Any, where: str, key: str | int) -> bool:
    kind = type(value)
    if kind is str:
        return _check_string(value, where, key)
    if kind is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if value is None or kind is bool:
        return True
    if isinstance(value, Mapping):
        return check_payload(value, f"{where}.{key}")
    if kind is list or kind is tuple:
        jcs = True
        for i, item in enumerate(value):
            jcs = _check_value(item, f"{where}.{key}", i) and jcs
        return jcs
    return False  # floats and anything else: the reference encoder decides


def entry_dict(index: int, time_ms: int, event: AuditEvent) -> dict[str, Any]:
    """The entry as JSON: the object whose canonical bytes are the leaf data."""
    return {
        "v": ENTRY_VERSION,
        "index": index,
        "time_ms": time_ms,
        "actor": event.actor,
        "tenant": event.tenant,
        "type": event.type,
        "payload": dict(event.payload),
    }


def entry_bytes(index: int, time_ms: int, event: AuditEvent, *, jcs: bool | None = None) -> bytes:
    """The leaf data of the entry: RFC 8785 canonical JSON of :func:`entry_dict`.

    ``jcs`` is what :meth:`AuditEvent.check` returned for the event (None: find out): when True,
    orjson's sorted compact output is the RFC 8785 encoding and is used directly.
    """
    entry = entry_dict(index, time_ms, event)
    if jcs is None:
        jcs = event.check()
    if jcs and -_MAX_SAFE <= time_ms <= _MAX_SAFE:
        return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    return canonical_bytes(entry)


_FIELDS = {"v", "index", "time_ms", "actor", "tenant", "type", "payload"}


def parse_entry(data: bytes) -> dict[str, Any]:
    """Parse an entry's leaf data and check its shape (not its place in the log).

    Raises:
        AuditEntryInvalid: not JSON, or not an entry of version 1.
    """
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise AuditEntryInvalid("the entry is not valid JSON") from None
    if not isinstance(entry, dict) or set(entry) != _FIELDS:
        raise AuditEntryInvalid(f"an entry is a JSON object with exactly the members {sorted(_FIELDS)}")
    if entry["v"] != ENTRY_VERSION:
        raise AuditEntryInvalid(f"unknown entry version {entry['v']!r}")
    if not isinstance(entry["index"], int) or not isinstance(entry["payload"], dict):
        raise AuditEntryInvalid("index must be an integer and payload an object")
    return entry
