"""Organisations, venues and raffles (the business side), kept in step with the core."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, false, func, insert, select, union_all, update

from gli_core.api import RaffleSpec
from server import audit, jurisdictions
from server.context import Tombola, new_id
from server.errors import InvalidRequest, NotFound, RaffleFieldFixed, TermsFixedAfterSale
from server.models import Device, OnlineOrder, Organisation, Raffle, Sale, Venue
from sync_protocol.messages import PricePoint, RaffleInfo
from sync_protocol.money import format_money, is_currency

ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
DEVICE = Device.__table__  # type: ignore[attr-defined]
SALE = Sale.__table__  # type: ignore[attr-defined]
ORDER = OnlineOrder.__table__  # type: ignore[attr-defined]
#: the core's prize table when none is given: one 50/50 prize of half the sales
DEFAULT_PRIZE_TABLE: tuple[dict[str, Any], ...] = (
    {"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50},
)
RULES_TEXT_MAX = 20_000
PURCHASE_LIMIT_MAX = 1_000_000
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
    #: the rule profile (server/jurisdictions.py); None: the organisation's licence's
    jurisdiction: str | None = None
    #: tickets also sold online; None: when the profile allows it
    online_sales: bool | None = None
    #: ``rng`` (the HSM draw) or ``barrel`` (printed barrel tickets drawn by hand)
    draw_method: str = "rng"
    #: the most tickets one customer may buy online; None: no limit
    purchase_limit: int | None = None
    rules_text: str = ""


_ORG_OF_VENUE = (
    select(ORG.c.id, ORG.c.licence_number, ORG.c.jurisdiction)
    .select_from(VENUE.join(ORG, VENUE.c.organisation_id == ORG.c.id))
    .where(VENUE.c.id == bindparam("venue_id"))
)


def _organisation_of(conn: Connection, venue_id: str) -> Any:
    row = conn.execute(_ORG_OF_VENUE, {"venue_id": venue_id}).first()
    if row is None:
        raise NotFound(f"no venue {venue_id}")
    return row


def share_percent(prize_table: Sequence[Mapping[str, Any]]) -> int:
    """The share of sales the prizes pay out (the 50/50 share): the sum of count x percent of
    the percent-of-sales tiers."""
    return sum(
        int(t.get("count", 1)) * int(t.get("percent", 0)) for t in prize_table if t.get("kind") == "percent_of_sales"
    )


def _checked_terms(*, draw_method: str, purchase_limit: int | None, rules_text: str) -> tuple[str, int | None, str]:
    if draw_method not in jurisdictions.DRAW_METHODS:
        raise InvalidRequest(
            f"draw method {draw_method[:20]!r} is not one of {', '.join(jurisdictions.DRAW_METHODS)}",
            field="draw_method",
        )
    if purchase_limit is not None and not 1 <= purchase_limit <= PURCHASE_LIMIT_MAX:
        raise InvalidRequest(
            f"a purchase limit is a number of tickets from 1 to {PURCHASE_LIMIT_MAX}", field="purchase_limit"
        )
    if len(rules_text) > RULES_TEXT_MAX or "\x00" in rules_text:
        raise InvalidRequest(f"the rules text has at most {RULES_TEXT_MAX} characters", field="rules_text")
    return draw_method, purchase_limit, rules_text.strip()


def _default_online(profile: jurisdictions.Profile, candidate: dict[str, Any]) -> bool:
    """Online sales when not said: on when the profile lets this raffle sell online."""
    trial = candidate | {"online_sales": True}
    broken = {v.extra["rule"] for v in jurisdictions.raffle_violations(profile, trial)}
    return not broken & {"online_sales", "rng_draw_for_online", "online_fifty_fifty"}


def create_raffle(app: Tombola, spec: RaffleCreate) -> dict[str, Any]:
    """Create a raffle (business row and core registration); sales open at once unless later.

    The raffle's terms must satisfy its jurisdiction profile (``jurisdiction_rule`` otherwise,
    before anything is written). Logs ``raffle.created`` with the terms, in the same transaction
    as the row, attributed to the caller (the audit actor).
    """
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
    draw_method, purchase_limit, rules_text = _checked_terms(
        draw_method=spec.draw_method, purchase_limit=spec.purchase_limit, rules_text=spec.rules_text
    )
    with app.engine.connect() as conn:
        org = _organisation_of(conn, spec.venue_id)
    profile = jurisdictions.profile(spec.jurisdiction or str(org.jurisdiction or jurisdictions.DEFAULT))
    prize_table = [dict(t) for t in (spec.prize_table or DEFAULT_PRIZE_TABLE)]
    candidate: dict[str, Any] = {
        "price_points": price_points,
        "offline_sales": spec.offline_sales,
        "draw_method": draw_method,
        "prize_table": prize_table,
        "licence_number": licence_number,
        "organisation_licence": str(org.licence_number or ""),
        "results_url": results_url,
        "claim_by_ms": spec.claim_by_ms,
    }
    online = spec.online_sales if spec.online_sales is not None else _default_online(profile, candidate)
    jurisdictions.check_raffle(profile, candidate | {"online_sales": online})
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
            "jurisdiction": profile.name,
            "online_sales": online,
            "draw_method": draw_method,
            "prize_table": json.dumps(prize_table, sort_keys=True),
            "share_percent": share_percent(prize_table),
            "purchase_limit": purchase_limit,
            "rules_text": rules_text,
        }
        conn.execute(insert(RAFFLE).values(**row))
        logged = {k: v for k, v in row.items() if k not in ("price_points", "prize_table", "rules_text")}
        audit.record(
            conn,
            app,
            "raffle.created",
            logged | {"raffle_id": raffle_id, "price_points": price_points, "prize_table": prize_table},
            tenant=str(org.id),
        )
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
    if "prize_table" in data:
        data["prize_table"] = json.loads(data["prize_table"] or "[]")
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


def _tenant(conn: Connection, raffle_id: str) -> str:
    return str(
        conn.execute(
            select(VENUE.c.organisation_id)
            .select_from(RAFFLE.join(VENUE, RAFFLE.c.venue_id == VENUE.c.id))
            .where(RAFFLE.c.id == raffle_id)
        ).scalar_one_or_none()
        or ""
    )


def close_raffle(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """Close sales now: sales made before this moment (by server-anchored time) still count.
    Logs ``raffle.changed`` (``action`` ``closed``); a raffle closed already is not logged again."""
    raffle = get_raffle(app, raffle_id)
    if raffle["status"] == "cancelled":
        raise InvalidRequest(f"raffle {raffle_id} is cancelled")
    close_at = min(raffle["sales_close_at_ms"], app.now_ms())
    with app.engine.begin() as conn:
        stored = conn.execute(select(RAFFLE.c.status).where(RAFFLE.c.id == raffle_id).with_for_update()).scalar_one()
        app.core.update_raffle(raffle_id, sales_close_at_ms=close_at, status="closed")
        conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(sales_close_at_ms=close_at, status="closed"))
        if stored != "closed":
            audit.record(
                conn,
                app,
                "raffle.changed",
                {"raffle_id": raffle_id, "action": "closed", "sales_close_at_ms": close_at},
                tenant=_tenant(conn, raffle_id),
            )
    return get_raffle(app, raffle_id)


def open_raffle(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """Open the sales of a scheduled raffle now (the core's sales window too); an open raffle is
    left as it is. Logs ``raffle.changed`` (``action`` ``opened``).

    Raises:
        NotFound: no such raffle.
        RaffleFieldFixed: the raffle is closed or cancelled (``field`` ``status``): it never reopens.
        JurisdictionRule: the raffle breaks its profile.
    """
    raffle = get_raffle(app, raffle_id)
    if raffle["status"] == "open":
        return raffle
    if raffle["status"] != "scheduled":
        raise RaffleFieldFixed(
            f"raffle {raffle_id} is {raffle['status']}: a closed or cancelled raffle is never opened again",
            field="status",
        )
    _check_profile(app, raffle)
    now = app.now_ms()
    with app.engine.begin() as conn:
        conn.execute(select(RAFFLE.c.id).where(RAFFLE.c.id == raffle_id).with_for_update()).scalar_one()
        app.core.update_raffle(raffle_id, sales_open_at_ms=now)
        conn.execute(
            update(RAFFLE)
            .where(RAFFLE.c.id == raffle_id)
            .values(sales_open_at_ms=now, status="open", updated_at_ms=now)
        )
        audit.record(
            conn,
            app,
            "raffle.changed",
            {"raffle_id": raffle_id, "action": "opened", "sales_open_at_ms": now},
            tenant=_tenant(conn, raffle_id),
        )
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
            audit.record(
                conn,
                app,
                "raffle.changed",
                {"raffle_id": raffle_id, "action": "cancelled", "reason": reason.strip()},
                tenant=_tenant(conn, raffle_id),
            )
    return get_raffle(app, raffle_id) | {"draw": draw}


# --- edit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaffleEdit:
    """The members of a raffle an edit may change; None leaves a member as it is.

    Price, bundles, bundles-only, prizes, draw method and jurisdiction are the raffle's terms:
    fixed once a ticket is sold (WAC 230-11-320; ``terms_fixed_after_sale``). The prize table,
    venue, currency and number space are fixed from creation (the core and the draw commitment
    published at creation hold them; ``raffle_field_fixed``).
    """

    name: str | None = None
    price_cents: int | None = None
    bundles: tuple[tuple[int, int], ...] | None = None
    bundles_only: bool | None = None
    prize_table: tuple[dict[str, Any], ...] | None = None
    sales_open_at_ms: int | None = None
    sales_close_at_ms: int | None = None
    offline_sales: bool | None = None
    online_sales: bool | None = None
    draw_method: str | None = None
    jurisdiction: str | None = None
    purchase_limit: int | None = None
    #: True: remove the purchase limit
    no_purchase_limit: bool = False
    rules_text: str | None = None
    licence_number: str | None = None
    results_url: str | None = None
    claim_by_ms: int | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, False)}


#: the members that are the raffle's terms: fixed after the first sale
TERMS = ("price_points", "bundles_only", "prize_table", "draw_method", "jurisdiction")


def has_sales(app: Tombola, raffle_id: str) -> bool:
    """Whether any ticket of the raffle was sold (recorded in the core, any channel), voided or not."""
    return sum(app.core.count_tickets(raffle_id).values()) > 0


def edit_raffle(app: Tombola, raffle_id: str, edit: RaffleEdit) -> dict[str, Any]:
    """Change a raffle that is scheduled or open: the one edit of the CLI (``tombola raffle
    edit``), the HTTP API (``PATCH /admin/raffles/{id}``) and the portal.

    The edited raffle must satisfy its jurisdiction profile. Logs ``raffle.changed`` (``action`` ``edited``) with each
    changed member as ``[before, after]``, in the transaction of the change; an edit that changes
    nothing is not logged. A new close (or open) time reaches the core's sales window first.

    Raises:
        NotFound: no such raffle.
        TermsFixedAfterSale: a term would change after the first sale (``field``).
        RaffleFieldFixed: the prize table, a passed opening time, or a closed/cancelled raffle.
        JurisdictionRule: the edited raffle would break its profile.
        InvalidRequest: a value out of its bounds (``field``).
    """
    given = edit.given()
    now = app.now_ms()
    with app.engine.begin() as conn:
        row = conn.execute(select(RAFFLE).where(RAFFLE.c.id == raffle_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no raffle {raffle_id}")
        before = effective_status(app, _public(row))
        if before["status"] not in ("open", "scheduled"):
            raise RaffleFieldFixed(
                f"raffle {raffle_id} is {before['status']}: it can no longer be edited", field="status"
            )
        org = _organisation_of(conn, before["venue_id"])
        after = dict(before)
        if "name" in given:
            if not edit.name or not edit.name.strip():
                raise InvalidRequest("a raffle needs a name", field="name")
            after["name"] = edit.name.strip()
        if {"price_cents", "bundles"} & given.keys():
            price = edit.price_cents if edit.price_cents is not None else _single_price(before)
            if price < 0:
                raise InvalidRequest("price must be >= 0 cents", field="price_cents")
            bundles = edit.bundles if edit.bundles is not None else _bundles(before)
            after["price_points"] = _price_points(price, bundles, before["currency"])
        if edit.bundles_only is not None:
            after["bundles_only"] = edit.bundles_only
        if edit.prize_table is not None:
            after["prize_table"] = [dict(t) for t in edit.prize_table]
        for name in ("offline_sales", "online_sales", "draw_method", "rules_text"):
            if getattr(edit, name) is not None:
                after[name] = getattr(edit, name)
        if edit.jurisdiction is not None:
            after["jurisdiction"] = jurisdictions.profile(edit.jurisdiction).name
        if edit.no_purchase_limit:
            after["purchase_limit"] = None
        elif edit.purchase_limit is not None:
            after["purchase_limit"] = edit.purchase_limit
        after["draw_method"], after["purchase_limit"], after["rules_text"] = _checked_terms(
            draw_method=after["draw_method"], purchase_limit=after["purchase_limit"], rules_text=after["rules_text"]
        )
        for name in ("licence_number", "results_url", "claim_by_ms", "sales_open_at_ms", "sales_close_at_ms"):
            if getattr(edit, name) is not None:
                after[name] = getattr(edit, name)
        changed = [k for k in after if k != "status" and after[k] != before[k]]
        if not changed:
            return before
        sold = any(k in TERMS for k in changed) and has_sales(app, raffle_id)
        for key in changed:
            if key in TERMS and sold:
                raise TermsFixedAfterSale(
                    f"raffle {raffle_id} has sold tickets: its {key.replace('_', ' ')} can no longer change "
                    "(WAC 230-11-320: price and prizes are fixed from the first sale)",
                    field=key,
                )
        if "prize_table" in changed:
            raise RaffleFieldFixed(
                "the prize table is fixed when the raffle is created (the core holds it under the draw's published "
                "commitment): before any sale, cancel the raffle and create it again",
                field="prize_table",
            )
        _check_window(before, after, now)
        licence, results_url = _receipt_fields(
            RaffleCreate(
                venue_id=before["venue_id"],
                name=after["name"],
                price_cents=0,
                number_space=1,
                sales_close_at_ms=after["sales_close_at_ms"],
                licence_number=after["licence_number"],
                results_url=after["results_url"],
                claim_by_ms=after["claim_by_ms"],
            )
        )
        after["licence_number"], after["results_url"] = licence, results_url
        profile = jurisdictions.profile(after["jurisdiction"] or jurisdictions.DEFAULT)
        jurisdictions.check_raffle(profile, after | {"organisation_licence": str(org.licence_number or "")})
        changed = [k for k in after if k != "status" and after[k] != before[k]]
        window = {k: after[k] for k in ("sales_open_at_ms", "sales_close_at_ms") if k in changed}
        if window:
            app.core.update_raffle(raffle_id, **window)
        values = {k: after[k] for k in changed}
        if "price_points" in values:
            values["price_points"] = json.dumps(after["price_points"])
        if "sales_open_at_ms" in values:
            values["status"] = "open" if after["sales_open_at_ms"] <= now else "scheduled"
        conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(**values, updated_at_ms=now))
        audit.record(
            conn,
            app,
            "raffle.changed",
            {"raffle_id": raffle_id, "action": "edited", "changes": {k: [before[k], after[k]] for k in changed}},
            tenant=str(org.id),
        )
    return get_raffle(app, raffle_id)


def _single_price(raffle: Mapping[str, Any]) -> int:
    return int(next(p["amount_cents"] for p in raffle["price_points"] if p["quantity"] == 1))


def _bundles(raffle: Mapping[str, Any]) -> tuple[tuple[int, int], ...]:
    return tuple((int(p["quantity"]), int(p["amount_cents"])) for p in raffle["price_points"] if p["quantity"] != 1)


def _check_window(before: Mapping[str, Any], after: Mapping[str, Any], now: int) -> None:
    """A new opening time only while the raffle is scheduled, in the future; a new close time
    in the future and after the opening; claim-by after the close."""
    if after["sales_open_at_ms"] != before["sales_open_at_ms"]:
        if before["status"] != "scheduled":
            raise RaffleFieldFixed(
                "sales have opened already: the opening time can no longer change", field="sales_open_at_ms"
            )
        if after["sales_open_at_ms"] < now:
            raise InvalidRequest(
                "a new opening time is in the future (or open the raffle now)", field="sales_open_at_ms"
            )
    if after["sales_close_at_ms"] != before["sales_close_at_ms"] and after["sales_close_at_ms"] <= max(
        now, after["sales_open_at_ms"]
    ):
        raise InvalidRequest(
            "sales must close after they open and in the future (close the raffle to stop sales now)",
            field="sales_close_at_ms",
        )
    if after["sales_close_at_ms"] <= after["sales_open_at_ms"]:
        raise InvalidRequest("sales must close after they open", field="sales_open_at_ms")


def _check_profile(app: Tombola, raffle: Mapping[str, Any]) -> None:
    with app.engine.connect() as conn:
        org = _organisation_of(conn, raffle["venue_id"])
    profile = jurisdictions.profile(raffle.get("jurisdiction") or jurisdictions.DEFAULT)
    jurisdictions.check_raffle(profile, dict(raffle) | {"organisation_licence": str(org.licence_number or "")})


#: the rules of a profile a point of sale's selling depends on (what a POS grant consults)
POS_RULES = frozenset({"offline_pos", "max_bundle_levels"})


def grant_refusal(raffle: Mapping[str, Any]) -> str | None:
    """Why no POS grant may be issued for ``raffle`` (a stored raffle) under its profile, as a
    code (``jurisdiction_rule``), or None. The grant path's consultation of the jurisdiction
    rules: a second line of defence, since creation and edit refuse such a raffle already."""
    profile = jurisdictions.PROFILES.get(raffle.get("jurisdiction") or "", jurisdictions.PROFILES["default"])
    broken = [v for v in jurisdictions.raffle_violations(profile, raffle) if v.extra["rule"] in POS_RULES]
    return broken[0].code if broken else None


# --- the draw --------------------------------------------------------------------------------

_GROSS = select(func.coalesce(func.sum(SALE.c.amount_cents), 0)).where(
    (SALE.c.raffle_id == bindparam("raffle_id"))
    & (SALE.c.kind == "sale")
    & (SALE.c.status == "accepted")
    & (SALE.c.voided == false())
)


def gross_sales(app: Tombola, raffle_id: str) -> int:
    """Gross sales of the raffle's valid POS sales (accepted, not voided), in minor units."""
    with app.engine.connect() as conn:
        return int(conn.execute(_GROSS, {"raffle_id": raffle_id}).scalar_one())


def check_draw(app: Tombola, raffle_id: str) -> None:
    """Refuse a draw by the RNG that the raffle's jurisdiction forbids (``jurisdiction_rule``): a
    barrel-ticket raffle, a profile's RNG threshold. A raffle unknown to the business side (only
    in the core) passes: the core answers for it."""
    try:
        raffle = get_raffle(app, raffle_id)
    except NotFound:
        return
    profile = jurisdictions.profile(raffle.get("jurisdiction") or jurisdictions.DEFAULT)
    with app.engine.connect() as conn:
        org = _organisation_of(conn, raffle["venue_id"])
    jurisdictions.check_rng_draw(
        profile, raffle | {"organisation_licence": str(org.licence_number or "")}, gross_sales(app, raffle_id)
    )


def execute_draw(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """Draw the winners with the RNG (the core's HSM VRF draw) once the raffle's jurisdiction
    allows it (:func:`check_draw`): the RNG draw of the CLI (``tombola draw execute``); the
    core's route ``POST /core/draw/execute`` runs the same check (a dependency in the app)."""
    check_draw(app, raffle_id)
    return app.core.draw_execute(raffle_id)


# --- who may see a raffle --------------------------------------------------------------------


class Principal(Protocol):
    """Who asks (:class:`server.auth.Principal`): its tenant (None: installation-wide), its
    venues (None: all of its tenant's) and the visibility rule."""

    @property
    def tenant(self) -> str | None: ...

    @property
    def venues(self) -> frozenset[str] | None: ...

    def sees_venue(self, organisation_id: str, venue_id: str) -> bool: ...


def raffle_scope(app: Tombola, raffle_id: str) -> tuple[str, str]:
    """The organisation and venue of the raffle.

    Raises:
        NotFound: no such raffle.
    """
    with app.engine.connect() as conn:
        row = conn.execute(
            select(VENUE.c.organisation_id, VENUE.c.id)
            .select_from(RAFFLE.join(VENUE, RAFFLE.c.venue_id == VENUE.c.id))
            .where(RAFFLE.c.id == raffle_id)
        ).first()
    if row is None:
        raise NotFound(f"no raffle {raffle_id}")
    return str(row[0]), str(row[1])


def require_visible_raffle(app: Tombola, principal: Principal, raffle_id: str) -> None:
    """404 ``not_found`` for a raffle the principal may not see (another tenant's or venue's),
    exactly as for a raffle that does not exist."""
    org_id, venue_id = raffle_scope(app, raffle_id)
    if not principal.sees_venue(org_id, venue_id):
        raise NotFound(f"no raffle {raffle_id}")


def require_visible_venue(app: Tombola, principal: Principal, venue_id: str) -> None:
    """404 ``not_found`` for a venue the principal may not see."""
    venue = get_venue(app, venue_id)
    if not principal.sees_venue(str(venue["organisation_id"]), venue_id):
        raise NotFound(f"no venue {venue_id}")


def list_visible_raffles(app: Tombola, principal: Principal, venue_id: str | None = None) -> list[dict[str, Any]]:
    """The raffles the principal may see (of its tenant, of its venues), of ``venue_id`` if given."""
    query = select(RAFFLE, VENUE.c.organisation_id).select_from(RAFFLE.join(VENUE, RAFFLE.c.venue_id == VENUE.c.id))
    if venue_id:
        query = query.where(RAFFLE.c.venue_id == venue_id)
    if principal.tenant is not None:
        query = query.where(VENUE.c.organisation_id == principal.tenant)
    if principal.venues is not None:
        query = query.where(RAFFLE.c.venue_id.in_(sorted(principal.venues)))
    with app.engine.connect() as conn:
        rows = conn.execute(query.order_by(RAFFLE.c.created_at_ms)).all()
    out = []
    for r in rows:
        data = _public(r)
        data.pop("organisation_id", None)
        out.append(effective_status(app, data))
    return out


# --- the public list -------------------------------------------------------------------------

#: a raffle's valid gross: POS sales accepted and not voided, and online orders ticketed (paid,
#: tickets allocated, not refunded); the 50/50 jackpot is its share of it
_VALID_ROWS = union_all(
    select(SALE.c.raffle_id, SALE.c.amount_cents).where(
        (SALE.c.kind == "sale") & (SALE.c.status == "accepted") & (SALE.c.voided == false())
    ),
    select(ORDER.c.raffle_id, ORDER.c.amount_cents).where(ORDER.c.state == "ticketed"),
).subquery("valid_sale")
_VALID_GROSS = (
    select(_VALID_ROWS.c.raffle_id, func.sum(_VALID_ROWS.c.amount_cents).label("gross"))
    .group_by(_VALID_ROWS.c.raffle_id)
    .subquery("valid_gross")
)
_PUBLIC_RAFFLES = (
    select(
        RAFFLE.c.id,
        RAFFLE.c.name,
        VENUE.c.name.label("venue"),
        RAFFLE.c.currency,
        RAFFLE.c.price_points,
        RAFFLE.c.sales_open_at_ms,
        RAFFLE.c.sales_close_at_ms,
        RAFFLE.c.status,
        RAFFLE.c.share_percent,
        RAFFLE.c.online_sales,
        RAFFLE.c.draw_method,
        RAFFLE.c.results_url,
        RAFFLE.c.claim_by_ms,
        RAFFLE.c.licence_number,
        RAFFLE.c.jurisdiction,
        func.coalesce(_VALID_GROSS.c.gross, 0).label("gross"),
    )
    .select_from(
        RAFFLE.join(VENUE, RAFFLE.c.venue_id == VENUE.c.id).outerjoin(
            _VALID_GROSS, _VALID_GROSS.c.raffle_id == RAFFLE.c.id
        )
    )
    .where(and_(RAFFLE.c.status.in_(("open", "scheduled")), RAFFLE.c.sales_close_at_ms > bindparam("now")))
    .order_by(RAFFLE.c.sales_close_at_ms, RAFFLE.c.id)
)


def public_raffles(app: Tombola) -> list[dict[str, Any]]:
    """The public list (``GET /raffles``): raffles open or scheduled now, with the jackpot of a
    50/50 raffle (its share of the valid sales: accepted, not voided; rounded down), in one query.
    No personal data: no seller, device, buyer or sale."""
    now = app.now_ms()
    with app.reads.connect() as conn:
        rows = conn.execute(_PUBLIC_RAFFLES, {"now": now}).all()
    out = []
    for r in rows:
        share = int(r.share_percent)
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "venue": r.venue,
                "currency": r.currency,
                "price_points": json.loads(r.price_points),
                "sales_open_at_ms": r.sales_open_at_ms,
                "sales_close_at_ms": r.sales_close_at_ms,
                "status": "open" if now >= r.sales_open_at_ms else "scheduled",
                "fifty_fifty": share > 0,
                "share_percent": share,
                "jackpot_cents": int(r.gross) * share // 100 if share > 0 else None,
                "online_sales": bool(r.online_sales),
                "draw_method": r.draw_method,
                "results_url": r.results_url or None,
                "claim_by_ms": r.claim_by_ms,
                "licence_number": r.licence_number or None,
                "jurisdiction": r.jurisdiction,
            }
        )
    return out


