"""Raffle management (``/admin/raffles``), the public raffle list (``GET /raffles``) and the
jurisdiction profiles (``GET /jurisdictions``). Routes are thin: :mod:`server.raffles.service`
holds every state change (the CLI and the portal call the same functions).

Who may do what (``docs/jurisdictions.md``, "Raffle management"):

* create and edit (price, prizes, terms, licence, jurisdiction) and cancel: the system admin
  (``admin``) and the ``business_admin`` of the raffle's organisation — the licensee's decisions;
* open and close sales, read: those two and the ``venue_manager`` of the raffle's venue — running
  the floor;
* anyone else: 403 ``forbidden``; a raffle or venue of another tenant (or, for a venue manager,
  another venue): 404 ``not_found``, as if it did not exist.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server import jurisdictions
from server.auth import Principal
from server.context import Tombola
from server.deps import AppDep, require_role
from server.raffles import service as raffles
from sync_protocol.bounds import INT32_MAX, NO_NUL, Millis, Text32, Text64, Text500

admin_raffles = APIRouter(prefix="/admin/raffles", tags=["raffle management"])
public_raffles = APIRouter(tags=["public"])

MANAGERS = ("admin", "business_admin")
FLOOR = ("admin", "business_admin", "venue_manager")
Manager = Annotated[Principal, Depends(require_role(*MANAGERS, tenant_scoped=True))]
Floor = Annotated[Principal, Depends(require_role(*FLOOR, tenant_scoped=True))]

IdPath = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Bundle = tuple[Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=0, le=INT32_MAX)]]
Jurisdiction = Literal["default", "north-dakota", "washington", "ontario", "alberta"]
RulesText = Annotated[str, Field(max_length=raffles.RULES_TEXT_MAX, pattern=NO_NUL)]
PurchaseLimit = Annotated[int, Field(ge=1, le=raffles.PURCHASE_LIMIT_MAX)]


class PrizeTier(BaseModel):
    """One line of the prize table: ``count`` prizes, each a fixed amount or a percent of sales."""

    tier: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
    count: int = Field(ge=1, le=1_000_000)
    kind: Literal["fixed", "percent_of_sales"]
    amount_cents: int | None = Field(default=None, ge=0, le=2**53 - 1)
    percent: int | None = Field(default=None, ge=1, le=100)

    def to_core(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AdminRaffleCreate(BaseModel):
    venue_id: Text32
    name: Name
    price_cents: int = Field(ge=0, le=INT32_MAX)
    #: the number space; the core's next free number (numbers + 1) must fit an INTEGER column too
    numbers: int = Field(ge=1, le=INT32_MAX - 1)
    closes_at_ms: Millis
    opens_at_ms: Millis | None = None
    bundles: list[Bundle] = Field(default_factory=list, max_length=100)
    bundles_only: bool = False
    offline_sales: bool = True
    online_sales: bool | None = Field(default=None, description="default: when the jurisdiction allows it")
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    prize_table: list[PrizeTier] = Field(
        default_factory=list, max_length=100, description="in draw order; default one 50/50 prize of 50%"
    )
    draw_method: Literal["rng", "barrel"] = "rng"
    jurisdiction: Jurisdiction | None = Field(default=None, description="default: the organisation's licence's")
    purchase_limit: PurchaseLimit | None = None
    rules_text: RulesText = ""
    licence_number: Text64 = ""
    results_url: Text500 = ""
    claim_by_ms: Millis | None = None

    def to_spec(self) -> raffles.RaffleCreate:
        """The service's raffle to create (``server.raffles.service.create_raffle``)."""
        return raffles.RaffleCreate(
            venue_id=self.venue_id,
            name=self.name,
            price_cents=self.price_cents,
            number_space=self.numbers,
            sales_close_at_ms=self.closes_at_ms,
            sales_open_at_ms=self.opens_at_ms,
            bundles=tuple(self.bundles),
            bundles_only=self.bundles_only,
            offline_sales=self.offline_sales,
            online_sales=self.online_sales,
            currency=self.currency,
            prize_table=tuple(t.to_core() for t in self.prize_table),
            draw_method=self.draw_method,
            jurisdiction=self.jurisdiction,
            purchase_limit=self.purchase_limit,
            rules_text=self.rules_text,
            licence_number=self.licence_number,
            results_url=self.results_url,
            claim_by_ms=self.claim_by_ms,
        )


