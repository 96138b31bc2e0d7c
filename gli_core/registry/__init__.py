"""The ticket registry: raffles' number spaces, grants and recorded tickets (SQL lives here).

One module per noun, each a part of :class:`Registry`:

- :mod:`.raffles` - raffles as the core knows them (:class:`RaffleSpec`);
- :mod:`.grants` - signed grants of numbers to devices, and the keys that sign them (I1);
- :mod:`.devices` - device syncs (the reconciliation gate) and device usage (top-ups);
- :mod:`.tickets` - recording sales and voids (I2), and the rules the core itself applies to
  what it records; ticket reads and status changes;
The tables and SQL helpers are :mod:`gli_core.tables`, which :mod:`gli_core.draw.service` imports
too: the registry uses the draw's encodings (:mod:`gli_core.draw.proof`, the states of
:mod:`gli_core.draw.state_machine`), and the draw engine never imports the registry.

Invariants held here, with the database as the last guard:

- I1: numbers are handed out by moving ``core_raffle.next_number`` under a row lock
  (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two grants
  never overlap, whatever the number of server processes; ``UNIQUE(raffle_id, first_number)``
  backs it.
- I2: ``UNIQUE(raffle_id, number)`` on tickets; recording is idempotent per ``sale_id``.
"""

from __future__ import annotations

import hashlib

import uuid6

from gli_core.errors import RaffleNotOpen, SaleConflict
from gli_core.registry.devices import DevicesMixin
from gli_core.registry.grants import GrantsMixin, GrantView
from gli_core.registry.raffles import RAFFLE_STATUSES, RafflesMixin, RaffleSpec
from gli_core.registry.tickets import TICKET_STATUSES, RecordResult, TicketSale, TicketsMixin, TicketView
from gli_core.tables import ONLINE_DEVICE, now_ms
from sync_protocol.canonical import domain_bytes

__all__ = [
    "ONLINE_DEVICE",
    "RAFFLE_STATUSES",
    "TICKET_STATUSES",
    "GrantView",
    "RaffleSpec",
    "RecordResult",
    "Registry",
    "TicketSale",
    "TicketView",
]


class Registry(RafflesMixin, GrantsMixin, DevicesMixin, TicketsMixin):
    """SQL of the ticket registry over one engine (the core database): its parts composed."""

    def generate_online(
        self, raffle_id: str, quantity: int, *, sale_id: str | None = None, amount_cents: int = 0
    ) -> list[TicketView]:
        """Sell ``quantity`` sequential numbers on the online channel (no device), recorded at once.

        Idempotent per ``sale_id``: a sale on record already answers its tickets, with no new grant
        (an online order's allocation is retried until the business side has noted it). A grant
        issued by a call that failed before recording stays unsold, like a device's unsold numbers.

        Raises:
            SaleConflict: ``sale_id`` is on record with another quantity.
            RaffleNotOpen: the raffle is not selling now (nothing is granted or recorded).
        """
        if sale_id is not None:
            recorded = self.tickets_of_sale(sale_id)
            if recorded:
                if len(recorded) != quantity or recorded[0].raffle_id != raffle_id:
                    raise SaleConflict(f"sale {sale_id} is on record with other tickets")
                return recorded
        spec = self.raffle(raffle_id)
        now = now_ms()
        if spec.status != "open" or not spec.sales_open_at_ms <= now < spec.sales_close_at_ms:
            raise RaffleNotOpen(f"raffle {raffle_id} is not selling now")
        sale = sale_id or str(uuid6.uuid7())
        grant = self.issue_grant(
            raffle_id, ONLINE_DEVICE, numbers=quantity, kind="online", enforce_cap=False, exact=True
        )
        numbers = tuple(range(grant.first_number, grant.last_number + 1))
        record_hash = hashlib.sha256(
            domain_bytes("online-sale", {"sale_id": sale, "raffle_id": raffle_id, "numbers": list(numbers)})
        ).hexdigest()
        self.record([TicketSale(sale, ONLINE_DEVICE, 0, raffle_id, numbers, record_hash, amount_cents)])
        return list(self.tickets_of_sale(sale))
