"""The draw proof: one JSON document from which anyone re-derives the winners of a draw.

``docs/draw-proof.md`` is the normative description (schema, every encoding, every check). In
short, a proof holds the *inputs* of the draw (raffle id, VRF public key, nonce, ticket list or
the hash of a ticket file, prize table, redraw requests with their reasons) and the *outputs* a
verifier recomputes and compares (nonce commitment, ticket count and Merkle root, gross sales,
alpha, pi, beta, winners, redraw winners). Gross sales (the base of the 50/50 prizes) are an
input of alpha *and* checked: they must be the sum of the listed tickets' amounts. There is no
other member: :func:`load_proof` refuses unknown members, so nothing in a proof is decoration.

Encodings fixed by this module (``ALGORITHM = "tombola/draw/v2"``):

* **Ticket leaf** (the leaf data of the ticket-set Merkle tree, RFC 9162)::

      I2OSP(number, 8) || I2OSP(len(id), 1) || id || I2OSP(len(sale), 1) || sale || I2OSP(amount_cents, 8)

  ``id`` and ``sale`` are the UTF-8 bytes of the ticket id and sale id (1 to 255 bytes each),
  ``number`` the ticket number and ``amount_cents`` the ticket's share of its sale (both unsigned
  64-bit big-endian, below 2**53). A fixed binary layout rather than canonical JSON per ticket:
  it is unambiguous (length-prefixed, fixed-size trailer), trivially reimplemented, and a
  million tickets encode and hash in under two seconds. (``tombola/draw/v1`` had no amount.)
* **Ticket-set root**: MTH over the leaves of the eligible tickets sorted by number.
* **Gross sales**: ``gross_sales_cents`` = the sum of the eligible tickets' ``amount_cents``.
* **Nonce commitment**: ``SHA-256(nonce)`` of the 32-byte nonce, published when sales open.
* **alpha**: ``domain_bytes("draw-alpha", {...})`` = ``b"tombola/draw-alpha/v1\\x00"`` followed by
  the RFC 8785 canonical JSON of ``{"algorithm", "audit_checkpoint" (null or
  {"root_hash", "tree_size"}), "gross_sales_cents", "nonce" (hex), "prize_table", "raffle_id",
  "ticket_count", "ticket_root" (hex)}``.
* **Redraw authorisation**: a redraw's ``pi`` is an RSA-FDH-VRF proof, by the draw key, over
  ``domain_bytes("draw-redraw", {"beta", "index", "raffle_id", "reason",
  "replaced_ticket_number", "tier"})``: only the key holder can record a redraw and its reason.

Every byte string in a proof is lowercase hex. The module is pure: the private RSA operation
is the injected ``rsasp1`` (the HSM), and nothing is read or written here.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson

from gli_core import merkle
from gli_core.audit import note as notes
from gli_core.draw import vrf
from gli_core.draw.selection import (
    MAX_JSON_INT,
    MAX_REASON,
    DrawInputInvalid,
    DrawTicket,
    RedrawRequest,
    Selection,
    TicketList,
    Tier,
    parse_prize_table,
    select,
)
from gli_core.errors import CoreError
from sync_protocol.canonical import canonical_bytes, domain_bytes
from sync_protocol.errors import TombolaError

__all__ = [
    "ALGORITHM",
    "NONCE_SIZE",
    "SCHEMA",
    "AuditCheckpoint",
    "ClaimedRedraw",
    "ClaimedWinner",
    "DrawProof",
    "ProofInvalid",
    "alpha_bytes",
    "build_draw_proof",
    "build_proof",
    "check_audit_checkpoint",
    "load_proof",
    "nonce_commitment",
    "parse_tickets_file",
    "proof_bytes",
    "proof_sha256",
    "redraw_alpha_bytes",
    "ticket_leaf",
    "ticket_leaf_hash",
    "ticket_leaf_hashes",
    "ticket_leaf_inputs",
    "ticket_leaves",
    "ticket_root",
    "tickets_file_bytes",
    "tickets_file_name",
]

SCHEMA = "tombola/draw-proof/v1"
ALGORITHM = "tombola/draw/v2"
NONCE_SIZE = 32
MAX_ID_BYTES = 255
_HEX = re.compile(r"[0-9a-f]*")


class ProofInvalid(CoreError):
    """A draw proof that does not verify; ``field`` names the member that is wrong.

    ``field`` is a path into the proof (``tickets.root``, ``winners[2].ticket_id``); when a
    recomputed value differs, it names the member holding the value that was compared.
    """

    code = "draw_proof_invalid"
    status = 422

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail if detail.startswith(f"{field}:") else f"{field}: {detail}", field=field)
        self.field = field


# --- encodings -----------------------------------------------------------------------------------


def ticket_leaf(ticket: DrawTicket) -> bytes:
    """The Merkle leaf data of one ticket (module docstring)."""
    return ticket_leaves([ticket])[0]


_LEAF = b"%b%c%b%c%b%b"
_LEAF_INPUT = b"\x00" + _LEAF
#: the ``struct`` byte order and prefix of each template for :func:`_pack_uniform` (``x``: 0x00)
_PACKED = {_LEAF: ">", _LEAF_INPUT: ">x"}


def _encode(tickets: Sequence[DrawTicket], template: bytes) -> list[bytes]:
    """Every ticket's leaf by ``template`` (:data:`_LEAF` or :data:`_LEAF_INPUT`): packed in C when
    the ids allow it (:func:`_pack_uniform`), else formatted ticket by ticket (:func:`_format`)."""
    tickets = TicketList.of(tickets)
    packed = _pack_uniform(tickets, _PACKED[template])
    return _format(tickets, template) if packed is None else packed


def _format(tickets: TicketList, template: bytes) -> list[bytes]:
    """Each ticket's leaf formatted in Python; refuses an id that has no leaf encoding."""
    try:
        return [
            template
            % (n.to_bytes(8, "big"), len(i8 := i.encode()), i8, len(s8 := s.encode()), s8, a.to_bytes(8, "big"))
            for n, i, s, a in tickets
        ]
    except (UnicodeEncodeError, OverflowError, ValueError):
        for index, (_, ticket_id, sale_id, _) in enumerate(tickets):
            for name, value in (("ticket_id", ticket_id), ("sale_id", sale_id)):
                try:
                    size = len(value.encode())
                except UnicodeEncodeError:
                    raise DrawInputInvalid(f"ticket {index}: {name} is not valid Unicode", index=index) from None
                if size > MAX_ID_BYTES:
                    raise DrawInputInvalid(f"ticket {index}: {name} is longer than 255 bytes", index=index) from None
        raise