class RaffleEditBody(BaseModel):
    """Members to change (absent: unchanged); ``purchase_limit`` null removes the limit."""

    name: Name | None = None
    price_cents: int | None = Field(default=None, ge=0, le=INT32_MAX)
    bundles: list[Bundle] | None = Field(default=None, max_length=100)
    bundles_only: bool | None = None
    prize_table: list[PrizeTier] | None = Field(default=None, max_length=100)
    opens_at_ms: Millis | None = None
    closes_at_ms: Millis | None = None
    offline_sales: bool | None = None
    online_sales: bool | None = None
    draw_method: Literal["rng", "barrel"] | None = None
    jurisdiction: Jurisdiction | None = None
    purchase_limit: PurchaseLimit | None = None
    rules_text: RulesText | None = None
    licence_number: Text64 | None = None
    results_url: Text500 | None = None
    claim_by_ms: Millis | None = None


class CancelBody(BaseModel):
    reason: Text500 = Field(min_length=1)


class PricePointOut(BaseModel):
    quantity: int
    amount_cents: int


class RaffleOut(BaseModel):
    """A raffle as its managers see it."""

    id: str
    venue_id: str
    name: str
    currency: str
    price_points: list[PricePointOut]
    bundles_only: bool
    offline_sales: bool
    online_sales: bool
    number_space: int
    sales_open_at_ms: int
    sales_close_at_ms: int
    status: str
    jurisdiction: str
    draw_method: str
    prize_table: list[dict[str, Any]]
    share_percent: int
    purchase_limit: int | None
    rules_text: str
    licence_number: str
    results_url: str
    claim_by_ms: int | None
    created_at_ms: int
    updated_at_ms: int | None = None


class PublicRaffle(BaseModel):
    """A raffle of the public list: no personal data."""

    id: str
    name: str
    venue: str
    currency: str
    price_points: list[PricePointOut]
    sales_open_at_ms: int
    sales_close_at_ms: int
    status: Literal["open", "scheduled"]
    fifty_fifty: bool
    share_percent: int
    jackpot_cents: int | None = Field(description="share x valid sales (accepted, not voided), rounded down")
    online_sales: bool
    draw_method: str
    results_url: str | None
    claim_by_ms: int | None
    licence_number: str | None
    jurisdiction: str


def _view(raffle: dict[str, Any]) -> dict[str, Any]:
    return RaffleOut.model_validate(raffle).model_dump()


@admin_raffles.post("", status_code=201, response_model=RaffleOut)
def create_raffle(body: AdminRaffleCreate, app: AppDep, who: Manager) -> dict[str, Any]:
    """Create a raffle at a venue the caller manages (its terms checked against its jurisdiction)."""
    raffles.require_visible_venue(app, who, body.venue_id)
    return _view(raffles.create_raffle(app, body.to_spec()))


@admin_raffles.get("", response_model=list[RaffleOut])
def list_raffles(
    app: AppDep, who: Floor, venue_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None
) -> list[dict[str, Any]]:
    """The raffles the caller may see (its organisation's; a venue manager's venues)."""
    return [_view(r) for r in raffles.list_visible_raffles(app, who, venue_id)]


@admin_raffles.get("/{raffle_id}", response_model=RaffleOut)
def get_raffle(raffle_id: IdPath, app: AppDep, who: Floor) -> dict[str, Any]:
    raffles.require_visible_raffle(app, who, raffle_id)
    return _view(raffles.get_raffle(app, raffle_id))


@admin_raffles.patch("/{raffle_id}", response_model=RaffleOut)
def edit_raffle(raffle_id: IdPath, body: RaffleEditBody, app: AppDep, who: Manager) -> dict[str, Any]:
    """Change members of a scheduled or open raffle; price, bundles and prizes are fixed from
    the first sale (``terms_fixed_after_sale``)."""
    raffles.require_visible_raffle(app, who, raffle_id)
    sent = body.model_fields_set
    edit = raffles.RaffleEdit(
        name=body.name,
        price_cents=body.price_cents,
        bundles=tuple(body.bundles) if body.bundles is not None else None,
        bundles_only=body.bundles_only,
        prize_table=tuple(t.to_core() for t in body.prize_table) if body.prize_table is not None else None,
        sales_open_at_ms=body.opens_at_ms,
        sales_close_at_ms=body.closes_at_ms,
        offline_sales=body.offline_sales,
        online_sales=body.online_sales,
        draw_method=body.draw_method,
        jurisdiction=body.jurisdiction,
        purchase_limit=body.purchase_limit,
        no_purchase_limit="purchase_limit" in sent and body.purchase_limit is None,
        rules_text=body.rules_text,
        licence_number=body.licence_number,
        results_url=body.results_url,
        claim_by_ms=body.claim_by_ms,
    )
    return _view(raffles.edit_raffle(app, raffle_id, edit))


