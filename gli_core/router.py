"""The core's ticket API (spec 1.3): thin routes over :class:`gli_core.api.Core`.

``POST /tickets/generate``, ``POST /tickets/batch-generate``, ``GET /tickets/{id}/validate``,
``GET /tickets/raffle/{raffle_id}``, ``PUT /tickets/{id}/status``; rate-limited per client.
The app that mounts it provides the ``Core`` through ``get_core`` (dependency override) and
renders :class:`~sync_protocol.errors.TombolaError` as ``{"error", "detail"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field

from gli_core.api import Core, TicketView
from gli_core.errors import RateLimited
from sync_protocol.bounds import NO_NUL, SAFE_INT_MAX, Text64, Text500

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
    raffle_id: Text64
    quantity: int = Field(default=1, ge=1, le=100)
    sale_id: Text64 | None = None


class BatchGenerateRequest(BaseModel):
    raffle_id: Text64
    quantity: int = Field(ge=1, le=10_000)


class StatusChange(BaseModel):
    status: Literal["voided", "refunded"]
    reason: Text500 = Field(min_length=1)


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
def validate(
    ticket_id: Text64, core: CoreDep, code: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None
) -> dict[str, object]:
    """Whether a ticket is on record and sold; with ``code``, whether its verification code matches."""
    ticket, valid = core.validate_ticket(ticket_id, code)
    return {"valid": valid, "ticket": ticket.to_dict()}


@router.get("/raffle/{raffle_id}")
def by_raffle(
    raffle_id: Text64,
    core: CoreDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, object]:
    """Tickets of a raffle by number, paged with ``after`` (the last number seen)."""
    core.raffle(raffle_id)
    tickets = list(core.tickets(raffle_id, after_number=after, limit=limit))
    return {"tickets": [t.to_dict() for t in tickets], "next_after": tickets[-1].number if tickets else None}


@router.put("/{ticket_id}/status")
def set_status(ticket_id: Text64, body: StatusChange, core: CoreDep) -> dict[str, object]:
    """Void or refund a ticket."""
    return {"ticket": core.set_ticket_status(ticket_id, body.status).to_dict()}


draw_router = APIRouter(prefix="/draw", tags=["core draws"])


class DrawRequest(BaseModel):
    raffle_id: Text64


class CancelRequest(BaseModel):
    reason: Text500 = Field(min_length=1)


@draw_router.post("/initiate")
def draw_initiate(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Check the reconciliation gate and freeze the ticket set (RECONCILED)."""
    return core.draw_initiate(body.raffle_id)


