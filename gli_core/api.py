"""The core's public interface: the only part of :mod:`gli_core` the server calls.

``Core.open(db_url, key_dir)`` runs the core in-process (embedded mode); the same object backs
the core's HTTP router (:mod:`gli_core.router`) when the core runs as its own service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from sqlalchemy import Engine

from gli_core.db import make_engine, migrate
from gli_core.keys import load_or_create_grant_signer
from gli_core.registry import (
    GrantView,
    RaffleSpec,
    RecordResult,
    Registry,
    TicketSale,
    TicketView,
)
from sync_protocol.codes import normalise_code
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import PublicKey, Signer

__all__ = ["Core", "GrantView", "RaffleSpec", "RecordResult", "TicketSale", "TicketView", "make_engine"]


class Core:
    """The certified core: ticket registry and grant signing (draws and audit come with their issues)."""

    def __init__(self, engine: Engine, signer: Signer) -> None:
        self.engine = engine
        self.registry = Registry(engine, signer)

    @classmethod
    def open(cls, db_url: str, key_dir: Path, *, run_migrations: bool = True) -> Core:
        """Open (and migrate) the core database at ``db_url`` with keys under ``key_dir``."""
        if run_migrations:
            migrate(db_url)
        core = cls(make_engine(db_url), load_or_create_grant_signer(key_dir))
        core.registry.record_signer()
        return core

    def close(self) -> None:
        self.engine.dispose()

    # keys
    def public_keys(self) -> list[PublicKey]:
        return self.registry.public_keys()

    # raffles
    def register_raffle(self, spec: RaffleSpec) -> None:
        self.registry.register_raffle(spec)

    def update_raffle(
        self, raffle_id: str, *, sales_close_at_ms: int | None = None, status: str | None = None
    ) -> RaffleSpec:
        return self.registry.update_raffle(raffle_id, sales_close_at_ms=sales_close_at_ms, status=status)

    def raffle(self, raffle_id: str) -> RaffleSpec:
        return self.registry.raffle(raffle_id)

    # grants
    def issue_grant(
        self,
        raffle_id: str,
        device_id: str,
        *,
        numbers: int | None = None,
        kind: str = "initial",
        reason: str = "",
        enforce_cap: bool = True,
    ) -> RangeGrant:
        return self.registry.issue_grant(
            raffle_id, device_id, numbers=numbers, kind=kind, reason=reason, enforce_cap=enforce_cap
        )

    def grants(
        self, *, device_id: str | None = None, raffle_id: str | None = None, status: str | None = "active"
    ) -> list[GrantView]:
        return self.registry.grants(device_id=device_id, raffle_id=raffle_id, status=status)

    def void_grants(self, grant_ids: Sequence[str], reason: str) -> None:
        self.registry.set_grants_status(grant_ids, "voided", reason)

    def device_usage(self, device_id: str, raffle_id: str) -> tuple[int, int]:
        return self.registry.device_usage(device_id, raffle_id)

    # tickets
    def numbers_taken(self, raffle_id: str, numbers: Iterable[int]) -> dict[int, str]:
        return self.registry.numbers_taken(raffle_id, numbers)

    def record(self, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str] = ()) -> RecordResult:
        return self.registry.record(sales, voided_sale_ids)

    def generate_tickets(self, raffle_id: str, quantity: int, *, sale_id: str | None = None) -> list[TicketView]:
        return self.registry.generate_online(raffle_id, quantity, sale_id=sale_id)

    def ticket(self, ticket_id: str) -> TicketView:
        return self.registry.ticket(ticket_id)

    def ticket_by_number(self, raffle_id: str, number: int) -> TicketView:
        return self.registry.ticket_by_number(raffle_id, number)

    def validate_ticket(self, ticket_id: str, code: str | None = None) -> tuple[TicketView, bool]:
        """The ticket and whether it is valid: sold (not voided) and, if given, the code matches."""
        ticket = self.registry.ticket(ticket_id)
        valid = ticket.status == "sold" and (code is None or normalise_code(code) == ticket.verification_code)
        return ticket, valid

    def tickets(self, raffle_id: str, *, after_number: int = 0, limit: int | None = None) -> Iterator[TicketView]:
        return self.registry.iter_tickets(raffle_id, after_number=after_number, limit=limit)

    def count_tickets(self, raffle_id: str) -> dict[str, int]:
        return self.registry.count_tickets(raffle_id)

    def set_ticket_status(self, ticket_id: str, status: str) -> TicketView:
        return self.registry.set_ticket_status(ticket_id, status)
