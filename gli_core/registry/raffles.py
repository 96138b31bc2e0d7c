"""Raffles as the core knows them: number space, sales window, grant terms and status."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gli_core.errors import RaffleExists, RaffleNotFound
from gli_core.registry.base import RegistryBase
from gli_core.tables import RAFFLE, now_ms

#: what ``core_raffle.status`` may hold; only ``open`` and ``closed`` raffles record tickets
#: (a closed one only sales made before its close)
RAFFLE_STATUSES = ("open", "closed", "cancelled")


@dataclass(frozen=True)
class RaffleSpec:
    """What the core must know of a raffle."""

    raffle_id: str
    number_space: int
    sales_open_at_ms: int
    sales_close_at_ms: int
    grant_size: int = 1000
    lease_s: int = 8 * 3600
    max_numbers_per_device: int = 10_000
    status: str = "open"
    tenant: str = ""


def read_raffle(conn: Connection, raffle_id: str, lock: bool = False) -> RaffleSpec:
    """The raffle's row (``lock``: ``FOR UPDATE``); :class:`RaffleNotFound` if there is none."""
    query = select(RAFFLE).where(RAFFLE.c.id == raffle_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise RaffleNotFound(f"raffle {raffle_id} is not known to the core")
    return RaffleSpec(
        raffle_id=row.id,
        number_space=row.number_space,
        sales_open_at_ms=row.sales_open_at_ms,
        sales_close_at_ms=row.sales_close_at_ms,
        grant_size=row.grant_size,
        lease_s=row.lease_s,
        max_numbers_per_device=row.max_numbers_per_device,
        status=row.status,
        tenant=row.tenant,
    )


class RafflesMixin(RegistryBase):
    """Registering raffles and changing their close time and status."""

    def register_raffle(self, spec: RaffleSpec) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(RAFFLE.c.id).where(RAFFLE.c.id == spec.raffle_id)).first():
                raise RaffleExists(f"raffle {spec.raffle_id} is already registered in the core")
            conn.execute(
                insert(RAFFLE).values(
                    id=spec.raffle_id,
                    number_space=spec.number_space,
                    next_number=1,
                    grant_size=spec.grant_size,
                    lease_s=spec.lease_s,
                    max_numbers_per_device=spec.max_numbers_per_device,
                    sales_open_at_ms=spec.sales_open_at_ms,
                    sales_close_at_ms=spec.sales_close_at_ms,
                    status=spec.status,
                    tenant=spec.tenant,
                    created_at_ms=now_ms(),
                )
            )
            self._log(
                conn,
                "raffle.created",
                {
                    "raffle_id": spec.raffle_id,
                    "number_space": spec.number_space,
                    "sales_open_at_ms": spec.sales_open_at_ms,
                    "sales_close_at_ms": spec.sales_close_at_ms,
                    "grant_size": spec.grant_size,
                    "lease_s": spec.lease_s,
                    "max_numbers_per_device": spec.max_numbers_per_device,
                    "status": spec.status,
                },
                spec.tenant,
            )

    def update_raffle(
        self,
        raffle_id: str,
        *,
        sales_close_at_ms: int | None = None,
        status: str | None = None,
        sales_open_at_ms: int | None = None,
    ) -> RaffleSpec:
        values: dict[str, object] = {}
        if sales_open_at_ms is not None:  # a scheduled raffle opened early (the draw follows this time)
            values["sales_open_at_ms"] = sales_open_at_ms
        if sales_close_at_ms is not None:
            values["sales_close_at_ms"] = sales_close_at_ms
        if status is not None:
            values["status"] = status
        with self.engine.begin() as conn:
            before = read_raffle(conn, raffle_id, lock=True)
            if values:
                conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(**values))
                changes = {k: [getattr(before, k), v] for k, v in values.items() if getattr(before, k) != v}
                if changes:
                    self._log(conn, "raffle.changed", {"raffle_id": raffle_id, "changes": changes}, before.tenant)
            return read_raffle(conn, raffle_id)

    def raffle(self, raffle_id: str) -> RaffleSpec:
        with self.reads.connect() as conn:
            return read_raffle(conn, raffle_id)
