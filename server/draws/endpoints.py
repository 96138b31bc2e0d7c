"""Public routes of published draws: ``GET /draws``, ``GET /draws/{raffle_id}``, ``GET /draws/{raffle_id}/proof``.

No login and no personal data; the answers are immutable once published except for a redraw of
an unclaimed prize (which appends to the proof), so they are cacheable for a minute and carry an
``ETag`` (the proof's SHA-256) that a client may send back in ``If-None-Match`` for a 304.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server.deps import AppDep
from server.draws import service

router = APIRouter(prefix="/draws", tags=["public"])
CACHE = "public, max-age=60"
RaffleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Prize(BaseModel):
    tier: str = Field(description="the prize tier's name, as in the raffle's prize table")
    position: int = Field(description="1-based position of the winner within its tier")
    ticket_number: int = Field(description="the winning ticket's number")
    amount_cents: int = Field(description="the prize, in minor units of the raffle's currency")


class Redraw(BaseModel):
    tier: str
    position: int
    replaced_ticket_number: int = Field(description="the ticket whose unclaimed prize was redrawn")
    ticket_number: int = Field(description="the ticket that holds the prize now")
    amount_cents: int
    reason: str


class PublishedDraw(BaseModel):
    raffle_id: str
    raffle_name: str
    venue_name: str
    currency: str = Field(description="ISO 4217 code")
    sales_closed_at_ms: int
    ticket_count: int = Field(description="tickets in the frozen set the winners were drawn from")
    winners: list[Prize] = Field(description="each prize's current holder, after any redraw")
    redraws: list[Redraw]
    proof_sha256: str = Field(description="SHA-256 (hex) of the proof file at proof_url")
    proof_url: str


class PublishedDrawSummary(BaseModel):
    raffle_id: str
    raffle_name: str
    venue_name: str
    sales_closed_at_ms: int
    ticket_count: int
    proof_sha256: str
    proof_url: str


class PublishedDraws(BaseModel):
    draws: list[PublishedDrawSummary]


def _etag(results: dict[str, Any]) -> str:
    return f'"{results["proof_sha256"]}"'  # a redraw appends to the proof: a new hash


@router.get("", response_model=PublishedDraws)
async def list_draws(app: AppDep, response: Response) -> dict[str, object]:
    """Every published draw, newest first."""
    response.headers["Cache-Control"] = CACHE
    return {"draws": await run_in_threadpool(service.published_draws, app)}


@router.get("/{raffle_id}", response_model=PublishedDraw, responses={304: {"description": "unchanged (ETag)"}})
async def draw_results(raffle_id: RaffleId, app: AppDep, request: Request) -> Response:
    """A published draw's results (404 ``not_found`` before it is published)."""
    results = await run_in_threadpool(service.published_results, app, raffle_id)
    etag = _etag(results)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE})
    return Response(_body(results), media_type="application/json", headers={"ETag": etag, "Cache-Control": CACHE})


#: the JSON body per raffle with the results it was made from (one cached object per draw version:
#: the same object means the same body), checked against the response model once per version
_BODIES: dict[str, tuple[dict[str, Any], bytes]] = {}
_BODIES_KEPT = 64
_BODIES_LOCK = threading.Lock()


def _body(results: dict[str, Any]) -> bytes:
    raffle_id = str(results["raffle_id"])
    kept = _BODIES.get(raffle_id)
    if kept is not None and kept[0] is results:
        return kept[1]
    body = PublishedDraw.model_validate(results).model_dump_json().encode()
    with _BODIES_LOCK:
        while len(_BODIES) >= _BODIES_KEPT and raffle_id not in _BODIES:
            _BODIES.pop(next(iter(_BODIES)))
        _BODIES[raffle_id] = (results, body)
    return body


@router.get(
    "/{raffle_id}/proof",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "the proof file (RFC 8785 JSON)"}},
)
async def draw_proof(raffle_id: RaffleId, app: AppDep) -> Response:
    """The proof file of a published draw, byte for byte; check it with ``tombola verify-draw``."""
    body = await run_in_threadpool(service.published_proof, app, raffle_id)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="draw-proof-{raffle_id}.json"',
            "Cache-Control": CACHE,
        },
    )