@draw_router.post("/execute")
def draw_execute(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Derive the randomness in the HSM and select the winners (DRAWN); idempotent."""
    return core.draw_execute(body.raffle_id)


@draw_router.get("/{raffle_id}/status")
def draw_status(raffle_id: Text64, core: CoreDep) -> dict[str, Any]:
    return core.draw_status(raffle_id)


@draw_router.get("/{raffle_id}/results")
def draw_results(raffle_id: Text64, core: CoreDep) -> dict[str, Any]:
    return core.draw_results(raffle_id)


@draw_router.get("/{raffle_id}/proof")
def draw_proof(raffle_id: Text64, core: CoreDep) -> dict[str, Any]:
    """The draw proof: everything ``tombola verify-draw`` needs, in one document."""
    return core.draw_proof(raffle_id)


RaffleCancel = Callable[[str, str], dict[str, Any]]


def raffle_canceller(core: CoreDep) -> RaffleCancel:
    """How ``POST /draw/{raffle_id}/cancel`` cancels: the core's own :meth:`Core.cancel_raffle`.

    An app that also keeps the raffle's business state overrides this dependency with its cancel
    service, so the raffle is cancelled on both sides whichever way the cancel comes; the core
    refuses to record any sale of a cancelled raffle either way.
    """
    return core.cancel_raffle


@draw_router.post("/{raffle_id}/cancel")
def draw_cancel(
    raffle_id: Text64, body: CancelRequest, cancel: Annotated[RaffleCancel, Depends(raffle_canceller)]
) -> dict[str, Any]:
    """Cancel the raffle before its draw (idempotent; tickets stay on record for refunds)."""
    return cancel(raffle_id, body.reason)


# --- the audit log (issue "audit log"): read access for auditors and system admins -----------


class AuditScope(BaseModel):
    """Who reads the log: ``tenant`` None reads every tenant (a system admin or system auditor);
    a tenant auditor reads only that tenant's entries, and proofs for them."""

    principal: str
    tenant: str | None = None


def audit_scope() -> AuditScope:  # pragma: no cover - always overridden by the app
    raise RuntimeError("the app must override gli_core.router.audit_scope")


ScopeDep = Annotated[AuditScope, Depends(audit_scope)]
audit_router = APIRouter(prefix="/audit", tags=["core audit log"])


def _entry_json(index: int, data: str) -> dict[str, Any]:
    import json

    return {"index": index, "entry": json.loads(data), "leaf_data": data}


def _visible(scope: AuditScope, core: Core, index: int) -> str:
    tenant, data = core.audit.entry(index)
    if scope.tenant is not None and tenant != scope.tenant:
        from gli_core.audit.log import AuditEntryNotFound

        raise AuditEntryNotFound(f"the audit log has no entry {index} for tenant {scope.tenant}")
    return data


@audit_router.get("/checkpoint")
def audit_latest_checkpoint(core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    """The latest signed checkpoint (C2SP signed note) and the log's verifier keys."""
    latest = core.audit.latest_checkpoint()
    return {
        "origin": core.audit.origin,
        "size": core.audit.size(),
        "checkpoint": None if latest is None else latest.to_dict(),
        "keys": [k.vkey for k in core.audit_verifiers()],
    }


@audit_router.post("/checkpoint")
def audit_sign_checkpoint(core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    """Sign a checkpoint of the log as it is now (on demand)."""
    return core.audit.checkpoint(f"on-demand:{scope.principal}"[:100]).to_dict()


@audit_router.get("/checkpoints")
def audit_checkpoints(
    core: CoreDep,
    scope: ScopeDep,
    after: Annotated[int, Query(ge=-1, le=SAFE_INT_MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"checkpoints": [c.to_dict() for c in core.audit.checkpoints(after_size=after, limit=limit)]}


@audit_router.get("/entries")
def audit_entries(
    core: CoreDep,
    scope: ScopeDep,
    after: Annotated[int, Query(ge=-1, le=SAFE_INT_MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    tenant: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """Entries after index ``after``; a tenant auditor sees only their tenant's."""
    if scope.tenant is not None:
        tenant = scope.tenant
    rows = core.audit.entries(tenant=tenant, type_prefix=type, after=after, limit=limit)
    return {"entries": [_entry_json(i, d) for i, d in rows], "size": core.audit.size()}


@audit_router.get("/entries/{index}")
def audit_entry(index: Annotated[int, Path(ge=0, le=SAFE_INT_MAX)], core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    return _entry_json(index, _visible(scope, core, index))


@audit_router.get("/proof/inclusion")
def audit_inclusion(
    core: CoreDep,
    scope: ScopeDep,
    index: Annotated[int, Query(ge=0, le=SAFE_INT_MAX)],
    size: Annotated[int | None, Query(ge=1, le=SAFE_INT_MAX)] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries (default: the
    latest checkpoint's size)."""
    data = _visible(scope, core, index)
    if size is None:
        latest = core.audit.latest_checkpoint()
        size = latest.size if latest is not None and latest.size > index else core.audit.size()
    proof = core.audit.inclusion_proof(index, size)
    return {
        "index": index,
        "tree_size": size,
        "root_hash": core.audit.root_at(size).hex(),
        "leaf_data": data,
        "proof": [h.hex() for h in proof],
    }


@audit_router.get("/proof/consistency")
def audit_consistency(
    core: CoreDep,
    scope: ScopeDep,
    first: Annotated[int, Query(ge=1, le=SAFE_INT_MAX)],
    second: Annotated[int, Query(ge=1, le=SAFE_INT_MAX)],
) -> dict[str, Any]:
    """RFC 9162 consistency proof between the trees of ``first`` and ``second`` entries."""
    proof = core.audit.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "first_root": core.audit.root_at(first).hex(),
        "second_root": core.audit.root_at(second).hex(),
        "proof": [h.hex() for h in proof],
    }
