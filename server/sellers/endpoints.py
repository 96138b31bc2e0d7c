"""Admin API of the seller roster (``/v1/admin/...``): thin routes over :mod:`server.sellers.service`.

``POST /v1/admin/venues/{venue_id}/sellers`` ``{"name", "pin", "supervisor"}`` -> 201 the seller
(never the PIN or its hash); ``GET /v1/admin/venues/{venue_id}/sellers``;
``POST /v1/admin/sellers/{seller_id}/disable``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from server.contract import ERROR_RESPONSES
from server.deps import AdminDep, AppDep
from server.sellers import service as sellers
from sync_protocol.bounds import NO_NUL

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep], responses=ERROR_RESPONSES)
IdPath = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]


class SellerCreateBody(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL, description="the seller's name on receipts")
    #: 4 to 8 digits; only its salted hash is kept (the service checks the digits, ``invalid_request``)
    pin: str = Field(
        min_length=1, max_length=64, pattern=NO_NUL, description="4 to 8 digits; only its salted hash is kept"
    )
    supervisor: bool = Field(default=False, description="the seller may authorise voids with their PIN")


class Seller(BaseModel):
    """A seller of a venue's roster (never the PIN or its hash)."""

    id: str
    venue_id: str
    name: str
    supervisor: bool
    status: str = Field(description="`active` or `disabled`")
    created_at_ms: int = Field(description="Unix ms")
    disabled_at_ms: int | None = Field(description="Unix ms; null while active")


@router.post("/venues/{venue_id}/sellers", status_code=201, response_model=Seller)
def add_seller(venue_id: IdPath, body: SellerCreateBody, app: AppDep) -> dict[str, Any]:
    """Add a seller to the venue's roster; its devices get it (PIN hash only) at their next sync."""
    return sellers.add_seller(app, venue_id, body.name, body.pin, supervisor=body.supervisor)


@router.get("/venues/{venue_id}/sellers", response_model=list[Seller])
def list_sellers(venue_id: IdPath, app: AppDep) -> list[dict[str, Any]]:
    """Every seller of the venue, active and disabled."""
    return sellers.list_sellers(app, venue_id)


@router.post("/sellers/{seller_id}/disable", response_model=Seller)
def disable_seller(seller_id: IdPath, app: AppDep) -> dict[str, Any]:
    """Take the seller off the roster (idempotent); devices drop it at their next sync."""
    return sellers.disable_seller(app, seller_id)
