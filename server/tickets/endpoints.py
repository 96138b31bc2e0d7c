"""``GET /tickets/check?number=N&code=CODE[&raffle=ID]`` (the spec's path) and
``GET /v1/tickets/check?raffle=ID&number=N&code=CODE``: the public ticket check, one implementation
(:func:`server.tickets.service.check_ticket`) behind both; and ``GET /check`` with the same query,
the page a receipt's QR code opens.

No login and no personal data (:mod:`server.tickets.service`); rate-limited per client with the
``limits`` library over the store all server processes share (:func:`check_rate_limit`:
``TOMBOLA_TICKET_CHECK_RATE`` per client address, fixed windows; 429 ``rate_limited`` with
``retry_after_s`` and a ``Retry-After`` header); every query
parameter bounded (422 ``malformed`` otherwise). ``docs/operations.md`` describes it.
"""

from __future__ import annotations

import functools
from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from server.context import Tombola
from server.deps import AppDep
from server.tickets import service
from sync_protocol.bounds import INT32_MAX, NO_NUL


async def check_rate_limit(request: Request, app: AppDep) -> None:
    """Refuse with 429 ``rate_limited`` (and ``Retry-After``) past ``TOMBOLA_TICKET_CHECK_RATE``
    (default 60/minute) per client address, counted in the store every server process shares
    (:attr:`Tombola.limiter`, ``docs/operations.md``). A store that does I/O (the database, a
    network store) is asked from a worker thread; one in memory on the event loop."""
    client = request.client.host if request.client else "unknown"
    limiter = app.limiter
    check = functools.partial(
        limiter.check, "ticket-check", app.settings.ticket_check_rate, client, what="ticket checks"
    )
    if limiter.in_memory:
        check()
    else:
        await run_in_threadpool(check)


router = APIRouter(prefix="/v1/tickets", tags=["public"], dependencies=[Depends(check_rate_limit)])
#: the spec's path (section 3.1), the same check with the raffle optional
spec_router = APIRouter(prefix="/tickets", tags=["public"], dependencies=[Depends(check_rate_limit)])


class CheckedRaffle(BaseModel):
    """The raffle's public state."""

    name: str
    state: str = Field(description="one of " + ", ".join(service.STATES))
    sales_close_at_ms: int


class Prize(BaseModel):
    """A prize the ticket holds (results published)."""

    tier: str
    amount_cents: int


class TicketInclusion(BaseModel):
    """``tombola/ticket-inclusion/v1`` (docs/draw-proof.md 4.1): the ticket's RFC 9162 inclusion
    proof in the draw's frozen ticket set."""

    model_config = ConfigDict(json_schema_extra={"description": "docs/draw-proof.md section 4.1"})

    schema_: str = Field(alias="schema")
    raffle_id: str
    ticket: tuple[int, str, str, int] = Field(description="[number, ticket_id, sale_id, amount_cents]")
    leaf_index: int
    tree_size: int
    ticket_root: str
    inclusion_proof: list[str]


class TicketCheck(BaseModel):
    """The public answer: no person, device, seller or sale is named."""

    raffle_id: str | None
    number: int
    result: Literal["valid", "void", "unknown"]
    raffle: CheckedRaffle | None
    prizes: list[Prize]
    inclusion: TicketInclusion | None


async def _check(app: Tombola, raffle: str | None, number: int, code: str) -> dict[str, Any]:
    return await run_in_threadpool(service.check_ticket, app, raffle, number, code)


@router.get("/check", response_model=TicketCheck, response_model_by_alias=True)
async def check_ticket(
    app: AppDep,
    raffle: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)],
    number: Annotated[int, Query(ge=1, le=INT32_MAX)],
    code: Annotated[str, Query(min_length=1, max_length=32, pattern=NO_NUL)],
) -> dict[str, Any]:
    """Whether the ticket counts: ``valid``, ``void`` or ``unknown``, the raffle's public state, the
    prizes it holds once results are published, and its inclusion proof once the set is frozen."""
    return await _check(app, raffle, number, code)