def ticket_leaves(tickets: Sequence[DrawTicket]) -> list[bytes]:
    """The leaf data of every ticket, in order (tickets checked as :class:`TicketList` does).

    Raises:
        DrawInputInvalid: the tickets are not sorted by unique number, an id is not a string of
            1-255 UTF-8 bytes, or an amount is not an integer in ``[0, 2**53)``.
    """
    return _encode(tickets, _LEAF)


def ticket_leaf_inputs(tickets: Sequence[DrawTicket]) -> list[bytes]:
    """``0x00 || leaf`` for every ticket: the exact SHA-256 input of each leaf hash (RFC 9162).

    The same bytes as :func:`ticket_leaves` with the leaf prefix written by the encoder, so the
    leaf hashes cost one ``hashlib`` call each and no copy
    (:func:`gli_core.merkle.root_from_prefixed_leaves`). When every ticket id has the same UTF-8
    length, and every sale id too (the core's UUIDs), one :class:`struct.Struct` packs them all
    in C (:func:`_pack_uniform`); otherwise each leaf is formatted in Python.
    """
    return _encode(tickets, _LEAF_INPUT)


def _pack_uniform(tickets: TicketList, head: str) -> list[bytes] | None:
    """The leaves of tickets whose ids all have one UTF-8 length ``i`` and sale ids one length
    ``s`` (1 to 255 bytes), else None (nothing is refused here: :func:`_format` does that).

    The layout ``[0x00 ||] I2OSP(number, 8) || I2OSP(i, 1) || id || I2OSP(s, 1) || sale ||
    I2OSP(amount, 8)`` is then the fixed ``struct`` format ``head + Q{i+1}p{s+1}pQ``: ``head`` is
    ``>`` (big-endian, no padding) or ``>x`` (and the zero leaf prefix), ``Q`` an unsigned 64-bit
    integer, and ``{n}p`` a Pascal string (one length byte, then exactly ``n - 1`` bytes: the id,
    whose length is ``n - 1``). Every step maps a C function over a column, so no Python bytecode
    runs per ticket; the bytes are those of :func:`_format` (``tests/gli_core/test_leaf_inputs.py``
    compares them).
    """
    if not tickets:
        return None
    try:
        ids = list(map(str.encode, map(_TICKET_ID, tickets)))
        sales = list(map(str.encode, map(_SALE_ID, tickets)))
    except UnicodeEncodeError:
        return None
    id_sizes, sale_sizes = set(map(len, ids)), set(map(len, sales))
    if len(id_sizes) != 1 or len(sale_sizes) != 1:
        return None
    (i,), (s,) = id_sizes, sale_sizes
    if not (1 <= i <= MAX_ID_BYTES and 1 <= s <= MAX_ID_BYTES):
        return None
    layout = struct.Struct(f"{head}Q{i + 1}p{s + 1}pQ")
    try:
        return list(map(layout.pack, map(_NUMBER, tickets), ids, sales, map(_AMOUNT, tickets)))
    except struct.error:  # a number or amount outside 64 bits (a TicketList has none)
        return None


_NUMBER, _TICKET_ID, _SALE_ID, _AMOUNT = (itemgetter(k) for k in range(4))


def ticket_leaf_hash(number: int, ticket_id: str, sale_id: str, amount_cents: int) -> bytes | None:
    """The leaf hash of one ticket, ``SHA-256(0x00 || leaf)``, or None if it has no leaf encoding.

    The core stores it with each ticket when it records it (``core_ticket.leaf_hash``), so that
    freezing a ticket set hashes only the interior nodes. It is never trusted on its own: the
    draw recomputes every leaf from the ticket rows before it derives any randomness. None when
    the ticket cannot be encoded (an id that is empty, over 255 UTF-8 bytes or not valid
    Unicode, a number or amount outside ``[0, 2**53)``); the draw then refuses the ticket as
    :func:`ticket_leaves` does.
    """
    try:
        i8, s8 = ticket_id.encode(), sale_id.encode()
        leaf = b"\x00%b%c%b%c%b%b" % (
            number.to_bytes(8, "big"),
            len(i8),
            i8,
            len(s8),
            s8,
            amount_cents.to_bytes(8, "big"),
        )
    except (UnicodeEncodeError, OverflowError, ValueError, AttributeError, TypeError):
        return None
    if not (i8 and s8 and 0 <= number <= MAX_JSON_INT and type(amount_cents) is int):
        return None
    if not 0 <= amount_cents <= MAX_JSON_INT:
        return None
    return hashlib.sha256(leaf).digest()


