"""The public ticket check: is ticket ``number`` of ``raffle`` with verification ``code`` on record?

Built on the core's own validation (:meth:`gli_core.api.Core.validate_ticket`, which compares
the code in constant time through :func:`sync_protocol.codes.codes_match`). The answer names no
person, device, sale or seller: only

- ``result``: ``valid`` (sold, not voided, the code matches), ``void`` (the code matches but the
  ticket was voided or refunded: it is not in the draw) or ``unknown`` (no such raffle, no such
  ticket, or a code that does not match: the three are not told apart, so the endpoint does not
  reveal which numbers were sold to someone without the receipt);
- ``raffle``: the raffle's public state when it exists (name, ``state``, sales close time).

Read only: nothing is written, not even the draw engine following the clock.
"""

from __future__ import annotations

from typing import Any

from gli_core.errors import RaffleNotFound, TicketNotFound
from server.context import Tombola
from server.errors import NotFound
from server.raffles import service as raffles
from sync_protocol.codes import codes_match

#: ``result`` values
VALID, VOID, UNKNOWN = "valid", "void", "unknown"
#: the raffle's public ``state``, from the core's recorded draw state and the clock
STATES = ("not_open", "selling", "sales_closed", "drawn", "results_published", "cancelled")
_FROM_DRAW = {"DRAWN": "drawn", "PUBLISHED": "results_published", "CANCELLED": "cancelled"}


def raffle_state(status: str, draw_state: str | None, open_ms: int, close_ms: int, now_ms: int) -> str:
    """One of :data:`STATES`: a recorded draw outcome or cancellation first, then the sales window."""
    if status == "cancelled":
        return "cancelled"
    if draw_state in _FROM_DRAW:
        return _FROM_DRAW[draw_state]
    if now_ms < open_ms:
        return "not_open"
    if now_ms < close_ms and status == "open" and draw_state not in ("SALES_CLOSED", "RECONCILED"):
        return "selling"
    return "sales_closed"


def check_ticket(app: Tombola, raffle_id: str, number: int, code: str) -> dict[str, Any]:
    """The public answer for one ticket (see the module docstring); never raises for an unknown one."""
    core = app.core
    answer: dict[str, Any] = {"raffle_id": raffle_id, "number": number, "result": UNKNOWN, "raffle": None}
    try:
        spec = core.raffle(raffle_id)
    except RaffleNotFound:
        return answer
    name = raffle_id
    try:
        name = str(raffles.get_raffle(app, raffle_id)["name"])
    except NotFound:  # a core raffle without its business row still gets an answer
        name = raffle_id
    answer["raffle"] = {
        "name": name,
        "state": raffle_state(
            spec.status,
            core.recorded_draw_state(raffle_id),
            spec.sales_open_at_ms,
            spec.sales_close_at_ms,
            app.now_ms(),
        ),
        "sales_close_at_ms": spec.sales_close_at_ms,
    }
    try:
        ticket = core.ticket_by_number(raffle_id, number)
    except TicketNotFound:
        return answer
    ticket, valid = core.validate_ticket(ticket.id, code)
    if valid:
        answer["result"] = VALID
    elif codes_match(code, ticket.verification_code):
        answer["result"] = VOID
    return answer