@dataclass(frozen=True)
class Issuer:
    """Who runs the installation's raffles, as receipts print it (``RaffleInfo``)."""

    organisation: str
    licence_number: str
    #: the venue's name (the venue whose devices print the receipts)
    venue_name: str
    #: the public ticket-check page: the server's public URL + ``/check``
    check_url: str


_ISSUER = (
    select(ORG.c.name, ORG.c.licence_number, VENUE.c.name.label("venue_name"))
    .select_from(VENUE.join(ORG, VENUE.c.organisation_id == ORG.c.id))
    .where(VENUE.c.id == bindparam("venue_id"))
)


def issuer(app: Tombola, venue_id: str) -> Issuer:
    """The organisation that owns ``venue_id`` (name, licence) and the ticket-check page: what
    receipts printed at that venue name."""
    with app.engine.connect() as conn:
        row = conn.execute(_ISSUER, {"venue_id": venue_id}).one()
    return Issuer(
        organisation=str(row.name),
        licence_number=str(row.licence_number or ""),
        venue_name=str(row.venue_name),
        check_url=check_url(app),
    )


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
        venue_name=(by.venue_name or None) if by else None,
        licence_number=(raffle.get("licence_number") or (by.licence_number if by else "")) or None,
        results_url=raffle.get("results_url") or None,
        claim_by_ms=raffle.get("claim_by_ms"),
        check_url=by.check_url if by else None,
    )
