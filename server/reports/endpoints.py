"""``GET /reports/{sales,drawing,exceptions,voided-numbers,device-events}``: the reports of
:mod:`server.reports.service` as JSON (default) or CSV (``format=csv``), each with an explicit role
rule (``admin``, ``business_admin``, ``auditor``, ``venue_manager``; tenant-scoped). ``docs/reports.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from server.auth import Principal
from server.deps import AppDep, require_role
from server.reports import service
from sync_protocol.bounds import NO_NUL

router = APIRouter(prefix="/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_role(*service.REPORT_ROLES, tenant_scoped=True))]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]
Id = Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)]
OptId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)]
Time = Annotated[str | None, Query(max_length=40, pattern=NO_NUL, description="ISO 8601, UTC when naive")]


async def _answer(fmt: str, fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Response:
    report = await run_in_threadpool(fn, *args, **kwargs)
    if fmt == "csv":
        return Response(
            service.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{report["report"]}.csv"'},
        )
    return JSONResponse(report)


@router.get("/sales")
async def sales_report(
    app: AppDep,
    principal: Reader,
    group_by: Annotated[Literal["raffle", "venue", "device", "seller", "payment_method", "hour"], Query()] = "raffle",
    raffle: OptId = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, pattern=NO_NUL)] = None,
    to: Time = None,
    fmt: Format = "json",
) -> Response:
    """Sales grouped by raffle, venue, device, seller, payment method or hour, with voids subtracted."""
    return await _answer(fmt, service.sales, app, principal, group_by=group_by, raffle=raffle, since=from_, until=to)


@router.get("/drawing")
async def drawing_report(app: AppDep, principal: Reader, raffle: Id, fmt: Format = "json") -> Response:
    """GLI-31 raffle drawing report: the draw's committed values and the prize holders."""
    return await _answer(fmt, service.drawing, app, principal, raffle=raffle)


@router.get("/exceptions")
async def exceptions_report(
    app: AppDep,
    principal: Reader,
    raffle: OptId = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, pattern=NO_NUL)] = None,
    to: Time = None,
    kind: Annotated[service.ExceptionKind | None, Query()] = None,
    fmt: Format = "json",
) -> Response:
    """GLI-31 exception report: voids and rejected records, range extensions, two-person requests and
    break-glass, redraws, revocations and voided remainders, each audit event with its log index."""
    return await _answer(fmt, service.exceptions, app, principal, raffle=raffle, since=from_, until=to, kind=kind)


@router.get("/voided-numbers")
async def voided_numbers_report(app: AppDep, principal: Reader, raffle: Id, fmt: Format = "json") -> Response:
    """GLI-31 voided numbers with their verification codes."""
    return await _answer(fmt, service.voided_numbers, app, principal, raffle=raffle)


@router.get("/device-events")
async def device_events_report(
    app: AppDep,
    principal: Reader,
    device: OptId = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, pattern=NO_NUL)] = None,
    to: Time = None,
    type: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    fmt: Format = "json",
) -> Response:
    """GLI-31 5.6.2 device event log, searchable by time, device and type."""
    return await _answer(
        fmt, service.device_event_log, app, principal, device=device, since=from_, until=to, type=type, limit=limit
    )
