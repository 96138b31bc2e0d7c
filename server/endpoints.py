"""HTTP routes: device protocol (``/v1/devices/enroll``, ``/v1/sync``), nightly ingest
(``/v1/ingest``), the admin API (``/v1/admin/...``) and the interface-layer ticket route
(``/raffle/{id}/tickets/generate``). Routes are thin: services hold the logic."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server import jurisdictions, schemas
from server.contract import ERROR_RESPONSES, json_body, raw_body
from server.deps import AdminDep, AppDep
from server.enrollment import service as enrollment
from server.errors import InvalidRequest
from server.events import service as device_events
from server.events.models import DeviceEventOut
from server.raffles import service as raffles
from server.raffles.endpoints import AdminRaffleCreate
from server.reconcile import service as reconcile
from server.sync import service as sync
from sync_protocol.bounds import INT32_MAX, NO_NUL, Millis, Text32, Text64, Text500
from sync_protocol.messages import EnrollmentRequest, EnrollmentResponse, RangeGrant, SyncAck, SyncBatch
from sync_protocol.strict_json import loads_strict

device_router = APIRouter(prefix="/v1", tags=["devices"], responses=ERROR_RESPONSES)
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep], responses=ERROR_RESPONSES)
interface_router = APIRouter(tags=["interface"], responses=ERROR_RESPONSES)


async def _json(request: Request) -> Any:
    """The body as I-JSON (``malformed`` for invalid JSON or a duplicate member name)."""
    return loads_strict(await request.body())


@device_router.post(
    "/devices/enroll",
    status_code=201,
    response_model=EnrollmentResponse,
    response_model_exclude_none=True,
    openapi_extra=json_body(EnrollmentRequest, "the signed request (docs/sync-protocol.md, enrollment)"),
)
async def enroll_device(request: Request, app: AppDep) -> dict[str, Any]:
    """A device trades a one-time code and its public key for its identity and grants."""
    enroll_request = EnrollmentRequest.from_dict(await _json(request))
    response = await run_in_threadpool(enrollment.enroll, app, enroll_request)
    return response.to_dict()


@device_router.post(
    "/sync",
    response_model=SyncAck,
    response_model_exclude_none=True,
    openapi_extra=json_body(SyncBatch, "a signed batch of chain records (docs/sync-protocol.md)"),
)
async def sync_device(request: Request, app: AppDep) -> dict[str, Any]:
    """Upload a signed batch of records; get the acknowledgement, grants, raffles and time."""
    batch = SyncBatch.from_dict(await _json(request))
    ack = await run_in_threadpool(sync.sync, app, batch)
    return ack.to_dict()


@device_router.post(
    "/ingest",
    dependencies=[AdminDep],
    response_model=schemas.IngestResult,
    openapi_extra=raw_body("a device's export file (NDJSON: header, records, signed trailer)", "application/x-ndjson"),
)
async def ingest_export(request: Request, app: AppDep) -> dict[str, Any]:
    """Nightly reconciliation: the body is a device's NDJSON export file."""
    with tempfile.NamedTemporaryFile(suffix=".ndjson", delete=False) as fh:
        async for chunk in request.stream():
            fh.write(chunk)
        path = Path(fh.name)
    try:
        result = await run_in_threadpool(reconcile.ingest_file, app, path, progress=False)
    finally:
        path.unlink(missing_ok=True)
    return result


# Every member is bounded to fit its column on both backends (docs/sync-protocol.md section 4):
# an input out of bounds is ``malformed`` (422), never a database error.
#: an id in a URL (looked up, never stored): no U+0000, which PostgreSQL refuses in a parameter
IdPath = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]
IdQuery = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
#: a bundle: (quantity, amount_cents); a sale carries at most 1,000 numbers
Bundle = tuple[Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=0, le=INT32_MAX)]]


class VenueCreate(BaseModel):
    name: Name = Field(description="the venue's name, as receipts print it")


class RaffleCreateBody(BaseModel):
    venue_id: Text32
    name: Name
    price_cents: int = Field(ge=0, le=INT32_MAX)
    #: the number space; the core's next free number (numbers + 1) must fit an INTEGER column too
    numbers: int = Field(ge=1, le=INT32_MAX - 1)
    closes_at_ms: Millis
    opens_at_ms: Millis | None = None
    bundles: list[Bundle] = Field(default_factory=list, max_length=100)
    bundles_only: bool = False
    #: false: devices sell only while they reach the server (Ontario AGCO POS 1.1.5)
    offline_sales: bool = True
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    #: printed on receipts (RaffleInfo): the raffle's licence ("" = the organisation's), where
    #: results are published (http/https), when prizes must be claimed by
    licence_number: Text64 = ""
    results_url: Text500 = ""
    claim_by_ms: Millis | None = None


class ExtendBody(BaseModel):
    raffle_id: Text32 = Field(description="the raffle to extend the device's numbers of")
    numbers: int = Field(ge=1, le=100_000, description="exactly how many numbers the extension grants")
    reason: Text500 = Field(min_length=1, description="why (logged)")


class RevokeBody(BaseModel):
    reason: Text500 = Field(min_length=1, description="Why the device is revoked (lost, stolen, retired); logged")


@admin_router.post("/venues", status_code=201, response_model=schemas.Venue)
def create_venue(body: VenueCreate, app: AppDep) -> dict[str, Any]:
    """Add a venue to the installation's organisation."""
    return raffles.create_venue(app, body.name)


