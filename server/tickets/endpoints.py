"""``GET /v1/tickets/check?raffle=ID&number=N&code=CODE``: the public ticket check.

No login and no personal data (:mod:`server.tickets.service`); rate-limited per client like the
core's ticket routes (:func:`gli_core.router.rate_limit`, 429 ``rate_limited``); every query
parameter bounded (422 ``malformed`` otherwise). ``docs/operations.md`` describes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from gli_core.router import rate_limit
from server.deps import AppDep
from server.tickets import service
from sync_protocol.bounds import INT32_MAX, NO_NUL

router = APIRouter(prefix="/v1/tickets", tags=["public"], dependencies=[Depends(rate_limit)])


@router.get("/check")
async def check_ticket(
    app: AppDep,
    raffle: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)],
    number: Annotated[int, Query(ge=1, le=INT32_MAX)],
    code: Annotated[str, Query(min_length=1, max_length=32, pattern=NO_NUL)],
) -> dict[str, Any]:
    """Whether the ticket counts: ``valid``, ``void`` or ``unknown``, and the raffle's public state."""
    return await run_in_threadpool(service.check_ticket, app, raffle, number, code)
