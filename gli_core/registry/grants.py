"""Grants: signed blocks of a raffle's numbers given to one device, and the keys that sign them.

I1: numbers are handed out by moving ``core_raffle.next_number`` under a row lock
(``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two grants never
overlap, whatever the number of server processes; ``UNIQUE(raffle_id, first_number)`` backs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uuid6
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from gli_core.draw.state_machine import FROZEN
from gli_core.errors import DeviceCapReached, NotEnoughNumbers, NumbersExhausted, RaffleNotOpen
from gli_core.registry.base import RegistryBase
from gli_core.registry.raffles import read_raffle
from gli_core.tables import GRANT, HOLD_DRAWS, KEY, RAFFLE, TICKET, now_ms
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import PublicKey, b64u_decode, b64u_encode

# Statements of every sync, built once: building a SQLAlchemy statement costs more CPU than
# running a prepared one (~0.3 ms against ~0.17 ms on the reference machine).
_GRANT_RANGES = (
    select(GRANT.c.raffle_id, GRANT.c.first_number, GRANT.c.last_number)
    .where(and_(GRANT.c.device_id == bindparam("device_id"), GRANT.c.status == "active"))
    .order_by(GRANT.c.raffle_id, GRANT.c.first_number)
)
# The grants of a raffle never overlap (I1), so the grant holding number ``lo``, if any, is the one
# with the greatest first number <= ``lo``: from there to ``hi`` is one range scan of the
# UNIQUE(raffle_id, first_number) index, however many grants the raffle has (the online channel
# has one per sale).
_FLOOR = (
    select(func.max(GRANT.c.first_number))
    .where(and_(GRANT.c.raffle_id == bindparam("raffle_id"), GRANT.c.first_number <= bindparam("lo")))
    .scalar_subquery()
)
_COVERING = (
    select(GRANT.c.first_number, GRANT.c.last_number)
    .where(
        and_(
            GRANT.c.raffle_id == bindparam("raffle_id"),
            GRANT.c.first_number >= func.coalesce(_FLOOR, 0),
            GRANT.c.first_number <= bindparam("hi"),
            GRANT.c.device_id == bindparam("device_id"),
            GRANT.c.status == "active",
        )
    )
    .order_by(GRANT.c.first_number)
)


@dataclass(frozen=True)
class GrantView:
    grant: RangeGrant
    kind: str
    status: str
    reason: str


def grant_ranges(conn: Connection, device_id: str) -> dict[str, list[tuple[int, int]]]:
    """``raffle_id -> [(first, last), ...]`` of the device's active grants (no payload parsed)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for r in conn.execute(_GRANT_RANGES, {"device_id": device_id}):
        ranges.setdefault(r.raffle_id, []).append((r.first_number, r.last_number))
    return ranges


