"""The grant wallet: verified grants, the next free numbers, revocations, pinned keys, raffles.

A grant enters the wallet only after its signature verifies with a server key pinned at
enrollment and only if it names this device (:func:`store_grants`); anything else is refused
and reported, never stored. Numbers of a grant are handed out in order, lowest first, so a
grant's state is one high-water mark, ``next_number``: numbers below it are used (sold, voided
or rejected: never reused), numbers from it to ``last_number`` are free.

:func:`pick_numbers` is a pure decision over :class:`GrantSlice` values; the SQL around it
only reads and writes the wallet tables inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pos_client.errors import NumbersExhausted
from sync_protocol.errors import TombolaError
from sync_protocol.messages import RaffleInfo, RangeGrant
from sync_protocol.signing import KeyRing, PublicKey, b64u_decode, b64u_encode

# --------------------------------------------------------------------------- keys


def pin_keys(conn: sqlite3.Connection, keys: Iterable[PublicKey]) -> None:
    for key in keys:
        conn.execute(
            "INSERT OR REPLACE INTO server_keys (key_id, algorithm, public_key) VALUES (?, ?, ?)",
            (key.key_id, key.algorithm, b64u_encode(key.public_key)),
        )


def keyring(conn: sqlite3.Connection) -> KeyRing:
    rows = conn.execute("SELECT key_id, algorithm, public_key FROM server_keys").fetchall()
    return KeyRing([PublicKey(key_id=r[0], algorithm=r[1], public_key=b64u_decode(r[2])) for r in rows])


# --------------------------------------------------------------------------- grants


@dataclass(frozen=True)
class RefusedGrant:
    """A grant the wallet would not store, and why."""

    grant_id: str
    reason: str


@dataclass(frozen=True)
class GrantIntake:
    """What :func:`store_grants` did: ids stored (new ones only) and grants refused."""

    stored: list[str]
    refused: list[RefusedGrant]


def store_grants(
    conn: sqlite3.Connection,
    grants: Iterable[RangeGrant | Mapping[str, Any]],
    *,
    keys: KeyRing,
    device_id: str,
    now_ms: int,
) -> GrantIntake:
    """Verify and store grants; a grant already held is left as it is (its numbers stay used).

    Servers send every active grant in every acknowledgement, so receiving a held grant again
    is normal and silent.

    A grant is refused (not stored) when its signature does not verify with a pinned key,
    when it names another device, or when it overlaps a grant the wallet already holds.
    """
    stored: list[str] = []
    refused: list[RefusedGrant] = []
    for item in grants:
        data = item.to_dict() if isinstance(item, RangeGrant) else dict(item)
        grant_id = str(data.get("grant_id", "?"))
        try:
            grant = RangeGrant.verified(data, keys)
        except TombolaError as exc:
            refused.append(RefusedGrant(grant_id, f"{exc.code}: {exc.detail}"))
            continue
        if grant.device_id != device_id:
            refused.append(RefusedGrant(grant_id, f"grant_invalid: the grant is for device {grant.device_id}"))
            continue
        existing = conn.execute(
            "SELECT raffle_id, first_number, last_number FROM grants WHERE grant_id = ?", (grant.grant_id,)
        ).fetchone()
        if existing is not None:  # servers re-send every active grant: keep the one held
            if tuple(existing) != (grant.raffle_id, grant.first_number, grant.last_number):
                refused.append(RefusedGrant(grant_id, "grant_invalid: a different grant with this id is held"))
            continue
        overlap = conn.execute(
            "SELECT grant_id FROM grants WHERE raffle_id = ? AND first_number <= ? AND last_number >= ?",
            (grant.raffle_id, grant.last_number, grant.first_number),
        ).fetchone()
        if overlap is not None:
            refused.append(RefusedGrant(grant_id, f"grant_invalid: its numbers overlap grant {overlap[0]}"))
            continue
        revoked = conn.execute("SELECT 1 FROM revocations WHERE grant_id = ?", (grant.grant_id,)).fetchone()
        conn.execute(
            "INSERT INTO grants (grant_id, raffle_id, first_number, last_number, next_number, sales_close_at_ms, "
            "revoked, received_at_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.grant_id,
                grant.raffle_id,
                grant.first_number,
                grant.last_number,
                grant.first_number,
                grant.sales_close_at_ms,
                1 if revoked else 0,
                now_ms,
                orjson.dumps(grant.to_dict()).decode(),
            ),
        )
        stored.append(grant.grant_id)
    return GrantIntake(stored=stored, refused=refused)


def revoke(conn: sqlite3.Connection, grant_ids: Iterable[str], *, now_ms: int) -> list[str]:
    """Stop selling from these grants (also from one that arrives later); return those newly revoked."""
    newly: list[str] = []
    for grant_id in grant_ids:
        conn.execute("INSERT OR IGNORE INTO revocations (grant_id, revoked_at_ms) VALUES (?, ?)", (grant_id, now_ms))
        cur = conn.execute("UPDATE grants SET revoked = 1 WHERE grant_id = ? AND revoked = 0", (grant_id,))
        if cur.rowcount:
            newly.append(grant_id)
    return newly


@dataclass(frozen=True)
class GrantSlice:
    """The free part ``next_number..last_number`` of one usable grant."""

    grant_id: str
    next_number: int
    last_number: int

    @property
    def left(self) -> int:
        return max(0, self.last_number - self.next_number + 1)


def usable_slices(conn: sqlite3.Connection, raffle_id: str) -> list[GrantSlice]:
    """Free parts of the raffle's non-revoked grants, lowest first.

    A grant's own ``sales_close_at_ms`` is not checked here: the raffle's close time (which a
    sync can move) decides, as it does on the server.
    """
    rows = conn.execute(
        "SELECT grant_id, next_number, last_number FROM grants "
        "WHERE raffle_id = ? AND revoked = 0 AND next_number <= last_number ORDER BY first_number",
        (raffle_id,),
    ).fetchall()
    return [GrantSlice(grant_id=r[0], next_number=r[1], last_number=r[2]) for r in rows]


#: what the seller is told when the server said why it granted no more numbers (``RaffleInfo.no_grant``)
NO_GRANT_ADVICE = {
    "raffle_numbers_exhausted": "every number of the raffle is granted to devices; syncing brings no more",
    "device_cap_reached": "this device holds the most numbers one device may; an admin can extend its range",
}


def no_grant_advice(code: str) -> str:
    return NO_GRANT_ADVICE.get(code, f"the server grants no more numbers ({code}); ask an admin")


def pick_numbers(
    slices: Sequence[GrantSlice], quantity: int, no_grant: str | None = None
) -> list[tuple[GrantSlice, list[int]]]:
    """The ``quantity`` lowest free numbers across ``slices`` (a sale may span grants).

    Args:
        no_grant: the server's reason for granting this device no more numbers of the raffle, if
            it gave one at the last sync; the refusal then says so instead of "sync to get more".

    Raises:
        NumbersExhausted: fewer than ``quantity`` numbers are free.
    """
    available = sum(s.left for s in slices)
    if available < quantity:
        advice = no_grant_advice(no_grant) if no_grant else "sync to get more"
        raise NumbersExhausted(
            f"{quantity} numbers asked, {available} left in this device's grants: {advice}",
            numbers_left=available,
        )
    picks: list[tuple[GrantSlice, list[int]]] = []
    wanted = quantity
    for piece in sorted(slices, key=lambda s: s.next_number):
        if wanted == 0:
            break
        take = min(wanted, piece.left)
        if take:
            picks.append((piece, list(range(piece.next_number, piece.next_number + take))))
            wanted -= take
    return picks


def consume(conn: sqlite3.Connection, picks: Sequence[tuple[GrantSlice, list[int]]]) -> None:
    """Move each grant's high-water mark past the numbers picked from it."""
    for piece, numbers in picks:
        cur = conn.execute(
            "UPDATE grants SET next_number = ? WHERE grant_id = ? AND next_number = ?",
            (numbers[-1] + 1, piece.grant_id, piece.next_number),
        )
        if cur.rowcount != 1:  # pragma: no cover - only if the transaction discipline is broken
            raise RuntimeError(f"grant {piece.grant_id} changed under a sale")


