"""Organisations, venues and raffles (the business side), kept in step with the core."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from gli_core.api import RaffleSpec
from server.context import Tombola, new_id
from server.errors import InvalidRequest, NotFound
from server.models import Device, Organisation, Raffle, Venue
from sync_protocol.messages import PricePoint, RaffleInfo
from sync_protocol.money import format_money, is_currency

ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
DEVICE = Device.__table__  # type: ignore[attr-defined]
_ALL_RAFFLES = select(RAFFLE).order_by(RAFFLE.c.created_at_ms)
_RAFFLES_OF_VENUE = _ALL_RAFFLES.where(RAFFLE.c.venue_id == bindparam("venue_id"))


def ensure_organisation(app: Tombola) -> str:
    """The organisation of this installation (created from settings on first use)."""
    with app.engine.begin() as conn:
        row = conn.execute(select(ORG.c.id).limit(1)).first()
        if row:
            return str(row.id)
        org_id = new_id("org")
        conn.execute(
            insert(ORG).values(
                id=org_id, name=app.settings.organisation_name, licence_number=app.settings.licence_number
            )
        )
        return org_id


def create_venue(app: Tombola, name: str) -> dict[str, Any]:
    if not name.strip():
        raise InvalidRequest("a venue needs a name")
    org_id = ensure_organisation(app)
    venue = {
        "id": new_id("vn"),
        "organisation_id": org_id,
        "name": name.strip(),
        "created_at_ms": app.now_ms(),
    }
    with app.engine.begin() as conn:
        conn.execute(insert(VENUE).values(**venue))
    return venue


def get_venue(app: Tombola, venue_id: str) -> dict[str, Any]:
    with app.engine.connect() as conn:
        row = conn.execute(select(VENUE).where(VENUE.c.id == venue_id)).first()
    if row is None:
        raise NotFound(f"no venue {venue_id}")
    return dict(row._mapping)


def list_venues(app: Tombola) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(VENUE).order_by(VENUE.c.created_at_ms))]


@dataclass(frozen=True)
class RaffleCreate:
    venue_id: str
    name: str
    price_cents: int
    number_space: int
    sales_close_at_ms: int
    sales_open_at_ms: int | None = None
    bundles: tuple[tuple[int, int], ...] = ()
    currency: str = "USD"
    grant_size: int | None = None
    prize_table: tuple[dict[str, Any], ...] = ()
    #: sell only the price points (no quantity x the single price), see sync_protocol.rules
    bundles_only: bool = False
    #: what receipts print (RaffleInfo): the raffle's own licence ("" = the organisation's),
    #: where results are published (an http(s) URL), and the time prizes must be claimed by
    licence_number: str = ""
    results_url: str = ""
    claim_by_ms: int | None = None
    #: devices may sell while they cannot reach the server (false: Ontario AGCO POS 1.1.5)
    offline_sales: bool = True


def create_raffle(app: Tombola, spec: RaffleCreate) -> dict[str, Any]:
    """Create a raffle (business row and core registration); sales open at once unless later."""
    venue = get_venue(app, spec.venue_id)
    now = app.now_ms()
    opens = spec.sales_open_at_ms if spec.sales_open_at_ms is not None else now
    if not spec.name.strip():
        raise InvalidRequest("a raffle needs a name")
    if spec.price_cents < 0 or spec.number_space < 1:
        raise InvalidRequest("price must be >= 0 cents and the number space at least 1")
    if spec.sales_close_at_ms <= max(opens, now):
        raise InvalidRequest("sales must close after they open and in the future")
    currency = spec.currency.strip().upper()
    if not is_currency(currency):
        raise InvalidRequest(
            f"currency {spec.currency!r} is not an ISO 4217 currency code (USD, EUR, CAD...)", field="currency"
        )
    price_points = _price_points(spec.price_cents, spec.bundles, currency)
    licence_number, results_url = _receipt_fields(spec)
    raffle_id = new_id("rf")
    settings = app.settings
    grant_size = _grant_size(app, spec.venue_id, spec.number_space, spec.grant_size)
    status = "open" if opens <= now else "scheduled"
    app.core.register_raffle(
        RaffleSpec(
            raffle_id=raffle_id,
            number_space=spec.number_space,
            sales_open_at_ms=opens,
            sales_close_at_ms=spec.sales_close_at_ms,
            grant_size=grant_size,
            lease_s=settings.lease_s,
            max_numbers_per_device=settings.max_numbers_per_device,
            status="open",
            tenant=str(venue["organisation_id"]),
        ),
        prize_table=list(spec.prize_table) or None,
    )
    with app.engine.begin() as conn:
        event_number = 1 + len(conn.execute(select(RAFFLE.c.id).where(RAFFLE.c.venue_id == spec.venue_id)).all())
        row = {
            "id": raffle_id,
            "venue_id": spec.venue_id,
            "name": spec.name.strip(),
            "currency": currency,
            "price_points": json.dumps(price_points),
            "bundles_only": spec.bundles_only,
            "offline_sales": spec.offline_sales,
            "licence_number": licence_number,
            "results_url": results_url,
            "claim_by_ms": spec.claim_by_ms,
            "number_space": spec.number_space,
            "grant_size": grant_size,
            "lease_s": settings.lease_s,
            "max_numbers_per_device": settings.max_numbers_per_device,
            "event_number": event_number,
            "sales_open_at_ms": opens,
            "sales_close_at_ms": spec.sales_close_at_ms,
            "status": status,
            "created_at_ms": now,
        }
        conn.execute(insert(RAFFLE).values(**row))
    return get_raffle(app, raffle_id)


def _receipt_fields(spec: RaffleCreate) -> tuple[str, str]:
    """The receipt fields of ``spec``, trimmed and checked: a licence of at most 64 characters, a
    results URL of at most 500 that is http(s), and a claim-by time after sales close."""
    licence, results_url = spec.licence_number.strip(), spec.results_url.strip()
    if len(licence) > 64 or "\x00" in licence:
        raise InvalidRequest("a licence number has at most 64 characters", field="licence_number")
    if results_url and (
        len(results_url) > 500
        or "\x00" in results_url
        or not results_url.lower().startswith(("http://", "https://"))
        or any(c.isspace() for c in results_url)
    ):
        raise InvalidRequest(
            f"the results URL {results_url[:80]!r} is not an http(s) URL of at most 500 characters",
            field="results_url",
        )
    if spec.claim_by_ms is not None and spec.claim_by_ms <= spec.sales_close_at_ms:
        raise InvalidRequest(
            "prizes can be claimed only after sales close: give a later claim-by time", field="claim_by_ms"
        )
    return licence, results_url


def _price_points(price_cents: int, bundles: tuple[tuple[int, int], ...], currency: str) -> list[dict[str, int]]:
    """The price points: one ticket at ``price_cents``, and each bundle; a bundle that gives a
    quantity a second, different price (``1:CENTS`` other than the price included) is refused."""
    points = {1: price_cents}
    for quantity, cents in bundles:
        if quantity < 1 or cents < 0:
            raise InvalidRequest(
                f"bundle {quantity}:{cents} is not a positive quantity and a price of at least 0", field="bundles"
            )
        held = points.setdefault(quantity, cents)
        if held != cents:
            what = "the price of one ticket" if quantity == 1 else f"another bundle of {quantity}"
            raise InvalidRequest(
                f"bundle {quantity}:{cents} ({format_money(cents, currency)}) disagrees with {what} "
                f"({format_money(held, currency)})",
                field="bundles",
            )
    return [{"quantity": q, "amount_cents": c} for q, c in sorted(points.items())]


def _grant_size(app: Tombola, venue_id: str, number_space: int, asked: int | None) -> int:
    """The raffle's grant size: such that the number space gives each active device of the venue
    a whole grant. Not given: the configured size, made smaller if the space needs it; given (or
    a space smaller than the number of devices): refused when it does not fit.

    Devices enrolled later get grants sized to what is left of the number space (a smaller last
    grant), then none (``docs/operations.md``, "Number space and grants").
    """
    with app.engine.connect() as conn:
        devices = conn.execute(
            select(func.count()).where((DEVICE.c.venue_id == venue_id) & (DEVICE.c.status == "active"))
        ).scalar_one()
    devices = max(1, int(devices))
    grant_size = asked or min(app.settings.grant_size, max(1, number_space // devices))
    if number_space < grant_size * devices:
        fits = number_space // devices
        hint = f"a grant size of at most {fits}" if fits else f"at least {devices} numbers"
        raise InvalidRequest(
            f"a number space of {number_space} cannot give each of the venue's {devices} device(s) a grant of "
            f"{grant_size} numbers: give at least {grant_size * devices} numbers or {hint}",
            field="number_space",
        )
    return grant_size


def _public(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["price_points"] = json.loads(data["price_points"])
    return data


def get_raffle(app: Tombola, raffle_id: str) -> dict[str, Any]:
    with app.engine.connect() as conn:
        row = conn.execute(select(RAFFLE).where(RAFFLE.c.id == raffle_id)).first()
    if row is None:
        raise NotFound(f"no raffle {raffle_id}")
    return effective_status(app, _public(row))


def effective_status(app: Tombola, raffle: dict[str, Any]) -> dict[str, Any]:
    """Status as of now: a scheduled raffle is open once its time comes, closed after close."""
    now = app.now_ms()
    if raffle["status"] in ("open", "scheduled"):
        if now >= raffle["sales_close_at_ms"]:
            raffle["status"] = "closed"
        elif now >= raffle["sales_open_at_ms"]:
            raffle["status"] = "open"
        else:
            raffle["status"] = "scheduled"
    return raffle


def list_raffles(app: Tombola, venue_id: str | None = None, *, conn: Connection | None = None) -> list[dict[str, Any]]:
    """Raffles (of a venue) with their status as of now; ``conn`` reuses an open transaction."""
    query, params = (_RAFFLES_OF_VENUE, {"venue_id": venue_id}) if venue_id else (_ALL_RAFFLES, {})
    if conn is not None:
        return [effective_status(app, _public(r)) for r in conn.execute(query, params)]
    with app.engine.connect() as own:
        return [effective_status(app, _public(r)) for r in own.execute(query, params)]


def close_raffle(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """Close sales now: sales made before this moment (by server-anchored time) still count."""
    raffle = get_raffle(app, raffle_id)
    if raffle["status"] == "cancelled":
        raise InvalidRequest(f"raffle {raffle_id} is cancelled")
    close_at = min(raffle["sales_close_at_ms"], app.now_ms())
    app.core.update_raffle(raffle_id, sales_close_at_ms=close_at, status="closed")
    with app.engine.begin() as conn:
        conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(sales_close_at_ms=close_at, status="closed"))
    return get_raffle(app, raffle_id)


def cancel_raffle(app: Tombola, raffle_id: str, reason: str) -> dict[str, Any]:
    """Cancel the raffle before its draw, in the core and the business database; tickets stay on
    record for refunds. The one cancel of the CLI (``tombola draw cancel``), the admin API
    (``POST /v1/admin/raffles/{id}/cancel``) and the core's route (``POST /core/draw/{id}/cancel``,
    which the app points here).

    The core first (its draw becomes CANCELLED with the reason, logged; from then on it records no
    sale of the raffle), inside the business transaction that holds the raffle's row, which then
    marks it cancelled: the devices' syncs reject its sales (``sale_after_close``). Idempotent: a
    second cancel changes nothing. Returns the raffle, with the draw's status as ``draw``.

    Raises:
        InvalidRequest: no reason.
        NotFound: no such raffle.
        InvalidTransition: the raffle was drawn already (``invalid_draw_transition``): nothing changes.
    """
    if not reason.strip():
        raise InvalidRequest("cancelling a raffle needs a reason", field="reason")
    get_raffle(app, raffle_id)
    with app.engine.begin() as conn:
        status = conn.execute(select(RAFFLE.c.status).where(RAFFLE.c.id == raffle_id).with_for_update()).scalar_one()
        draw = app.core.cancel_raffle(raffle_id, reason.strip())
        if status != "cancelled":
            conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(status="cancelled"))
    return get_raffle(app, raffle_id) | {"draw": draw}


@dataclass(frozen=True)
class Issuer:
    """Who runs the installation's raffles, as receipts print it (``RaffleInfo``)."""

    organisation: str
    licence_number: str
    #: the public ticket-check page: the server's public URL + ``/check``
    check_url: str


