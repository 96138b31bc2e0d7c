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
from pydantic import BaseModel, ConfigDict, Field

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


# --- the error body and the response models (the OpenAPI document, docs/openapi.json) ---------


class ErrorBody(BaseModel):
    """Every error's body (docs/errors.md): a stable code, a sentence, and the facts the code lists."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="the stable machine-readable code (docs/errors.md); branch on this")
    detail: str = Field(description="a sentence for people; never parse it")
    field: str | None = Field(default=None, description="the request member at fault, when one is")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: the error answers every route may give, as ``responses=`` of a router (the body is ErrorBody)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Refused: the request breaks a rule (`error` names it)"),
    401: _error("No valid credentials (`unauthorized`), or a signature that does not verify"),
    403: _error("The caller may not do this (`forbidden`), or the device is revoked"),
    404: _error("No such resource (`not_found`), or one the caller may not see"),
    409: _error("The request conflicts with the resource's state"),
    413: _error("The body is over the server's cap (`payload_too_large`)"),
    422: _error("The request breaks its model (`malformed`, with `field`) or a rule of the resource"),
    429: _error("Too many requests (`rate_limited`); `Retry-After` says when to come back"),
}


class Ticket(BaseModel):
    """A ticket on record in the core."""

    id: str = Field(description="the ticket id (UUIDv7)")
    raffle_id: str
    number: int = Field(description="the ticket number in the raffle's number space")
    sale_id: str = Field(description="the sale that sold it (one sale may sell several numbers)")
    device_id: str = Field(description="the device that sold it, or `online`")
    seq: int = Field(description="the record's sequence number on its device (0 online)")
    verification_code: str = Field(description="the code printed on the receipt")
    status: str = Field(description="`sold`, `voided` or `refunded`")
    recorded_at_ms: int = Field(description="when the core recorded it (Unix ms)")


class TicketList(BaseModel):
    """Tickets just sold."""

    tickets: list[Ticket]


class TicketValidation(BaseModel):
    """Whether a ticket counts."""

    valid: bool = Field(description="sold, and the code matches when one was given")
    ticket: Ticket


class TicketPage(BaseModel):
    """A page of a raffle's tickets by number."""

    tickets: list[Ticket]
    next_after: int | None = Field(description="the `after` of the next page; null: this was the last")


class TicketChanged(BaseModel):
    """The ticket after the change."""

    ticket: Ticket


router = APIRouter(
    prefix="/tickets", tags=["core tickets"], dependencies=[Depends(rate_limit)], responses=ERROR_RESPONSES
)


class GenerateRequest(BaseModel):
    raffle_id: Text64 = Field(description="the raffle to sell")
    quantity: int = Field(default=1, ge=1, le=100, description="how many sequential numbers")
    sale_id: Text64 | None = Field(default=None, description="the sale's id (idempotency); generated if absent")


class BatchGenerateRequest(BaseModel):
    raffle_id: Text64 = Field(description="the raffle to sell")
    quantity: int = Field(ge=1, le=10_000, description="how many sequential numbers")


class StatusChange(BaseModel):
    status: Literal["voided", "refunded"] = Field(description="the ticket's new status")
    reason: Text500 = Field(min_length=1, description="why (logged)")


def _tickets(views: list[TicketView]) -> dict[str, object]:
    return {"tickets": [v.to_dict() for v in views]}


@router.post("/generate", response_model=TicketList)
def generate(body: GenerateRequest, core: CoreDep) -> dict[str, object]:
    """Sell ``quantity`` sequential numbers on the online channel."""
    return _tickets(core.generate_tickets(body.raffle_id, body.quantity, sale_id=body.sale_id))


@router.post("/batch-generate", response_model=TicketList)
def batch_generate(body: BatchGenerateRequest, core: CoreDep) -> dict[str, object]:
    """Like ``generate`` for up to 10,000 tickets at once (box-office pre-printing)."""
    return _tickets(core.generate_tickets(body.raffle_id, body.quantity))


@router.get("/{ticket_id}/validate", response_model=TicketValidation)
def validate(
    ticket_id: Text64, core: CoreDep, code: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None
) -> dict[str, object]:
    """Whether a ticket is on record and sold; with ``code``, whether its verification code matches."""
    ticket, valid = core.validate_ticket(ticket_id, code)
    return {"valid": valid, "ticket": ticket.to_dict()}


@router.get("/raffle/{raffle_id}", response_model=TicketPage)
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


@router.put("/{ticket_id}/status", response_model=TicketChanged)
def set_status(ticket_id: Text64, body: StatusChange, core: CoreDep) -> dict[str, object]:
    """Void or refund a ticket."""
    return {"ticket": core.set_ticket_status(ticket_id, body.status).to_dict()}


