"""A ticket's inclusion proof in a draw's frozen ticket set: a player proves their ticket was in the drum.

The ticket set of a draw is committed as the RFC 9162 Merkle Tree Hash over the ticket leaves
(``tickets.root`` of the draw proof, ``docs/draw-proof.md`` section 4), so one ticket's presence
is shown by an RFC 9162 section 2.1.3 inclusion proof against that root. The **ticket inclusion
document** (``tombola/ticket-inclusion/v1``, ``docs/draw-proof.md`` section 4.1)::

    {"schema": "tombola/ticket-inclusion/v1", "raffle_id": str,
     "ticket": [number, ticket_id, sale_id, amount_cents],
     "leaf_index": int, "tree_size": int, "ticket_root": hex, "inclusion_proof": [hex, ...]}

:func:`ticket_inclusion` builds it from the ticket set (:class:`TicketTree` keeps every level of
the tree, so a path costs ``log2(n)`` list reads after one pass over the leaves);
:func:`verify_ticket_inclusion` checks it against a draw proof's ``tickets.root`` and
``tickets.count`` with no server, database or HSM, and raises :class:`TicketInclusionInvalid`
(``field`` names the member that is wrong) instead of returning a boolean.

Pure: no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gli_core import merkle
from gli_core.draw.proof import MAX_ID_BYTES, ticket_leaf, ticket_leaf_hashes
from gli_core.draw.selection import DrawTicket
from gli_core.errors import CoreError

__all__ = [
    "INCLUSION_SCHEMA",
    "TicketInclusionInvalid",
    "TicketTree",
    "VerifiedInclusion",
    "ticket_inclusion",
    "verify_ticket_inclusion",
]

INCLUSION_SCHEMA = "tombola/ticket-inclusion/v1"
_MEMBERS = {"schema", "raffle_id", "ticket", "leaf_index", "tree_size", "ticket_root", "inclusion_proof"}
_MAX_INT = 2**53


class TicketInclusionInvalid(CoreError):
    """A ticket inclusion document that does not show its ticket in the draw's ticket set."""

    code = "ticket_inclusion_invalid"
    status = 422

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(f"{field}: {detail}", field=field)
        self.field = field


class TicketTree:
    """Every level of the RFC 9162 tree over a sorted ticket set, for O(log n) inclusion paths.

    Level 0 holds the leaf hashes; each next level pairs neighbours (``node_hash``) and carries an
    odd last node up unchanged, which is the tree of RFC 9162 2.1.1 (see :mod:`gli_core.merkle`).
    The path of a leaf is its sibling on each level where it has one, bottom up: exactly
    ``PATH(m, D[n])`` of RFC 9162 2.1.3.1 (a carried node has no sibling on that level).
    """

    def __init__(self, tickets: Sequence[DrawTicket]) -> None:
        self.tickets = list(tickets)
        self.numbers = [t.number for t in self.tickets]
        level = ticket_leaf_hashes(self.tickets)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            pairs = iter(level[:-1] if len(level) & 1 else level)
            upper = [merkle.node_hash(left, right) for left, right in zip(pairs, pairs, strict=True)]
            if len(level) & 1:
                upper.append(level[-1])
            self.levels.append(upper)
            level = upper

    @property
    def root(self) -> bytes:
        """The ticket-set root (``tickets.root``)."""
        return self.levels[-1][0] if self.tickets else merkle.EMPTY_ROOT

    def index_of(self, number: int) -> int | None:
        """The position of ticket ``number`` in the sorted set, or None when it is not in it."""
        i = bisect.bisect_left(self.numbers, number)
        return i if i < len(self.numbers) and self.numbers[i] == number else None

    def path(self, index: int) -> list[bytes]:
        """The inclusion path of leaf ``index``, from the leaf up (RFC 9162 2.1.3.1)."""
        if not 0 <= index < len(self.tickets):
            raise ValueError(f"leaf index {index} is not in a tree of {len(self.tickets)} leaves")
        out: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            index >>= 1
        return out


def ticket_inclusion(raffle_id: str, tree: TicketTree, number: int) -> dict[str, Any] | None:
    """The inclusion document of ticket ``number`` (module docstring), or None when it is not in the set."""
    index = tree.index_of(number)
    if index is None:
        return None
    t = tree.tickets[index]
    return {
        "schema": INCLUSION_SCHEMA,
        "raffle_id": raffle_id,
        "ticket": [t.number, t.ticket_id, t.sale_id, t.amount_cents],
        "leaf_index": index,
        "tree_size": len(tree.tickets),
        "ticket_root": tree.root.hex(),
        "inclusion_proof": [h.hex() for h in tree.path(index)],
    }