@dataclass(frozen=True)
class NumberCounts:
    """Numbers of one raffle over the device's non-revoked grants."""

    granted: int
    used: int

    @property
    def left(self) -> int:
        return self.granted - self.used


def counts_by_raffle(conn: sqlite3.Connection) -> dict[str, NumberCounts]:
    rows = conn.execute(
        "SELECT raffle_id, SUM(last_number - first_number + 1), SUM(next_number - first_number) "
        "FROM grants WHERE revoked = 0 GROUP BY raffle_id"
    ).fetchall()
    return {r[0]: NumberCounts(granted=int(r[1]), used=int(r[2])) for r in rows}


def held_grants(conn: sqlite3.Connection) -> list[RangeGrant]:
    """Every grant held (revoked ones included), parsed."""
    rows = conn.execute("SELECT body FROM grants ORDER BY raffle_id, first_number").fetchall()
    return [RangeGrant.from_dict(orjson.loads(r[0])) for r in rows]


# --------------------------------------------------------------------------- raffles


def store_raffles(conn: sqlite3.Connection, raffles: Iterable[RaffleInfo]) -> None:
    """Replace what the device knows of each raffle listed (raffles not listed are kept)."""
    for raffle in raffles:
        conn.execute(
            "INSERT OR REPLACE INTO raffles (raffle_id, name, currency, status, sales_open_at_ms, sales_close_at_ms, "
            "body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                raffle.raffle_id,
                raffle.name,
                raffle.currency,
                raffle.status,
                raffle.sales_open_at_ms,
                raffle.sales_close_at_ms,
                orjson.dumps(raffle.to_dict()).decode(),
            ),
        )


def raffle(conn: sqlite3.Connection, raffle_id: str) -> RaffleInfo | None:
    row = conn.execute("SELECT body FROM raffles WHERE raffle_id = ?", (raffle_id,)).fetchone()
    return None if row is None else RaffleInfo.from_dict(orjson.loads(row[0]))


def raffles(conn: sqlite3.Connection) -> list[RaffleInfo]:
    rows = conn.execute("SELECT body FROM raffles ORDER BY raffle_id").fetchall()
    return [RaffleInfo.from_dict(orjson.loads(r[0])) for r in rows]
