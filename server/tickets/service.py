"""The public ticket check: is ticket ``number`` of ``raffle`` with verification ``code`` on record?

Built on the core's own validation (:meth:`gli_core.api.Core.validate_ticket`, which compares
the code in constant time through :func:`sync_protocol.codes.codes_match`). The answer names no
person, device, sale or seller: only

- ``result``: ``valid`` (sold, not voided, the code matches), ``void`` (the code matches but the
  ticket was voided or refunded: it is not in the draw) or ``unknown`` (no such raffle, no such
  ticket, or a code that does not match: the three are not told apart, so the endpoint does not
  reveal which numbers were sold to someone without the receipt);
- ``raffle``: the raffle's public state when it exists (name, ``state``, sales close time);
- ``prizes``: the prizes the ticket holds once the results are published (``[{"tier",
  "amount_cents"}]``, after redraws; empty otherwise: a winner is not told before publication);
- ``inclusion``: once the draw has frozen the ticket set (``RECONCILED`` and later), the
  ticket's inclusion proof in the set's Merkle root (``tombola/ticket-inclusion/v1``,
  ``docs/draw-proof.md`` 4.1), which ``tombola verify-draw PROOF --ticket FILE`` checks
  against the published draw proof; ``null`` before the freeze or for a ticket not in the set.

The raffle may be left out (``GET /tickets/check?number=N&code=C``): the number and the code are
then looked up in every raffle (one indexed look-up per raffle); the first raffle where the code
matches answers.

Read only: nothing is written, not even the draw engine following the clock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from server.context import Tombola
from server.draws.service import published_results
from server.models import Raffle
from sync_protocol.codes import codes_match
from sync_protocol.errors import TombolaError

RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
_NAME = select(RAFFLE.c.name).where(RAFFLE.c.id == bindparam("raffle_id"))

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


def check_ticket(app: Tombola, raffle_id: str | None, number: int, code: str) -> dict[str, Any]:
    """The public answer for one ticket (see the module docstring); never raises for an unknown one."""
    if raffle_id is None:
        answer: dict[str, Any] = {}
        for candidate in _raffle_ids(app):
            answer = _check_in(app, candidate, number, code)
            if answer["result"] != UNKNOWN:
                return answer
        return {"raffle_id": None, "number": number, "result": UNKNOWN, "raffle": None, "prizes": [], "inclusion": None}
    return _check_in(app, raffle_id, number, code)


def _raffle_ids(app: Tombola) -> list[str]:
    """Every raffle of the installation, newest first (a ticket in hand is most likely recent)."""
    with app.reads.connect() as conn:
        return list(conn.execute(select(RAFFLE.c.id).order_by(RAFFLE.c.created_at_ms.desc())).scalars())


def _check_in(app: Tombola, raffle_id: str, number: int, code: str) -> dict[str, Any]:
    core = app.core
    answer: dict[str, Any] = {
        "raffle_id": raffle_id,
        "number": number,
        "result": UNKNOWN,
        "raffle": None,
        "prizes": [],
        "inclusion": None,
    }
    found = core.lookup_ticket(raffle_id, number, code)  # one read of the core
    spec = found.raffle
    if spec is None:
        return answer
    with app.reads.connect() as conn:
        # a core raffle without its business row still gets an answer, under its id
        name = conn.execute(_NAME, {"raffle_id": raffle_id}).scalar() or raffle_id
    answer["raffle"] = {
        "name": name,
        "state": raffle_state(
            spec.status, found.draw_state, spec.sales_open_at_ms, spec.sales_close_at_ms, app.now_ms()
        ),
        "sales_close_at_ms": spec.sales_close_at_ms,
    }
    ticket, valid = found.ticket, found.valid
    if ticket is None:
        return answer
    if valid:
        answer["result"] = VALID
    elif codes_match(code, ticket.verification_code):
        answer["result"] = VOID
    if valid and answer["raffle"]["state"] in ("sales_closed", "drawn", "results_published"):
        try:
            answer["inclusion"] = core.ticket_inclusion(raffle_id, number)
        except TombolaError:  # no draw engine here, or a ticket set the draw refuses: no proof to give
            answer["inclusion"] = None
    if valid and answer["raffle"]["state"] == "results_published":
        held = published_results(app, raffle_id)["winners"]  # cached per process by the draw's version
        answer["prizes"] = [
            {"tier": h["tier"], "amount_cents": h["amount_cents"]} for h in held if h["ticket_number"] == number
        ]
    return answer