@admin_router.post("/raffles", status_code=201)
def create_raffle(body: RaffleCreateBody, app: AppDep) -> dict[str, Any]:
    # the installation admin's older route: the same terms as /admin/raffles, its other fields defaulted
    return raffles.create_raffle(app, AdminRaffleCreate.model_validate(body.model_dump()).to_spec())


@admin_router.get("/raffles")
def list_raffles(app: AppDep, venue_id: IdQuery = None) -> list[dict[str, Any]]:
    return raffles.list_raffles(app, venue_id)


@admin_router.post("/raffles/{raffle_id}/close")
def close_raffle(raffle_id: IdPath, app: AppDep) -> dict[str, Any]:
    return raffles.close_raffle(app, raffle_id)


@admin_router.get("/raffles/{raffle_id}/reconciliation")
def reconciliation(raffle_id: IdPath, app: AppDep) -> dict[str, Any]:
    return reconcile.report(app, raffle_id)


@admin_router.post("/venues/{venue_id}/enrollment-codes", status_code=201, response_model=schemas.EnrollmentCode)
def enrollment_code(venue_id: IdPath, app: AppDep) -> dict[str, Any]:
    """A one-time code that enrolls one device at the venue (shown once)."""
    return enrollment.create_enrollment_code(app, venue_id)


@admin_router.get("/devices", response_model=list[schemas.Device])
def list_devices(app: AppDep, venue_id: IdQuery = None) -> list[dict[str, Any]]:
    """Enrolled devices, of one venue if given, in enrollment order."""
    return enrollment.list_devices(app, venue_id)


@admin_router.get("/devices/{device_id}/events", response_model=list[DeviceEventOut])
def list_device_events(
    device_id: IdPath,
    app: AppDep,
    since: Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="ISO 8601 time")] = None,
    type: Annotated[str | None, Query(max_length=32, pattern=NO_NUL, description="an event type")] = None,
    limit: Annotated[int, Query(ge=1, le=device_events.MAX_LIST)] = 1000,
) -> list[dict[str, Any]]:
    """A device's significant events (GLI-31), oldest first (docs/sync-protocol.md section 19)."""
    return device_events.list_events(app, device_id, since=since, type=type, limit=limit)


@admin_router.post("/devices/{device_id}/revoke", response_model=schemas.RevokedDevice)
def revoke_device(device_id: IdPath, body: RevokeBody, app: AppDep) -> dict[str, Any]:
    """Revoke a device: its syncs are refused and its grants' unsold numbers voided (idempotent)."""
    return enrollment.revoke_device(app, device_id, body.reason)


@admin_router.post(
    "/devices/{device_id}/extend", status_code=201, response_model=RangeGrant, response_model_exclude_none=True
)
def extend_device(device_id: IdPath, body: ExtendBody, app: AppDep) -> dict[str, Any]:
    """An emergency extension: a grant of exactly ``numbers``, delivered at the device's next sync."""
    grant = enrollment.extend_device(app, device_id, body.raffle_id, body.numbers, body.reason)
    return grant.to_dict()


class ReasonBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL, description="why (logged)")


class VoidRemainderBody(ReasonBody):
    raffle_id: str = Field(
        min_length=1, max_length=64, pattern=NO_NUL, description="the raffle whose remainder to void"
    )


@admin_router.post("/raffles/{raffle_id}/cancel")
def cancel_raffle(raffle_id: str, body: ReasonBody, app: AppDep) -> dict[str, Any]:
    """Cancel the raffle before its draw, in the core and the business database (idempotent)."""
    return raffles.cancel_raffle(app, raffle_id, body.reason)


@admin_router.post("/devices/{device_id}/void-remainder", response_model=schemas.RemainderVoided)
def void_remainder(device_id: IdPath, body: VoidRemainderBody, app: AppDep) -> dict[str, Any]:
    """Void a lost device's unsynced remainder of a raffle so its draw can go ahead."""
    return enrollment.void_remainder(app, device_id, body.raffle_id, body.reason)


def cancel_through_service(app: AppDep) -> Callable[[str, str], dict[str, Any]]:
    """The cancel of the core's route ``POST /core/draw/{id}/cancel`` (its dependency
    ``gli_core.router.raffle_canceller``): the one cancel service, so the business raffle is
    cancelled too. Answers the draw's status, as the core's own cancel does."""
    return lambda raffle_id, reason: raffles.cancel_raffle(app, raffle_id, reason)["draw"]


@interface_router.post("/raffle/{raffle_id}/tickets/generate", response_model=schemas.GeneratedTickets)
def generate_tickets(
    raffle_id: IdPath, app: AppDep, quantity: Annotated[int, Query(ge=1, le=100)] = 1
) -> dict[str, list[str]]:
    """Interface layer (spec 2.1): sell ``quantity`` tickets online; returns their ids."""
    raffle = raffles.get_raffle(app, raffle_id)
    if raffle["status"] != "open":
        raise InvalidRequest(f"raffle {raffle_id} is {raffle['status']}, not selling")
    jurisdictions.check_online_sale(jurisdictions.profile_of(app, raffle_id), raffle)
    prices = {p["quantity"]: p["amount_cents"] for p in raffle["price_points"]}
    amount = prices.get(quantity, quantity * prices[1])
    return {"tickets": [t.id for t in app.core.generate_tickets(raffle_id, quantity, amount_cents=amount)]}