draw_router = APIRouter(prefix="/draw", tags=["core draws"], responses=ERROR_RESPONSES)


class DrawRequest(BaseModel):
    raffle_id: Text64 = Field(description="the raffle to draw")


class CancelRequest(BaseModel):
    reason: Text500 = Field(min_length=1, description="why the raffle is cancelled (logged)")


class DrawPrizeTier(BaseModel):
    """A tier of the prize table (docs/draw-proof.md section 8)."""

    model_config = ConfigDict(extra="allow")

    tier: str = Field(description="the tier's name")
    count: int = Field(description="how many winners the tier has")
    kind: str = Field(description="`fixed` or `percent_of_sales`")
    amount_cents: int | None = Field(default=None, description="the prize per winner (`fixed` only)")
    percent: int | None = Field(default=None, description="the share of gross sales per winner (`percent_of_sales`)")


class VrfKey(BaseModel):
    """The draw key's public half (docs/draw-proof.md section 3)."""

    suite: str = Field(description="`RSA-FDH-VRF-SHA256`")
    key_id: str
    fingerprint: str = Field(description="compare with the published fingerprint")
    n: str = Field(description="the modulus, hex")
    e: int = Field(description="the public exponent")


class BlockingDevice(BaseModel):
    """A device holding an active grant that has not synced since sales closed."""

    device_id: str
    last_sync_ms: int | None


class DrawStatus(BaseModel):
    """A raffle's draw: its state and what is committed so far."""

    raffle_id: str
    state: str = Field(description="SCHEDULED, SALES_OPEN, SALES_CLOSED, RECONCILED, DRAWN, PUBLISHED or CANCELLED")
    reason: str = Field(description="why it was cancelled, if it was")
    prize_table: list[DrawPrizeTier]
    nonce_commitment: str = Field(description="SHA-256 of the draw nonce, hex, committed before sales")
    vrf: VrfKey
    ticket_root: str | None = Field(description="the frozen ticket set's Merkle root, hex, once frozen")
    ticket_count: int | None = Field(description="tickets in the frozen set, once frozen")
    blocking_devices: list[BlockingDevice] | None = Field(
        default=None, description="only in SALES_CLOSED: the devices the reconciliation gate waits for"
    )


class DrawWinner(BaseModel):
    """A prize's winner in draw order (docs/draw-proof.md section 8)."""

    model_config = ConfigDict(extra="allow")

    tier: str
    position: int = Field(description="the draw number that selected it")
    ticket_number: int
    ticket_id: str
    amount_cents: int


class DrawRedraw(BaseModel):
    """A redraw of one prize (docs/draw-proof.md section 9)."""

    model_config = ConfigDict(extra="allow")

    tier: str
    replaced_ticket_number: int
    reason: str
    position: int
    ticket_number: int
    ticket_id: str
    amount_cents: int


class DrawResults(BaseModel):
    """The winners of a drawn raffle and the hash of the proof that shows them."""

    raffle_id: str
    state: str = Field(description="DRAWN or PUBLISHED")
    winners: list[DrawWinner]
    redraws: list[DrawRedraw]
    holders: list[DrawWinner] = Field(description="who holds each prize after the redraws")
    ticket_count: int
    proof_sha256: str = Field(description="SHA-256 of the published proof's bytes, hex")


class DrawProof(BaseModel):
    """The draw proof, ``tombola/draw-proof/v1``: docs/draw-proof.md section 11 lists every member."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    schema_: str = Field(alias="schema", description="`tombola/draw-proof/v1`")
    algorithm: str
    raffle_id: str
    winners: list[DrawWinner]


@draw_router.post("/initiate", response_model=DrawStatus, response_model_exclude_unset=True)
def draw_initiate(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Check the reconciliation gate and freeze the ticket set (RECONCILED)."""
    return core.draw_initiate(body.raffle_id)


@draw_router.post("/execute", response_model=DrawResults)
def draw_execute(body: DrawRequest, core: CoreDep) -> dict[str, Any]:
    """Derive the randomness in the HSM and select the winners (DRAWN); idempotent."""
    return core.draw_execute(body.raffle_id)


@draw_router.get("/{raffle_id}/status", response_model=DrawStatus, response_model_exclude_unset=True)
def draw_status(raffle_id: Text64, core: CoreDep) -> dict[str, Any]:
    """The draw's state (a raffle whose sales time has come moves on first)."""
    return core.draw_status(raffle_id)