def ticket_leaf_hashes(tickets: Sequence[DrawTicket]) -> list[bytes]:
    """The leaf hash ``SHA-256(0x00 || leaf)`` of every ticket, in order: each leaf encoded and
    hashed once (:func:`ticket_leaf_inputs`, one ``hashlib`` call per leaf)."""
    return list(map(_DIGEST, map(hashlib.sha256, ticket_leaf_inputs(tickets))))


_DIGEST = type(hashlib.sha256()).digest


def ticket_root(tickets: Sequence[DrawTicket]) -> bytes:
    """The ticket-set root: RFC 9162 MTH over :func:`ticket_leaves` (tickets sorted by number)."""
    return merkle.root_from_prefixed_leaves(ticket_leaf_inputs(tickets))


def nonce_commitment(nonce: bytes) -> bytes:
    """``SHA-256(nonce)``: published when sales open, before any ticket exists."""
    return hashlib.sha256(nonce).digest()


def _prize_table_json(tiers: Sequence[Tier]) -> list[dict[str, Any]]:
    return [t.to_dict() for t in tiers]


def alpha_bytes(
    *,
    raffle_id: str,
    ticket_root: bytes,
    ticket_count: int,
    nonce: bytes,
    prize_table: Sequence[Mapping[str, Any] | Tier],
    gross_sales_cents: int,
    audit_checkpoint: AuditCheckpoint | None = None,
    algorithm: str = ALGORITHM,
) -> bytes:
    """The VRF input of a draw: every committed input, domain-separated and canonical (RFC 8785).

    ``audit_checkpoint`` (when the proof carries one) enters as ``{"root_hash", "tree_size"}``,
    else as ``null``: the log state the draw refers to is fixed before the randomness exists.
    """
    checkpoint = (
        None
        if audit_checkpoint is None
        else {"root_hash": audit_checkpoint.root_hash.hex(), "tree_size": audit_checkpoint.tree_size}
    )
    return domain_bytes(
        "draw-alpha",
        {
            "algorithm": algorithm,
            "audit_checkpoint": checkpoint,
            "gross_sales_cents": gross_sales_cents,
            "nonce": nonce.hex(),
            "prize_table": _prize_table_json(parse_prize_table(prize_table)),
            "raffle_id": raffle_id,
            "ticket_count": ticket_count,
            "ticket_root": ticket_root.hex(),
        },
    )


def redraw_alpha_bytes(
    *, raffle_id: str, beta: bytes, index: int, tier: str, replaced_ticket_number: int, reason: str
) -> bytes:
    """What the draw key signs (as an RSA-FDH-VRF proof) to authorise redraw ``index``."""
    return domain_bytes(
        "draw-redraw",
        {
            "beta": beta.hex(),
            "index": index,
            "raffle_id": raffle_id,
            "reason": reason,
            "replaced_ticket_number": replaced_ticket_number,
            "tier": tier,
        },
    )


def tickets_file_bytes(tickets: Sequence[DrawTicket]) -> bytes:
    """The ticket file of a proof that does not embed its tickets: the ``tickets.list`` JSON array.

    UTF-8, no whitespace: ``[[number,"ticket_id","sale_id",amount_cents],...]``. The proof names
    it by its SHA-256 (:func:`tickets_file_name`).
    """
    rows = [[n, i, s, a] for n, i, s, a in tickets]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tickets_file_name(proof: Mapping[str, Any]) -> str:
    """``tickets-<sha256>.json``: where a proof with ``tickets.file_sha256`` expects its tickets."""
    return f"tickets-{proof['tickets']['file_sha256']}.json"


def parse_tickets_file(data: bytes) -> list[DrawTicket]:
    """Parse a ticket file (:func:`tickets_file_bytes`); checks only the shape of each row.

    Raises:
        ProofInvalid: not a JSON array of ``[int, str, str, int]`` rows (``field`` is ``tickets.file``).
    """
    try:
        rows = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProofInvalid(f"the ticket file is not JSON ({exc})", field="tickets.file") from None
    return _parse_ticket_rows(rows, "tickets.file")


#: bytes of orjson's output that may mean JCS spells a string differently: an escape (a backslash:
#: C0, ``"`` or ``\\``), DEL, or the lead byte of U+0080-U+00BF (the C1 controls among them);
#: each is looked for with ``bytes.__contains__`` (a memchr), and any of them means the slow path
_NOT_PLAIN = (b"\\", b"\x7f", b"\xc2")