@dataclass(frozen=True)
class VerifiedInclusion:
    """What a valid inclusion document shows: ``ticket`` is leaf ``leaf_index`` of the set of
    ``tree_size`` tickets whose root is ``ticket_root`` (hex), in raffle ``raffle_id``."""

    raffle_id: str
    ticket: DrawTicket
    leaf_index: int
    tree_size: int
    ticket_root: str


def _int(key: str, value: object) -> int:
    if type(value) is not int or not 0 <= value < _MAX_INT:
        raise TicketInclusionInvalid(f"must be an integer in [0, 2^53), not {value!r:.40}", field=key)
    return value


def _hash(value: object, field: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * merkle.HASH_SIZE or value != value.lower():
        raise TicketInclusionInvalid("must be 64 lowercase hexadecimal digits", field=field)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise TicketInclusionInvalid("must be 64 lowercase hexadecimal digits", field=field) from None


def _id(value: object, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value.encode()) <= MAX_ID_BYTES:
        raise TicketInclusionInvalid(f"must be a string of 1 to {MAX_ID_BYTES} UTF-8 bytes", field=field)
    return value


def verify_ticket_inclusion(
    doc: object, *, raffle_id: str, ticket_root: str, ticket_count: int, number: int | None = None
) -> VerifiedInclusion:
    """Check that ``doc`` shows its ticket in the ticket set of a draw (``docs/draw-proof.md`` 4.1).

    Args:
        doc: the parsed inclusion document.
        raffle_id: the draw proof's ``raffle_id``.
        ticket_root: the draw proof's ``tickets.root`` (hex).
        ticket_count: the draw proof's ``tickets.count``.
        number: the ticket number the player holds, when given: the document must be about it.

    Raises:
        TicketInclusionInvalid: the document is malformed, names another raffle, ticket or tree,
            or its path does not lead from the ticket's leaf to ``ticket_root`` (``field`` says which).
    """
    if not isinstance(doc, Mapping):
        raise TicketInclusionInvalid("the inclusion proof must be a JSON object", field="inclusion")
    members = set(doc)
    if members != _MEMBERS:
        extra, missing = sorted(members - _MEMBERS), sorted(_MEMBERS - members)
        raise TicketInclusionInvalid(f"unknown members {extra}, missing members {missing}", field="inclusion")
    if doc["schema"] != INCLUSION_SCHEMA:
        raise TicketInclusionInvalid(f"must be {INCLUSION_SCHEMA!r}", field="schema")
    if doc["raffle_id"] != raffle_id:
        raise TicketInclusionInvalid(f"names another raffle than the draw proof's {raffle_id!r}", field="raffle_id")
    row = doc["ticket"]
    if not isinstance(row, list) or len(row) != 4:
        raise TicketInclusionInvalid("must be [number, ticket_id, sale_id, amount_cents]", field="ticket")
    ticket = DrawTicket(
        _int("ticket[0]", row[0]), _id(row[1], "ticket[1]"), _id(row[2], "ticket[2]"), _int("ticket[3]", row[3])
    )
    if number is not None and ticket.number != number:
        raise TicketInclusionInvalid(f"is about ticket {ticket.number}, not {number}", field="ticket[0]")
    index, size = _int("leaf_index", doc["leaf_index"]), _int("tree_size", doc["tree_size"])
    if size != ticket_count:
        raise TicketInclusionInvalid(
            f"{size} is not the draw's ticket count {ticket_count}: another ticket set", field="tree_size"
        )
    root = _hash(doc["ticket_root"], "ticket_root")
    if root.hex() != ticket_root:
        raise TicketInclusionInvalid("is not the draw proof's tickets.root: another ticket set", field="ticket_root")
    path = doc["inclusion_proof"]
    if not isinstance(path, list) or len(path) > 64:
        raise TicketInclusionInvalid("must be a list of at most 64 hashes", field="inclusion_proof")
    hashes = [_hash(h, f"inclusion_proof[{i}]") for i, h in enumerate(path)]
    try:
        merkle.verify_inclusion(merkle.leaf_hash(ticket_leaf(ticket)), index, size, hashes, root)
    except merkle.MerkleProofInvalid as exc:
        raise TicketInclusionInvalid(
            f"ticket {ticket.number} is not in the draw's ticket set: {exc.detail}", field="inclusion_proof"
        ) from None
    return VerifiedInclusion(raffle_id, ticket, index, size, root.hex())
