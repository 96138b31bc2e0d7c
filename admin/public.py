"""The public pages (no login, at ``/``): current jackpots, published results with their proof,
how to verify a draw yourself. Server-rendered, no JavaScript, cacheable, no personal data:
they read only the services the public JSON routes read (``GET /raffles``, ``GET /draws``).
The ticket checker is ``/check`` (``server/tickets/endpoints.py``), in the same layout.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

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


#: the last page rendered per raffle, with the results it was rendered from: published results
#: are one cached object per draw version (server/draws/service.py), so the same object means the
#: same page (a redraw makes a new object, hence a new page)
_RESULTS_PAGES: dict[str, tuple[dict[str, Any], HTMLResponse]] = {}
_RESULTS_PAGES_KEPT = 64
_RESULTS_PAGES_LOCK = threading.Lock()


@router.get("/results/{raffle_id}", response_class=HTMLResponse)
def results(request: Request, raffle_id: RaffleId) -> HTMLResponse:
    """One published draw: winners by ticket number, redraws, the proof's hash and download."""
    r = draws.published_results(app_of(request), raffle_id)
    kept = _RESULTS_PAGES.get(raffle_id)
    if kept is not None and kept[0] is r:
        return HTMLResponse(kept[1].body, headers={"Cache-Control": kept[1].headers["cache-control"]})
    page = render_public(request, "public/results.html", r=r)
    with _RESULTS_PAGES_LOCK:
        while len(_RESULTS_PAGES) >= _RESULTS_PAGES_KEPT and raffle_id not in _RESULTS_PAGES:
            _RESULTS_PAGES.pop(next(iter(_RESULTS_PAGES)))
        _RESULTS_PAGES[raffle_id] = (r, page)
    return page


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request) -> HTMLResponse:
    """How to check a draw with ``tombola verify-draw``, with no access to the server."""
    base_url = str(request.base_url).rstrip("/")
    return render_public(request, "public/verify.html", max_age=3600, base_url=base_url)