def proof_bytes(proof: Mapping[str, Any]) -> bytes:
    """The bytes of a proof as the core stores and exports it: ``JCS(proof)`` (RFC 8785), UTF-8,
    no trailing newline. ``proof_sha256`` is their SHA-256 (:func:`proof_sha256`): ``sha256sum``
    of an exported proof file gives it, and a verifier gets it from a re-formatted file by
    canonicalising the parsed document (``docs/draw-proof.md`` section 11).

    Raises:
        Malformed: the document holds something JSON cannot carry canonically (a float...).
    """
    return canonical_bytes(proof)


def proof_sha256(proof: Mapping[str, Any]) -> str:
    """``proof_sha256`` of a proof document: hex ``SHA-256(JCS(proof))``."""
    return hashlib.sha256(proof_bytes(proof)).hexdigest()


def _jcs_with_rows(doc: dict[str, Any], tickets: TicketList, full: Callable[[], dict[str, Any]]) -> bytes:
    """``JCS`` of a proof whose ``tickets.list`` holds ``tickets``, in a fraction of the time.

    ``doc`` is the proof with an empty ``tickets.list``; ``full`` gives the whole document. The
    ticket rows are the bulk of a large proof. A :class:`TicketList` holds integers in ``[0,
    2**53)`` and strings only, so orjson writes the rows (as plain tuples: JSON arrays) exactly as
    JCS does unless a string needs an escape or holds DEL or a C1 character, which is looked for in
    orjson's output. The rows are then spliced into the JCS of the rest of the document (where
    ``"list":[]`` occurs once: inside a JSON string every ``"`` is escaped). Anything else:
    :func:`canonical_bytes` of ``full()``.
    """
    rows = orjson.dumps(list(map(tuple, tickets)))
    if any(b in rows for b in _NOT_PLAIN):
        return canonical_bytes(full())
    head = canonical_bytes(doc)
    empty = b'"tickets":' + canonical_bytes(doc["tickets"])
    if doc["tickets"]["list"] != [] or head.count(empty) != 1:
        return canonical_bytes(full())
    return head.replace(empty, empty.replace(b'"list":[]', b'"list":' + rows, 1), 1)


