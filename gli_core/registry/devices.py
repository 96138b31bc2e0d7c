"""What the core keeps per device: when it last synced, and what it holds and used of its grants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import and_, bindparam, func, select

from dbkit import upsert
from gli_core.registry.base import RegistryBase
from gli_core.registry.grants import grant_ranges
from gli_core.registry.tickets import numbers_taken
from gli_core.tables import DEVICE_SYNC, GRANT, TICKET

_ACTIVE_GRANTS_IN = and_(
    GRANT.c.raffle_id.in_(bindparam("raffle_ids", expanding=True)),
    GRANT.c.device_id == bindparam("device_id"),
    GRANT.c.status == "active",
)
_GRANTED = (
    select(GRANT.c.raffle_id, func.sum(GRANT.c.last_number - GRANT.c.first_number + 1))
    .where(_ACTIVE_GRANTS_IN)
    .group_by(GRANT.c.raffle_id)
)
# Counted through the device's grant ranges, which UNIQUE(raffle_id, number) indexes: no index on
# device_id is needed and none slows the inserts.
_USED = (
    select(GRANT.c.raffle_id, func.count())
    .select_from(
        TICKET.join(
            GRANT,
            and_(
                TICKET.c.raffle_id == GRANT.c.raffle_id,
                TICKET.c.number.between(GRANT.c.first_number, GRANT.c.last_number),
            ),
        )
    )
    .where(_ACTIVE_GRANTS_IN)
    .group_by(GRANT.c.raffle_id)
)


class DevicesMixin(RegistryBase):
    """Device syncs (the draw's reconciliation gate) and device usage (top-ups)."""

    def device_synced(self, device_id: str, at_ms: int) -> None:
        """Note that ``device_id`` completed a sync at ``at_ms`` (the draw's reconciliation gate)."""
        with self.engine.begin() as conn:
            upsert(
                conn,
                DEVICE_SYNC,
                {"device_id": device_id, "last_sync_ms": at_ms},
                key=["device_id"],
                update=["last_sync_ms"],
                if_greater="last_sync_ms",
            )

    def last_syncs(self, device_ids: Sequence[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DEVICE_SYNC).where(DEVICE_SYNC.c.device_id.in_(list(device_ids)))).all()
        return {r.device_id: r.last_sync_ms for r in rows}

    def device_usage(
        self, device_id: str, raffle_ids: Sequence[str], spent: Mapping[str, Iterable[int]] | None = None
    ) -> dict[str, tuple[int, int]]:
        """``raffle_id -> (numbers granted in active grants, numbers used of them)`` of a device, on
        one connection, one pair of statements whatever the number of raffles.

        A number is used when a record of the device sold it: a recorded ticket (voided or not),
        or one of ``spent``, the numbers of its records the server rejected (by raffle), as the
        device counts them too (docs/sync-protocol.md section 9). Only numbers inside the
        device's active grants count, each once.
        """
        usage = {raffle_id: (0, 0) for raffle_id in raffle_ids}
        if not usage:
            return usage
        params = {"raffle_ids": list(usage), "device_id": device_id}
        with self.engine.connect() as conn:
            granted: dict[str, int] = dict(conn.execute(_GRANTED, params).all())
            used: dict[str, int] = dict(conn.execute(_USED, params).all())
            wasted = {r: set(numbers) for r, numbers in (spent or {}).items() if r in usage and numbers}
            if wasted:
                ranges = grant_ranges(conn, device_id)
                for raffle_id, numbers in wasted.items():
                    held = [n for n in numbers if any(lo <= n <= hi for lo, hi in ranges.get(raffle_id, ()))]
                    if held:
                        recorded = numbers_taken(conn, raffle_id, held)
                        used[raffle_id] = (used.get(raffle_id) or 0) + sum(1 for n in held if n not in recorded)
        return {r: (int(granted.get(r) or 0), int(used.get(r) or 0)) for r in usage}

    def batch_view(
        self, device_id: str, numbers: Mapping[str, Iterable[int]]
    ) -> tuple[dict[str, list[tuple[int, int]]], dict[tuple[str, int], str]]:
        """What judging a device's batch needs from the core, on one connection: the device's
        active grant ranges by raffle, and which of ``numbers`` (per raffle) are on record, by
        which sale."""
        with self.engine.connect() as conn:
            ranges = grant_ranges(conn, device_id)
            taken: dict[tuple[str, int], str] = {}
            for raffle_id, wanted in numbers.items():
                for number, sale_id in numbers_taken(conn, raffle_id, wanted).items():
                    taken[(raffle_id, number)] = sale_id
        return ranges, taken
