"""The public pages (no login, at ``/``): current jackpots, published results with their proof,
how to verify a draw yourself. Server-rendered, no JavaScript, cacheable, no personal data:
they read only the services the public JSON routes read (``GET /raffles``, ``GET /draws``).
The ticket checker is ``/check`` (``server/tickets/endpoints.py``), in the same layout.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from admin.web import app_of, render_public
from server.draws import service as draws
from server.raffles import service as raffles
from sync_protocol.bounds import NO_NUL

router = APIRouter(tags=["public pages"], include_in_schema=False)

RaffleId = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Open raffles with their current 50/50 jackpots, and the published results."""
    app = app_of(request)
    return render_public(
        request,
        "public/home.html",
        raffles=raffles.public_raffles(app),
        draws=draws.published_draws(app),
    )


@router.get("/results/{raffle_id}", response_class=HTMLResponse)
def results(request: Request, raffle_id: RaffleId) -> HTMLResponse:
    """One published draw: winners by ticket number, redraws, the proof's hash and download."""
    return render_public(request, "public/results.html", r=draws.published_results(app_of(request), raffle_id))


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request) -> HTMLResponse:
    """How to check a draw with ``tombola verify-draw``, with no access to the server."""
    base_url = str(request.base_url).rstrip("/")
    return render_public(request, "public/verify.html", max_age=3600, base_url=base_url)