_ISSUER = (
    select(ORG.c.name, ORG.c.licence_number)
    .select_from(VENUE.join(ORG, VENUE.c.organisation_id == ORG.c.id))
    .where(VENUE.c.id == bindparam("venue_id"))
)


def issuer(app: Tombola, venue_id: str) -> Issuer:
    """The organisation that owns ``venue_id`` (name, licence) and the ticket-check page: what
    receipts printed at that venue name."""
    with app.engine.connect() as conn:
        row = conn.execute(_ISSUER, {"venue_id": venue_id}).one()
    return Issuer(organisation=str(row.name), licence_number=str(row.licence_number or ""), check_url=check_url(app))


def check_url(app: Tombola) -> str:
    """The public ticket-check page: the server's public URL (``settings.url()``) + ``/check``."""
    return app.settings.url().rstrip("/") + "/check"


def raffle_info(raffle: dict[str, Any], no_grant: str | None = None, *, by: Issuer | None = None) -> RaffleInfo:
    """The device's view of a raffle; ``no_grant``: why this device was due a grant and got none.

    ``by``: the organisation and ticket-check page; with it the receipt members are filled in
    (each left out when empty: the raffle's licence, else the organisation's...).
    """
    return RaffleInfo(
        raffle_id=raffle["id"],
        name=raffle["name"],
        currency=raffle["currency"],
        price_points=[PricePoint(**p) for p in raffle["price_points"]],
        sales_open_at_ms=raffle["sales_open_at_ms"],
        sales_close_at_ms=raffle["sales_close_at_ms"],
        status=raffle["status"],
        bundles_only=bool(raffle.get("bundles_only", False)),
        no_grant=no_grant,
        offline_sales=None if raffle.get("offline_sales", True) else False,
        organisation=(by.organisation or None) if by else None,
        licence_number=(raffle.get("licence_number") or (by.licence_number if by else "")) or None,
        results_url=raffle.get("results_url") or None,
        claim_by_ms=raffle.get("claim_by_ms"),
        check_url=by.check_url if by else None,
    )