# --- parsing -------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _obj(value: object, where: str, required: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ProofInvalid("must be a JSON object", field=where or "proof")
    keys = set(value)
    missing = sorted(required - keys)
    if missing:
        raise ProofInvalid("is missing", field=_join(where, missing[0]))
    extra = sorted(keys - required - optional)
    if extra:
        raise ProofInvalid(
            "is not a member of a draw proof (unknown members are refused)", field=_join(where, extra[0])
        )
    return dict(value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _str(value: object, where: str, *, max_len: int = 10_000) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ProofInvalid(f"must be a non-empty string of at most {max_len} characters", field=where)
    return value


def _int(value: object, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_JSON_INT:
        return value
    raise ProofInvalid(f"must be an integer in [{minimum}, 2**53)", field=where)


def _hex(value: object, where: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or len(value) % 2 or not _HEX.fullmatch(value):
        raise ProofInvalid("must be lowercase hex", field=where)
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise ProofInvalid(f"must be {size} bytes ({2 * size} hex digits)", field=where)
    return raw


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProofInvalid("must be a JSON array", field=where)
    return value


def _parse_ticket_rows(rows: object, where: str) -> list[DrawTicket]:
    rows = _list(rows, where)
    tickets: list[DrawTicket] = []
    for i, row in enumerate(rows):
        if (
            not isinstance(row, list)
            or len(row) != 4
            or not _is_int(row[0])
            or not isinstance(row[1], str)
            or not isinstance(row[2], str)
            or not _is_int(row[3])
        ):
            raise ProofInvalid("must be [number, ticket_id, sale_id, amount_cents]", field=f"{where}[{i}]")
        tickets.append(DrawTicket(row[0], row[1], row[2], row[3]))
    return tickets


@dataclass(frozen=True)
class ClaimedWinner:
    """A ``winners[]`` entry as the proof states it (compared with the recomputed draw)."""

    tier: str
    position: int
    ticket_number: int
    ticket_id: str
    amount_cents: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "position": self.position,
            "ticket_number": self.ticket_number,
            "ticket_id": self.ticket_id,
            "amount_cents": self.amount_cents,
        }


@dataclass(frozen=True)
class ClaimedRedraw:
    """A ``redraws[]`` entry: the request (tier, replaced ticket, reason, pi) and its claimed result."""

    tier: str
    replaced_ticket_number: int
    reason: str
    pi: bytes
    position: int
    ticket_number: int
    ticket_id: str
    amount_cents: int

    def request(self) -> RedrawRequest:
        return RedrawRequest(self.tier, self.replaced_ticket_number, self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "replaced_ticket_number": self.replaced_ticket_number,
            "reason": self.reason,
            "pi": self.pi.hex(),
            "position": self.position,
            "ticket_number": self.ticket_number,
            "ticket_id": self.ticket_id,
            "amount_cents": self.amount_cents,
        }


@dataclass(frozen=True)
class AuditCheckpoint:
    """The signed audit checkpoint the draw binds, and the commitment entry it contains.

    ``note`` is the checkpoint as published (C2SP signed note, ``docs/audit-log.md``) of the audit
    log at ``tree_size`` leaves with root ``root_hash``: the earliest checkpoint containing the
    draw's RECONCILED transition. ``entry`` is the audit-log entry (type ``draw.committed``) that
    published this raffle's nonce commitment and VRF key fingerprint when sales opened; its leaf
    data is ``canonical_bytes(entry)`` (RFC 8785), included at ``leaf_index``.
    """

    tree_size: int
    root_hash: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    entry: dict[str, Any]
    note: str
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "leaf_index": self.leaf_index,
            "inclusion_proof": [h.hex() for h in self.inclusion_proof],
            "entry": self.entry,
            "note": self.note,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, value: object, where: str = "audit_checkpoint") -> AuditCheckpoint:
        data = _obj(value, where, {"tree_size", "root_hash", "leaf_index", "inclusion_proof", "entry", "note", "key"})
        for member in ("note", "key"):
            if not isinstance(data[member], str):
                raise ProofInvalid("must be a string", field=f"{where}.{member}")
        entry = data["entry"]
        if not isinstance(entry, dict):
            raise ProofInvalid("must be a JSON object", field=f"{where}.entry")
        hashes = _list(data["inclusion_proof"], f"{where}.inclusion_proof")
        return cls(
            tree_size=_int(data["tree_size"], f"{where}.tree_size", minimum=1),
            root_hash=_hex(data["root_hash"], f"{where}.root_hash", merkle.HASH_SIZE),
            leaf_index=_int(data["leaf_index"], f"{where}.leaf_index"),
            inclusion_proof=tuple(
                _hex(h, f"{where}.inclusion_proof[{i}]", merkle.HASH_SIZE) for i, h in enumerate(hashes)
            ),
            entry=entry,
            note=data["note"],
            key=data["key"],
        )


_TOP = {
    "schema",
    "algorithm",
    "raffle_id",
    "vrf",
    "nonce",
    "nonce_commitment",
    "prize_table",
    "gross_sales_cents",
    "tickets",
    "alpha",
    "pi",
    "beta",
    "winners",
    "redraws",
}
_VRF = {"suite", "key_id", "fingerprint", "n", "e"}
_WINNER = {"tier", "position", "ticket_number", "ticket_id", "amount_cents"}
_REDRAW = {"tier", "replaced_ticket_number", "reason", "pi", *_WINNER - {"tier"}}


@dataclass(frozen=True)
class DrawProof:
    """A draw proof whose *shape* is valid (:func:`load_proof`); :mod:`.verify` checks the rest.

    Values are as stated by the proof: ``key_id``, ``fingerprint``, ``nonce_commitment``,
    ``ticket_count``, ``ticket_root``, ``gross_sales_cents`` (an input of alpha, and the sum of
    the tickets' amounts), ``alpha``, ``beta``, ``winners`` and the results of ``redraws`` are
    claims to be compared with recomputed values.
    """

    raffle_id: str
    algorithm: str
    public_key: vrf.VrfPublicKey
    key_id: str
    fingerprint: str
    nonce: bytes
    nonce_commitment: bytes
    prize_table: tuple[Tier, ...]
    gross_sales_cents: int
    ticket_count: int
    ticket_root: bytes
    tickets: Sequence[DrawTicket] | None
    tickets_file_sha256: bytes | None
    alpha: bytes
    pi: bytes
    beta: bytes
    winners: tuple[ClaimedWinner, ...]
    redraws: tuple[ClaimedRedraw, ...]
    audit_checkpoint: AuditCheckpoint | None = None

    def to_dict(self) -> dict[str, Any]:
        """The proof as JSON; ``load_proof(d).to_dict() == d`` for every valid ``d``."""
        return self._document(rows=True)

    def _document(self, *, rows: bool) -> dict[str, Any]:
        """:meth:`to_dict`, with an empty ``tickets.list`` unless ``rows`` (:meth:`to_bytes`)."""
        tickets: dict[str, Any] = {"count": self.ticket_count, "root": self.ticket_root.hex()}
        if self.tickets is not None:
            tickets["list"] = list(map(list, self.tickets)) if rows else []
        else:
            assert self.tickets_file_sha256 is not None
            tickets["file_sha256"] = self.tickets_file_sha256.hex()
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "algorithm": self.algorithm,
            "raffle_id": self.raffle_id,
            "vrf": {
                "suite": vrf.SUITE,
                "key_id": self.key_id,
                "fingerprint": self.fingerprint,
                "n": self.public_key.n.to_bytes(self.public_key.k, "big").hex(),
                "e": self.public_key.e,
            },
            "nonce": self.nonce.hex(),
            "nonce_commitment": self.nonce_commitment.hex(),
            "prize_table": _prize_table_json(self.prize_table),
            "gross_sales_cents": self.gross_sales_cents,
            "tickets": tickets,
            "alpha": self.alpha.hex(),
            "pi": self.pi.hex(),
            "beta": self.beta.hex(),
            "winners": [w.to_dict() for w in self.winners],
            "redraws": [r.to_dict() for r in self.redraws],
        }
        if self.audit_checkpoint is not None:
            out["audit_checkpoint"] = self.audit_checkpoint.to_dict()
        return out

    def to_bytes(self) -> bytes:
        """The proof as published: :func:`proof_bytes` of :meth:`to_dict` (the same bytes)."""
        if isinstance(self.tickets, TicketList) and self.tickets:
            return _jcs_with_rows(self._document(rows=False), self.tickets, self.to_dict)
        return proof_bytes(self.to_dict())

    def sha256(self) -> str:
        """``proof_sha256``: hex SHA-256 of :meth:`to_bytes` (``docs/draw-proof.md`` section 11)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _load_vrf(value: object) -> tuple[vrf.VrfPublicKey, str, str]:
    data = _obj(value, "vrf", _VRF)
    if data["suite"] != vrf.SUITE:
        raise ProofInvalid(f"must be {vrf.SUITE!r}", field="vrf.suite")
    n_bytes = _hex(data["n"], "vrf.n")
    if not n_bytes or n_bytes[0] == 0:
        raise ProofInvalid("must be the modulus in exactly k bytes (no leading zero byte)", field="vrf.n")
    e = data["e"]
    if not _is_int(e):
        raise ProofInvalid("must be an integer", field="vrf.e")
    n = int.from_bytes(n_bytes, "big")
    if n.bit_length() < vrf.MIN_MODULUS_BITS or n % 2 == 0:
        raise ProofInvalid(f"must be an odd modulus of at least {vrf.MIN_MODULUS_BITS} bits", field="vrf.n")
    try:
        key = vrf.VrfPublicKey(n, e)
    except vrf.VrfInvalid as exc:
        raise ProofInvalid(exc.detail, field="vrf.e") from None
    return key, _str(data["key_id"], "vrf.key_id", max_len=64), _str(data["fingerprint"], "vrf.fingerprint")


def _load_winner(value: object, where: str) -> ClaimedWinner:
    data = _obj(value, where, _WINNER)
    return ClaimedWinner(
        tier=_str(data["tier"], f"{where}.tier"),
        position=_int(data["position"], f"{where}.position"),
        ticket_number=_int(data["ticket_number"], f"{where}.ticket_number"),
        ticket_id=_str(data["ticket_id"], f"{where}.ticket_id"),
        amount_cents=_int(data["amount_cents"], f"{where}.amount_cents"),
    )


def _load_redraw(value: object, where: str, k: int) -> ClaimedRedraw:
    data = _obj(value, where, _REDRAW)
    return ClaimedRedraw(
        tier=_str(data["tier"], f"{where}.tier"),
        replaced_ticket_number=_int(data["replaced_ticket_number"], f"{where}.replaced_ticket_number"),
        reason=_str(data["reason"], f"{where}.reason", max_len=MAX_REASON),
        pi=_hex(data["pi"], f"{where}.pi", k),
        position=_int(data["position"], f"{where}.position"),
        ticket_number=_int(data["ticket_number"], f"{where}.ticket_number"),
        ticket_id=_str(data["ticket_id"], f"{where}.ticket_id"),
        amount_cents=_int(data["amount_cents"], f"{where}.amount_cents"),
    )


def load_proof(data: Mapping[str, Any]) -> DrawProof:
    """Parse a draw proof and check its shape: members, types, lengths (no cryptography yet).

    Raises:
        ProofInvalid: a member is missing, unknown, of the wrong type or malformed; ``field``
            names it.
    """
    proof = _obj(data, "", _TOP, frozenset({"audit_checkpoint"}))
    if proof["schema"] != SCHEMA:
        raise ProofInvalid(f"must be {SCHEMA!r} (the only schema this verifier knows)", field="schema")
    if proof["algorithm"] != ALGORITHM:
        raise ProofInvalid(f"must be {ALGORITHM!r} (the only algorithm this verifier knows)", field="algorithm")
    key, key_id, fingerprint = _load_vrf(proof["vrf"])
    try:
        tiers = parse_prize_table(_list(proof["prize_table"], "prize_table"))
    except DrawInputInvalid as exc:
        raise ProofInvalid(exc.detail, field=str(exc.extra.get("field", "prize_table"))) from None
    raw_tickets = proof["tickets"]
    if isinstance(raw_tickets, dict) and "file_sha256" in raw_tickets:
        tickets_obj = _obj(raw_tickets, "tickets", {"count", "root", "file_sha256"})
        tickets, file_sha256 = None, _hex(tickets_obj["file_sha256"], "tickets.file_sha256", 32)
    else:
        tickets_obj = _obj(raw_tickets, "tickets", {"count", "root", "list"})
        tickets, file_sha256 = tuple(_parse_ticket_rows(tickets_obj["list"], "tickets.list")), None
    checkpoint = proof.get("audit_checkpoint")
    return DrawProof(
        raffle_id=_str(proof["raffle_id"], "raffle_id", max_len=200),
        algorithm=proof["algorithm"],
        public_key=key,
        key_id=key_id,
        fingerprint=fingerprint,
        nonce=_hex(proof["nonce"], "nonce", NONCE_SIZE),
        nonce_commitment=_hex(proof["nonce_commitment"], "nonce_commitment", 32),
        prize_table=tiers,
        gross_sales_cents=_int(proof["gross_sales_cents"], "gross_sales_cents"),
        ticket_count=_int(tickets_obj["count"], "tickets.count"),
        ticket_root=_hex(tickets_obj["root"], "tickets.root", merkle.HASH_SIZE),
        tickets=tickets,
        tickets_file_sha256=file_sha256,
        alpha=_hex(proof["alpha"], "alpha"),
        pi=_hex(proof["pi"], "pi", key.k),
        beta=_hex(proof["beta"], "beta", vrf.HASH_LEN),
        winners=tuple(_load_winner(w, f"winners[{i}]") for i, w in enumerate(_list(proof["winners"], "winners"))),
        redraws=tuple(
            _load_redraw(r, f"redraws[{i}]", key.k) for i, r in enumerate(_list(proof["redraws"], "redraws"))
        ),
        audit_checkpoint=None if checkpoint is None else AuditCheckpoint.from_dict(checkpoint),
    )


# --- checks shared by building and verifying -----------------------------------------------------


def check_audit_checkpoint(
    checkpoint: AuditCheckpoint, *, raffle_id: str, nonce_commitment: bytes, fingerprint: str
) -> None:
    """The checkpoint's entry publishes this raffle's commitment and key, and is in the log tree.

    Raises:
        ProofInvalid: the entry names another raffle, commitment or key, or is not included.
    """
    where = "audit_checkpoint"
    if checkpoint.entry.get("type") != "draw.committed":
        raise ProofInvalid("the entry must be the draw's draw.committed entry", field=f"{where}.entry.type")
    payload = checkpoint.entry.get("payload")
    if not isinstance(payload, dict):
        raise ProofInvalid("must be a JSON object", field=f"{where}.entry.payload")
    expected = {"raffle_id": raffle_id, "nonce_commitment": nonce_commitment.hex(), "vrf_fingerprint": fingerprint}
    for key, value in expected.items():
        if payload.get(key) != value:
            raise ProofInvalid(f"the entry's {key} must be {value!r}", field=f"{where}.entry.payload.{key}")
    try:
        leaf = merkle.leaf_hash(canonical_bytes(checkpoint.entry))
    except TombolaError as exc:
        raise ProofInvalid(exc.detail, field=f"{where}.entry") from None
    try:
        merkle.verify_inclusion(
            leaf, checkpoint.leaf_index, checkpoint.tree_size, checkpoint.inclusion_proof, checkpoint.root_hash
        )
    except merkle.MerkleProofInvalid as exc:
        raise ProofInvalid(
            f"the entry is not in the log tree of {checkpoint.tree_size} leaves at index {checkpoint.leaf_index} "
            f"({exc.detail}): the entry, leaf_index, tree_size, root_hash or inclusion_proof was changed",
            field=where,
        ) from None
    if checkpoint.entry.get("index") != checkpoint.leaf_index:
        raise ProofInvalid("the entry's index must be its leaf_index", field=f"{where}.leaf_index")
    try:
        opened = notes.open_note(checkpoint.note, [notes.NoteVerifier.parse(checkpoint.key)])
    except notes.NoteKeyInvalid as exc:
        raise ProofInvalid(exc.detail, field=f"{where}.key") from None
    except notes.NoteInvalid as exc:
        raise ProofInvalid(f"the note is not signed by the key: {exc.detail}", field=f"{where}.note") from None
    try:
        head = notes.parse_checkpoint(opened.body)
    except notes.NoteInvalid as exc:
        raise ProofInvalid(exc.detail, field=f"{where}.note") from None
    if head.tree_size != checkpoint.tree_size:
        raise ProofInvalid(f"the signed note is of tree size {head.tree_size}", field=f"{where}.tree_size")
    if head.root_hash != checkpoint.root_hash:
        raise ProofInvalid(f"the signed note's root is {head.root_hash.hex()}", field=f"{where}.root_hash")


# --- building ------------------------------------------------------------------------------------


def build_proof(
    *,
    raffle_id: str,
    public_key: vrf.VrfPublicKey,
    nonce: bytes,
    tickets: Sequence[DrawTicket],
    prize_table: Sequence[Mapping[str, Any] | Tier],
    rsasp1: Callable[[int], int],
    gross_sales_cents: int | None = None,
    redraws: Sequence[RedrawRequest] = (),
    embed_tickets: bool = True,
    audit_checkpoint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the draw and return its proof as a JSON-ready dict: :func:`build_draw_proof` (same
    arguments), ``.to_dict()``."""
    return build_draw_proof(
        raffle_id=raffle_id,
        public_key=public_key,
        nonce=nonce,
        tickets=tickets,
        prize_table=prize_table,
        rsasp1=rsasp1,
        gross_sales_cents=gross_sales_cents,
        redraws=redraws,
        embed_tickets=embed_tickets,
        audit_checkpoint=audit_checkpoint,
    ).to_dict()