@spec_router.get("/check", response_model=TicketCheck, response_model_by_alias=True)
async def check_ticket_spec(
    app: AppDep,
    number: Annotated[int, Query(ge=1, le=INT32_MAX)],
    code: Annotated[str, Query(min_length=1, max_length=32, pattern=NO_NUL)],
    raffle: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    """The check of ``/v1/tickets/check``; without ``raffle`` every raffle is searched for the number
    whose code matches."""
    return await _check(app, raffle, number, code)


# --- the page a receipt's QR code opens -------------------------------------------------------

#: served at ``/check`` (the ``check_url`` devices print, sync_protocol.codes.ticket_check_url);
#: plain HTML with no script, in the public pages' layout and stylesheet (``/static/portal.css``,
#: docs/portal.md), so it works on any phone and under a strict policy: nothing but that stylesheet
page_router = APIRouter(tags=["public"], dependencies=[Depends(check_rate_limit)])

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
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
#: the public pages' layout (admin/templates/public/base.html), which the server cannot import
_LAYOUT_TOP = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<title>Check a ticket · Tombola</title><link rel="stylesheet" href="/static/portal.css"></head>'
    '<body class="public"><a class="skip" href="#main">Skip to content</a>'
    '<header class="topbar"><a class="brand" href="/">Tombola <span>raffles</span></a>'
    '<nav aria-label="Public"><ul class="topnav"><li><a href="/">Jackpots and results</a></li>'
    '<li><a href="/check" aria-current="page">Check a ticket</a></li>'
    '<li><a href="/verify">Verify a draw</a></li></ul></nav></header>'
    '<main id="main" class="public-main" tabindex="-1"><h1>Check a ticket</h1>'
)
_LAYOUT_BOTTOM = (
    '</main><footer class="footer">Draws are verifiable: every result comes with a proof anyone can check. '
    '· <a href="/admin/">Staff sign-in</a></footer></body></html>'
)


def _page(body: str, status: int = 200, answer: str = "") -> HTMLResponse:
    kind = {"VALID": "success", "VOID": "warning", "NOT FOUND": "error"}.get(answer, "info")
    html = (
        _LAYOUT_TOP
        + f'<div class="flash flash-{kind}" role="status">{body}</div>'
        + '<div class="check-box"><form method="get" action="/check">'
        '<p><label for="raffle">Raffle</label> <input id="raffle" name="raffle" maxlength="64" required></p>'
        '<p><label for="number">Ticket number</label> '
        '<input id="number" name="number" inputmode="numeric" pattern="[0-9]+" required></p>'
        '<p><label for="code">Verification code</label> '
        '<input id="code" name="code" maxlength="32" autocapitalize="characters" required></p>'
        '<p><button class="primary">Check</button></p></form></div>' + _LAYOUT_BOTTOM
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
    if (
        not (raffle and number and code)
        or not number.isdecimal()
        or not 1 <= int(number) <= INT32_MAX
        or "\x00" in (raffle + code)
    ):
        return _page("<p><strong>These are not a raffle, a ticket number and a code from a receipt.</strong></p>", 400)
    answer = await run_in_threadpool(service.check_ticket, app, raffle[:64], int(number), code[:32])
    lines = [f"<p><strong>{escape(_SAYS[answer['result']])}</strong></p>"]
    lines.append(f"<p>Ticket {int(number)}, verification code {escape(code[:32].upper())}.</p>")
    if answer["raffle"] is not None:
        r = answer["raffle"]
        lines.append(f"<p>Raffle: {escape(r['name'])} ({escape(_STATES.get(r['state'], r['state']))}).</p>")
    for prize in answer["prizes"]:
        lines.append(f"<p><strong>WINNER: {escape(prize['tier'])}, {prize['amount_cents'] / 100:.2f}.</strong></p>")
    if answer["inclusion"] is not None:
        root = answer["inclusion"]["ticket_root"]
        lines.append(
            f"<p>In the drum: the ticket is in the frozen ticket set (root {escape(root[:16])}...); "
            "the JSON answer of /tickets/check carries the proof.</p>"
        )
    return _page("".join(lines), answer=_SAYS[answer["result"]].split(":")[0])
