"""``GET /v1/tickets/check?raffle=ID&number=N&code=CODE``: the public ticket check, and
``GET /check`` with the same query, the page a receipt's QR code opens.

No login and no personal data (:mod:`server.tickets.service`); rate-limited per client like the
core's ticket routes (:func:`gli_core.router.rate_limit`, 429 ``rate_limited``); every query
parameter bounded (422 ``malformed`` otherwise). ``docs/operations.md`` describes it.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

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


# --- the page a receipt's QR code opens -------------------------------------------------------

#: served at ``/check`` (the ``check_url`` devices print, sync_protocol.codes.ticket_check_url);
#: plain HTML with no script and no style, so it works on any phone and under the strictest policy
page_router = APIRouter(tags=["public"], dependencies=[Depends(rate_limit)])

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "public, max-age=30",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_SAYS = {
    service.VALID: "VALID: this ticket is in the draw.",
    service.VOID: "VOID: this ticket was voided or refunded; it is not in the draw.",
    service.UNKNOWN: "NOT FOUND: no ticket of this raffle has this number and verification code. "
    "Check both against the receipt.",
}
_STATES = {
    "not_open": "sales have not opened yet",
    "selling": "on sale",
    "sales_closed": "sales closed; the draw is coming",
    "drawn": "drawn; results are being published",
    "results_published": "results published",
    "cancelled": "cancelled: tickets are refunded",
}


def _page(body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Check a ticket - Tombola</title></head><body><main><h1>Check a ticket</h1>"
        f"{body}"
        '<form method="get" action="/check"><p><label>Raffle <input name="raffle" maxlength="64" required></label></p>'
        '<p><label>Ticket number <input name="number" inputmode="numeric" pattern="[0-9]+" required></label></p>'
        '<p><label>Verification code <input name="code" maxlength="32" autocapitalize="characters" required>'
        "</label></p>"
        "<p><button>Check</button></p></form></main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


@page_router.get("/check", response_class=HTMLResponse)
async def check_page(
    app: AppDep,
    raffle: Annotated[str | None, Query(max_length=200)] = None,
    number: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The ticket checker a receipt's QR code opens: the answer of ``/v1/tickets/check`` as a page
    (and a form to type the three values). A value that cannot be a ticket's gets a sentence, not
    an error body: the reader is a ticket holder on a phone."""
    if raffle is None and number is None and code is None:
        return _page("<p>Type the raffle, the ticket number and the verification code printed on the receipt.</p>")
    if not (raffle and number and code) or not number.isdecimal() or not 1 <= int(number) <= INT32_MAX or "\x00" in (
        raffle + code
    ):
        return _page("<p><strong>These are not a raffle, a ticket number and a code from a receipt.</strong></p>", 400)
    answer = await run_in_threadpool(service.check_ticket, app, raffle[:64], int(number), code[:32])
    lines = [f"<p><strong>{escape(_SAYS[answer['result']])}</strong></p>"]
    lines.append(f"<p>Ticket {int(number)}, verification code {escape(code[:32].upper())}.</p>")
    if answer["raffle"] is not None:
        r = answer["raffle"]
        lines.append(f"<p>Raffle: {escape(r['name'])} ({escape(_STATES.get(r['state'], r['state']))}).</p>")
    return _page("".join(lines))