def build_draw_proof(
    *,
    raffle_id: str,
    public_key: vrf.VrfPublicKey,
    nonce: bytes,
    tickets: Sequence[DrawTicket],
    prize_table: Sequence[Mapping[str, Any] | Tier],
    rsasp1: Callable[[int], int],
    gross_sales_cents: int | None = None,
    redraws: Sequence[RedrawRequest] = (),
    embed_tickets: bool = True,
    audit_checkpoint: Mapping[str, Any] | None = None,
    root: bytes | None = None,
) -> DrawProof:
    """Run the draw and return its proof (:meth:`DrawProof.to_dict` is the JSON document,
    :meth:`DrawProof.to_bytes` its published bytes).

    Deterministic: the same inputs give the same proof (RSA-FDH is deterministic), so running it
    again after a crash reproduces the draw instead of making a second one. Redraws are appended
    by calling it again with the longer ``redraws`` list; the original winners do not change.

    Args:
        raffle_id: the raffle.
        public_key: the VRF key's public half (the private half is behind ``rsasp1``).
        nonce: the 32-byte nonce whose SHA-256 was published when sales opened.
        tickets: the eligible tickets (sold; voided and refunded left out), sorted by number,
            each with its amount.
        prize_table: the tiers, in draw order.
        rsasp1: the private RSA operation of the VRF key (the HSM, ``CKM_RSA_X_509``).
        gross_sales_cents: gross sales, for ``percent_of_sales`` prizes: the sum of the tickets'
            ``amount_cents`` (the verifier re-derives it so). Computed when None; when given, it
            must be that sum (a cross-check of the caller's own total).
        redraws: redraw requests in the order made; each is authorised by a VRF proof.
        embed_tickets: embed the ticket list (default); otherwise the proof names the ticket
            file :func:`tickets_file_bytes` by its SHA-256 and the caller publishes that file as
            :func:`tickets_file_name`.
        audit_checkpoint: where the audit log recorded the sales-open commitment (optional).
        root: the ticket-set root of ``tickets`` when the caller has computed it from them
            (``merkle.root(ticket_leaf_hashes(tickets))``): the draw service does, to check it
            against the frozen root before any randomness exists, and passes it on so that no
            leaf is hashed twice. Computed here when None. A wrong root makes a proof that does
            not verify.

    Raises:
        DrawInputInvalid: an input is malformed (tickets unsorted, bad prize table, nonce size...),
            or ``gross_sales_cents`` is not the sum of the tickets' amounts.
        NotEnoughTickets: fewer eligible tickets than prizes plus redraws.
        VrfInvalid: ``rsasp1`` did not compute the key's private operation.
        ProofInvalid: ``audit_checkpoint`` does not show the commitment in the log.
    """
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise DrawInputInvalid(f"the nonce is {NONCE_SIZE} bytes", field="nonce")
    if not isinstance(raffle_id, str) or not raffle_id or len(raffle_id) > 200:
        raise DrawInputInvalid("the raffle id is a string of 1-200 characters", field="raffle_id")
    tiers = parse_prize_table(prize_table)
    tickets = TicketList.of(tickets)
    gross = sum(map(_AMOUNT, tickets))
    if gross_sales_cents is None:
        gross_sales_cents = gross
    elif gross_sales_cents != gross:
        raise DrawInputInvalid(
            f"gross sales of {gross_sales_cents!r} cents are not the {gross} cents the tickets' amounts add up to",
            field="gross_sales_cents",
        )
    if root is None:
        root = ticket_root(tickets)
    elif len(root) != merkle.HASH_SIZE:
        raise DrawInputInvalid("the ticket-set root is 32 bytes", field="root")
    commitment = nonce_commitment(nonce)
    checkpoint = None
    if audit_checkpoint is not None:
        checkpoint = AuditCheckpoint.from_dict(dict(audit_checkpoint))
        check_audit_checkpoint(
            checkpoint, raffle_id=raffle_id, nonce_commitment=commitment, fingerprint=public_key.fingerprint
        )
    alpha = alpha_bytes(
        raffle_id=raffle_id,
        ticket_root=root,
        ticket_count=len(tickets),
        nonce=nonce,
        prize_table=tiers,
        gross_sales_cents=gross_sales_cents,
        audit_checkpoint=checkpoint,
    )
    pi = vrf.prove(alpha, n=public_key.n, e=public_key.e, rsasp1=rsasp1)
    beta = vrf.proof_to_hash(pi)
    selection: Selection = select(beta, tickets, tiers, gross_sales_cents=gross_sales_cents, redraws=redraws)
    claimed_redraws = []
    for r in selection.redraws:
        redraw_alpha = redraw_alpha_bytes(
            raffle_id=raffle_id,
            beta=beta,
            index=r.index,
            tier=r.tier,
            replaced_ticket_number=r.replaced.number,
            reason=r.reason,
        )
        claimed_redraws.append(
            ClaimedRedraw(
                tier=r.tier,
                replaced_ticket_number=r.replaced.number,
                reason=r.reason,
                pi=vrf.prove(redraw_alpha, n=public_key.n, e=public_key.e, rsasp1=rsasp1),
                position=r.position,
                ticket_number=r.ticket.number,
                ticket_id=r.ticket.ticket_id,
                amount_cents=r.amount_cents,
            )
        )
    proof = DrawProof(
        raffle_id=raffle_id,
        algorithm=ALGORITHM,
        public_key=public_key,
        key_id=public_key.key_id,
        fingerprint=public_key.fingerprint,
        nonce=nonce,
        nonce_commitment=commitment,
        prize_table=tiers,
        gross_sales_cents=gross_sales_cents,
        ticket_count=len(tickets),
        ticket_root=root,
        tickets=tickets if embed_tickets else None,
        tickets_file_sha256=None if embed_tickets else hashlib.sha256(tickets_file_bytes(tickets)).digest(),
        alpha=alpha,
        pi=pi,
        beta=beta,
        winners=tuple(
            ClaimedWinner(w.tier, w.position, w.ticket.number, w.ticket.ticket_id, w.amount_cents)
            for w in selection.winners
        ),
        redraws=tuple(claimed_redraws),
        audit_checkpoint=checkpoint,
    )
    return proof