@admin_raffles.post("/{raffle_id}/open", response_model=RaffleOut)
def open_raffle(raffle_id: IdPath, app: AppDep, who: Floor) -> dict[str, Any]:
    """Open the sales of a scheduled raffle now."""
    raffles.require_visible_raffle(app, who, raffle_id)
    return _view(raffles.open_raffle(app, raffle_id))


@admin_raffles.post("/{raffle_id}/close", response_model=RaffleOut)
def close_raffle(raffle_id: IdPath, app: AppDep, who: Floor) -> dict[str, Any]:
    """Close sales now (sales made before this moment still count)."""
    raffles.require_visible_raffle(app, who, raffle_id)
    return _view(raffles.close_raffle(app, raffle_id))


@admin_raffles.post("/{raffle_id}/cancel", response_model=RaffleOut)
def cancel_raffle(raffle_id: IdPath, body: CancelBody, app: AppDep, who: Manager) -> dict[str, Any]:
    """Cancel the raffle before its draw (idempotent; tickets stay on record for refunds)."""
    raffles.require_visible_raffle(app, who, raffle_id)
    return _view(raffles.cancel_raffle(app, raffle_id, body.reason))


# --- public ----------------------------------------------------------------------------------

#: how long one computed public list is served (per process) and may be cached by clients
PUBLIC_TTL_S = 1.0
PUBLIC_CACHE_CONTROL = "public, max-age=5"


class _PublicCache:
    """The public list's bytes, recomputed at most once per :data:`PUBLIC_TTL_S` per process
    (one query), so a burst of readers costs one database read a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body = b""
        self._until = 0.0

    def fresh(self) -> bool:
        return time.monotonic() < self._until

    def get(self, app: Tombola) -> bytes:
        if self.fresh():
            return self._body
        with self._lock:
            if time.monotonic() >= self._until:
                self._body = orjson.dumps(raffles.public_raffles(app))
                self._until = time.monotonic() + PUBLIC_TTL_S
            return self._body


def _cache(request: Request) -> _PublicCache:
    state = request.app.state
    cache: _PublicCache | None = getattr(state, "public_raffles_cache", None)
    if cache is None:
        cache = state.public_raffles_cache = _PublicCache()
    return cache


@public_raffles.get("/raffles", response_model=list[PublicRaffle])
async def list_public_raffles(request: Request, app: AppDep) -> Response:
    """Open and scheduled raffles with the current jackpot of 50/50 raffles; no login, no
    personal data; cacheable for a few seconds."""
    cache = _cache(request)
    body = cache.get(app) if cache.fresh() else await run_in_threadpool(cache.get, app)
    return Response(body, media_type="application/json", headers={"Cache-Control": PUBLIC_CACHE_CONTROL})


@public_raffles.get("/jurisdictions")
def list_jurisdictions(response: Response) -> list[dict[str, Any]]:
    """Every jurisdiction profile with its rules and their sources (docs/jurisdictions.md)."""
    response.headers["Cache-Control"] = "public, max-age=3600"
    return jurisdictions.public_list()


async def draw_rules(request: Request, app: AppDep) -> None:
    """A dependency of the core's draw routes in the app: ``POST /core/draw/execute`` (the RNG
    draw) first passes the raffle's jurisdiction rules (:func:`server.raffles.service.check_draw`),
    as ``tombola draw execute`` does; other draw routes pass through."""
    if request.method != "POST" or not request.url.path.endswith("/draw/execute"):
        return
    try:
        raffle_id = orjson.loads(await request.body()).get("raffle_id")
    except (orjson.JSONDecodeError, AttributeError):
        return  # the route's own model refuses the body
    if isinstance(raffle_id, str) and 0 < len(raffle_id) <= 64:
        await run_in_threadpool(raffles.check_draw, app, raffle_id)