@draw_router.get("/{raffle_id}/results", response_model=DrawResults)
def draw_results(raffle_id: Text64, core: CoreDep) -> dict[str, Any]:
    """The winners, once drawn (409 ``draw_not_ready`` before)."""
    return core.draw_results(raffle_id)


@draw_router.get("/{raffle_id}/proof", response_model=DrawProof, response_model_by_alias=True)
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


@draw_router.post("/{raffle_id}/cancel", response_model=DrawStatus, response_model_exclude_unset=True)
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
audit_router = APIRouter(prefix="/audit", tags=["core audit log"], responses=ERROR_RESPONSES)


class Checkpoint(BaseModel):
    """A signed checkpoint of the log (docs/audit-checkpoints.md)."""

    size: int = Field(description="the tree size it commits to")
    root_hash: str = Field(description="the RFC 9162 root of that tree, hex")
    note: str = Field(description="the C2SP signed note")
    reason: str = Field(description="why it was signed (schedule, on demand, ...)")
    signed_at_ms: int


class CheckpointState(BaseModel):
    """The log now: its origin, size, latest checkpoint and verifier keys."""

    origin: str
    size: int
    checkpoint: Checkpoint | None = Field(description="the latest signed checkpoint; null before the first")
    keys: list[str] = Field(description="the note verifier keys (C2SP vkey format)")


class CheckpointList(BaseModel):
    """Checkpoints by size."""

    checkpoints: list[Checkpoint]


class AuditEntry(BaseModel):
    """An entry of the log (docs/audit-log.md)."""

    index: int
    entry: dict[str, Any] = Field(description="the entry parsed: v, index, time_ms, actor, tenant, type, payload")
    leaf_data: str = Field(description="the entry's bytes as hashed into the tree (RFC 8785 JSON)")


class AuditEntries(BaseModel):
    """A page of entries and the log's size."""

    entries: list[AuditEntry]
    size: int


class InclusionProof(BaseModel):
    """RFC 9162 inclusion proof of one entry."""

    index: int
    tree_size: int
    root_hash: str = Field(description="hex")
    leaf_data: str
    proof: list[str] = Field(description="the audit path, hex hashes")


class ConsistencyProof(BaseModel):
    """RFC 9162 consistency proof between two tree sizes."""

    first: int
    second: int
    first_root: str = Field(description="hex")
    second_root: str = Field(description="hex")
    proof: list[str] = Field(description="hex hashes")


def _entry_json(index: int, data: str) -> dict[str, Any]:
    import json

    return {"index": index, "entry": json.loads(data), "leaf_data": data}


def _visible(scope: AuditScope, core: Core, index: int) -> str:
    tenant, data = core.audit.entry(index)
    if scope.tenant is not None and tenant != scope.tenant:
        from gli_core.audit.log import AuditEntryNotFound

        raise AuditEntryNotFound(f"the audit log has no entry {index} for tenant {scope.tenant}")
    return data


@audit_router.get("/checkpoint", response_model=CheckpointState)
def audit_latest_checkpoint(core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    """The latest signed checkpoint (C2SP signed note) and the log's verifier keys."""
    latest = core.audit.latest_checkpoint()
    return {
        "origin": core.audit.origin,
        "size": core.audit.size(),
        "checkpoint": None if latest is None else latest.to_dict(),
        "keys": [k.vkey for k in core.audit_verifiers()],
    }


@audit_router.post("/checkpoint", response_model=Checkpoint)
def audit_sign_checkpoint(core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    """Sign a checkpoint of the log as it is now (on demand)."""
    return core.audit.checkpoint(f"on-demand:{scope.principal}"[:100]).to_dict()


@audit_router.get("/checkpoints", response_model=CheckpointList)
def audit_checkpoints(
    core: CoreDep,
    scope: ScopeDep,
    after: Annotated[int, Query(ge=-1, le=SAFE_INT_MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Signed checkpoints of sizes above ``after``, oldest first."""
    return {"checkpoints": [c.to_dict() for c in core.audit.checkpoints(after_size=after, limit=limit)]}


@audit_router.get("/entries", response_model=AuditEntries)
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


@audit_router.get("/entries/{index}", response_model=AuditEntry)
def audit_entry(index: Annotated[int, Path(ge=0, le=SAFE_INT_MAX)], core: CoreDep, scope: ScopeDep) -> dict[str, Any]:
    """One entry (404 ``audit_entry_not_found`` for one of another tenant)."""
    return _entry_json(index, _visible(scope, core, index))


@audit_router.get("/proof/inclusion", response_model=InclusionProof)
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


@audit_router.get("/proof/consistency", response_model=ConsistencyProof)
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