def device_ranges_covering(conn: Connection, raffle_id: str, device_id: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """``[(first, last), ...]`` of the device's active grants of ``raffle_id`` that hold numbers
    between ``lo`` and ``hi``, by first number."""
    params = {"raffle_id": raffle_id, "device_id": device_id, "lo": lo, "hi": hi}
    return [(r.first_number, r.last_number) for r in conn.execute(_COVERING, params)]


class GrantsMixin(RegistryBase):
    """Signing keys, issuing and reading grants, voiding them."""

    # -- keys ---------------------------------------------------------------
    def record_signer(self) -> None:
        """Record the signer's public key (idempotent)."""
        with self.engine.begin() as conn:
            found = conn.execute(select(KEY.c.key_id).where(KEY.c.key_id == self.signer.key_id)).first()
            if found is None:
                conn.execute(
                    insert(KEY).values(
                        key_id=self.signer.key_id,
                        algorithm="ed25519",
                        purpose="grant",
                        public_key=b64u_encode(self.signer.public_key),
                        created_at_ms=now_ms(),
                    )
                )
                self._log(
                    conn, "key.generated", {"purpose": "grant", "algorithm": "ed25519", "key_id": self.signer.key_id}
                )

    def public_keys(self) -> list[PublicKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(KEY).where(KEY.c.algorithm == "ed25519")).all()
        keys = [PublicKey(key_id=r.key_id, public_key=b64u_decode(r.public_key)) for r in rows]
        if not any(k.key_id == self.signer.key_id for k in keys):
            keys.append(PublicKey(key_id=self.signer.key_id, public_key=self.signer.public_key))
        return keys

    # -- grants -------------------------------------------------------------
    def issue_grant(
        self,
        raffle_id: str,
        device_id: str,
        *,
        numbers: int | None = None,
        kind: str = "initial",
        reason: str = "",
        enforce_cap: bool = True,
        exact: bool = False,
        at_ms: int | None = None,
    ) -> RangeGrant:
        """Reserve the next free block of ``raffle_id`` for ``device_id`` and sign it.

        The block is ``numbers`` (default: the raffle's grant size) long, cut to the device's cap
        (``enforce_cap``) and to what is left of the number space. With ``exact`` (an admin's
        extension) it is never cut: asking for more than is left raises
        :class:`NotEnoughNumbers` with the count that is left, and nothing is granted.
        """
        issued = at_ms if at_ms is not None else now_ms()
        with self.engine.begin() as conn:
            spec = read_raffle(conn, raffle_id, lock=True)
            if spec.status != "open" or issued >= spec.sales_close_at_ms:
                raise RaffleNotOpen(f"raffle {raffle_id} is not selling, so no numbers are granted")
            size = numbers or spec.grant_size
            if enforce_cap:
                held = conn.execute(
                    select(func.coalesce(func.sum(GRANT.c.last_number - GRANT.c.first_number + 1), 0)).where(
                        and_(GRANT.c.raffle_id == raffle_id, GRANT.c.device_id == device_id)
                    )
                ).scalar_one()
                size = min(size, spec.max_numbers_per_device - int(held))
                if size <= 0:
                    raise DeviceCapReached(
                        f"device {device_id} already holds its cap of {spec.max_numbers_per_device} numbers"
                    )
            first = conn.execute(select(RAFFLE.c.next_number).where(RAFFLE.c.id == raffle_id)).scalar_one()
            left = max(0, spec.number_space - first + 1)
            if exact and size > left:
                raise NotEnoughNumbers(
                    f"raffle {raffle_id} has {left} number(s) left to grant, fewer than the {size} asked for; "
                    f"ask for at most {left}",
                    left=left,
                )
            last = min(first + size - 1, spec.number_space)
            if last < first:
                raise NumbersExhausted(f"raffle {raffle_id} has no numbers left to grant")
            conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(next_number=last + 1))
            grant = RangeGrant(
                grant_id=str(uuid6.uuid7()),
                raffle_id=raffle_id,
                device_id=device_id,
                first_number=first,
                last_number=last,
                issued_at_ms=issued,
                lease_s=spec.lease_s,
                sales_close_at_ms=spec.sales_close_at_ms,
                signer_key_id=self.signer.key_id,
            ).signed_by(self.signer)
            conn.execute(
                insert(GRANT).values(
                    id=grant.grant_id,
                    raffle_id=raffle_id,
                    device_id=device_id,
                    first_number=first,
                    last_number=last,
                    issued_at_ms=issued,
                    kind=kind,
                    reason=reason,
                    status="active",
                    signer_key_id=grant.signer_key_id,
                    payload=grant.model_dump_json(exclude_none=True),
                )
            )
            self._log(
                conn,
                "grant.issued",
                {
                    "grant_id": grant.grant_id,
                    "raffle_id": raffle_id,
                    "device_id": device_id,
                    "first_number": first,
                    "last_number": last,
                    "kind": kind,
                    "reason": reason,
                    "signer_key_id": grant.signer_key_id,
                },
                spec.tenant,
            )
        return grant

    def grants(
        self, *, device_id: str | None = None, raffle_id: str | None = None, status: str | None = "active"
    ) -> list[GrantView]:
        query = select(GRANT).order_by(GRANT.c.raffle_id, GRANT.c.first_number)
        if device_id is not None:
            query = query.where(GRANT.c.device_id == device_id)
        if raffle_id is not None:
            query = query.where(GRANT.c.raffle_id == raffle_id)
        if status is not None:
            query = query.where(GRANT.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            GrantView(grant=self._signed_grant(r.id, r.payload), kind=r.kind, status=r.status, reason=r.reason)
            for r in rows
        ]

    def _signed_grant(self, grant_id: str, payload: str) -> RangeGrant:
        """The grant as signed, parsed once per process: a grant's payload never changes after it
        is issued (its status is a column of its own), and every sync's ack sends the device's."""
        cached = self._grant_cache.get(grant_id)
        if cached is None or cached[0] != payload:
            if len(self._grant_cache) >= 100_000:
                self._grant_cache.clear()
            cached = self._grant_cache[grant_id] = (payload, RangeGrant.model_validate_json(payload))
        return cached[1]

    def set_grants_status(self, grant_ids: Sequence[str], status: str, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(GRANT).where(GRANT.c.id.in_(list(grant_ids))).values(status=status, reason=reason))
            rows = conn.execute(
                select(GRANT.c.id, GRANT.c.raffle_id, GRANT.c.device_id, RAFFLE.c.tenant)
                .join(RAFFLE, RAFFLE.c.id == GRANT.c.raffle_id)
                .where(GRANT.c.id.in_(list(grant_ids)))
                .order_by(GRANT.c.id)
            ).all()
            for tenant in sorted({r.tenant for r in rows}):
                mine = [r for r in rows if r.tenant == tenant]
                self._log(
                    conn,
                    "grant.voided" if status == "voided" else "grant.status_changed",
                    {
                        "grants": [
                            {"grant_id": r.id, "raffle_id": r.raffle_id, "device_id": r.device_id} for r in mine
                        ],
                        "status": status,
                        "reason": reason,
                    },
                    tenant,
                )

    def void_device_grants(self, device_id: str, reason: str) -> list[dict[str, Any]]:
        """Void the unsold remainder of every active grant of ``device_id`` (a revoked device), in
        one transaction with one ``grant.voided`` entry per tenant; returns what was voided.

        A grant's unsold numbers are those not on record; from now on the core records none of
        the grant's numbers (a sale the device made but never synced is refused, ``outside_grant``).
        Grants of raffles whose ticket set is frozen for the draw are left as they are (the set
        takes nothing any more either way). A device with no active grant left: nothing changes
        and nothing is logged.
        """
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(GRANT.c.id, GRANT.c.raffle_id, GRANT.c.first_number, GRANT.c.last_number)
                .where(and_(GRANT.c.device_id == device_id, GRANT.c.status == "active"))
                .order_by(GRANT.c.raffle_id, GRANT.c.first_number)
            ).all()
            if not rows:
                return []
            raffle_ids = sorted({r.raffle_id for r in rows})
            frozen = {
                d.raffle_id
                for d in conn.execute(HOLD_DRAWS, {"raffle_ids": raffle_ids})
                if d.state in {f.value for f in FROZEN}
            }
            rows = [r for r in rows if r.raffle_id not in frozen]
            if not rows:
                return []
            ids = [r.id for r in rows]
            conn.execute(update(GRANT).where(GRANT.c.id.in_(ids)).values(status="voided", reason=reason))
            tenants: dict[str, str] = dict(
                conn.execute(select(RAFFLE.c.id, RAFFLE.c.tenant).where(RAFFLE.c.id.in_(raffle_ids))).all()
            )
            voided: list[dict[str, Any]] = []
            for r in rows:
                sold = conn.execute(
                    select(func.count()).where(
                        and_(TICKET.c.raffle_id == r.raffle_id, TICKET.c.number.between(r.first_number, r.last_number))
                    )
                ).scalar_one()
                voided.append(
                    {
                        "grant_id": r.id,
                        "raffle_id": r.raffle_id,
                        "device_id": device_id,
                        "first_number": r.first_number,
                        "last_number": r.last_number,
                        "unsold": r.last_number - r.first_number + 1 - int(sold),
                    }
                )
            for tenant in sorted({tenants.get(v["raffle_id"], "") for v in voided}):
                mine = [v for v in voided if tenants.get(v["raffle_id"], "") == tenant]
                self._log(
                    conn,
                    "grant.voided",
                    {
                        "grants": mine,
                        "status": "voided",
                        "reason": reason,
                        "unsold": sum(v["unsold"] for v in mine),
                    },
                    tenant,
                )
        return voided
