"""The core's ticket API (spec 1.3): thin routes over :class:`gli_core.api.Core`.

``POST /tickets/generate``, ``POST /tickets/batch-generate``, ``GET /tickets/{id}/validate``,
``GET /tickets/raffle/{raffle_id}``, ``PUT /tickets/{id}/status``; rate-limited per client.
The app that mounts it provides the ``Core`` through ``get_core`` (dependency override) and
renders :class:`~sync_protocol.errors.TombolaError` as ``{"error", "detail"}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field

from gli_core.api import Core, TicketView
from gli_core.errors import RateLimited

TICKET_RATE = parse("200/second")


def get_core() -> Core:  # pragma: no cover - always overridden by the app
    raise RuntimeError("the app must override gli_core.router.get_core")


def rate_limit(request: Request) -> None:
    """Refuse with 429 ``rate_limited`` past the per-client ticket rate (``app.state.ticket_rate``).

    Each app has its own moving-window limiter in memory; behind a load balancer the limit is
    per process, which the operations guide accounts for.
    """
    state = request.app.state
    if getattr(state, "ticket_limiter", None) is None:
        state.ticket_limiter = MovingWindowRateLimiter(MemoryStorage())
    rate = getattr(state, "ticket_rate", TICKET_RATE)
    client = request.client.host if request.client else "unknown"
    if not state.ticket_limiter.hit(rate, "tickets", client):
        raise RateLimited(f"more than {rate} ticket requests from {client}; slow down")


CoreDep = Annotated[Core, Depends(get_core)]
router = APIRouter(prefix="/tickets", tags=["core tickets"], dependencies=[Depends(rate_limit)])


class GenerateRequest(BaseModel):
    raffle_id: str
    quantity: int = Field(default=1, ge=1, le=100)
    sale_id: str | None = None


class BatchGenerateRequest(BaseModel):
    raffle_id: str
    quantity: int = Field(ge=1, le=10_000)


class StatusChange(BaseModel):
    status: Literal["voided", "refunded"]
    reason: str = Field(min_length=1, max_length=500)


def _tickets(views: list[TicketView]) -> dict[str, object]:
    return {"tickets": [v.to_dict() for v in views]}


@router.post("/generate")
def generate(body: GenerateRequest, core: CoreDep) -> dict[str, object]:
    """Sell ``quantity`` sequential numbers on the online channel."""
    return _tickets(core.generate_tickets(body.raffle_id, body.quantity, sale_id=body.sale_id))


@router.post("/batch-generate")
def batch_generate(body: BatchGenerateRequest, core: CoreDep) -> dict[str, object]:
    """Like ``generate`` for up to 10,000 tickets at once (box-office pre-printing)."""
    return _tickets(core.generate_tickets(body.raffle_id, body.quantity))


@router.get("/{ticket_id}/validate")
def validate(ticket_id: str, core: CoreDep, code: Annotated[str | None, Query()] = None) -> dict[str, object]:
    """Whether a ticket is on record and sold; with ``code``, whether its verification code matches."""
    ticket, valid = core.validate_ticket(ticket_id, code)
    return {"valid": valid, "ticket": ticket.to_dict()}


@router.get("/raffle/{raffle_id}")
def by_raffle(
    raffle_id: str,
    core: CoreDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, object]:
    """Tickets of a raffle by number, paged with ``after`` (the last number seen)."""
    core.raffle(raffle_id)
    tickets = list(core.tickets(raffle_id, after_number=after, limit=limit))
    return {"tickets": [t.to_dict() for t in tickets], "next_after": tickets[-1].number if tickets else None}


@router.put("/{ticket_id}/status")
def set_status(ticket_id: str, body: StatusChange, core: CoreDep) -> dict[str, object]:
    """Void or refund a ticket."""
    return {"ticket": core.set_ticket_status(ticket_id, body.status).to_dict()}


draw_router = APIRouter(prefix="/draw", tags=["core draws"])


class DrawRequest(BaseModel):
    raffle_id: str


class CancelRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@draw_router.post("/initiate")
def draw_initiate(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Check the reconciliation gate and freeze the ticket set (RECONCILED)."""
    return core.draw_initiate(body.raffle_id)


@draw_router.post("/execute")
def draw_execute(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Derive the randomness in the HSM and select the winners (DRAWN); idempotent."""
    return core.draw_execute(body.raffle_id)


@draw_router.get("/{raffle_id}/status")
def draw_status(raffle_id: str, core: CoreDep) -> dict[str, Any]:
    return core.draw_status(raffle_id)


@draw_router.get("/{raffle_id}/results")
def draw_results(raffle_id: str, core: CoreDep) -> dict[str, Any]:
    return core.draw_results(raffle_id)


@draw_router.get("/{raffle_id}/proof")
def draw_proof(raffle_id: str, core: CoreDep) -> dict[str, Any]:
    """The draw proof: everything ``tombola verify-draw`` needs, in one document."""
    return core.draw_proof(raffle_id)


@draw_router.post("/{raffle_id}/cancel")
def draw_cancel(raffle_id: str, body: CancelRequest, core: CoreDep) -> dict[str, Any]:
    return core.draw_cancel(raffle_id, body.reason)
