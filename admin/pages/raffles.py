"""Raffle pages of the portal: list, create, edit, open, close, cancel, and the jurisdiction
profile's rules with their sources (``docs/portal.md``, "Raffles and draws").

Every change goes through the raffle management API's own functions
(:mod:`server.raffles.endpoints`: ``create_raffle``, ``edit_raffle``, ``open_raffle``,
``close_raffle``, ``cancel_raffle``), which check the venue or raffle against the principal
(another tenant's or venue's raffle: 404) and call :mod:`server.raffles.service`; a form is first
turned into the API's body model (``AdminRaffleCreate``, ``RaffleEditBody``), so the bounds are
the API's. Who may do what is the API's rule: system admins and business admins create, edit and
cancel; venue managers also read, open and close the raffles of their venues.

A refusal (``terms_fixed_after_sale``, ``jurisdiction_rule``, ``invalid_request``...) is shown as
its sentence and code beside the field it names (``field``; a jurisdiction rule's ``rule``),
with the values as typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from admin.menu import MENU, MenuEntry
from admin.web import PORTAL, CheckedForm, Portal, Response303, app_of, redirect, render, require_portal_role
from server import jurisdictions
from server.raffles import endpoints as api
from server.raffles import service as raffles
from sync_protocol.bounds import NO_NUL
from sync_protocol.errors import TombolaError
from sync_protocol.money import MINOR_UNITS, format_money

router = APIRouter(prefix=PORTAL, tags=["portal"], include_in_schema=False)

MANAGERS = api.MANAGERS
FLOOR = api.FLOOR
Manager = Annotated[Portal, Depends(require_portal_role(*MANAGERS))]
Floor = Annotated[Portal, Depends(require_portal_role(*FLOOR))]
RaffleId = Annotated[str, PathParam(max_length=64, pattern=NO_NUL)]

MENU.append(MenuEntry("Raffles", f"{PORTAL}/raffle-list", FLOOR, order=10))

#: bundle and prize rows a form offers beyond those the raffle has
SPARE_ROWS = 2
#: a text field is read up to this many characters (the API's bounds refuse longer ones)
FIELD_MAX = 20_100

#: service and API field names -> the form field that shows their refusal
_FIELD_OF = {
    "price_cents": "price",
    "price_points": "price",
    "number_space": "numbers",
    "sales_open_at_ms": "opens_at",
    "opens_at_ms": "opens_at",
    "sales_close_at_ms": "closes_at",
    "closes_at_ms": "closes_at",
    "claim_by_ms": "claim_by",
    "prize_table": "prizes",
    "status": "",
}
#: a jurisdiction rule -> the form field that breaks it
_RULE_FIELD = {
    "online_sales": "online_sales",
    "rng_draw_for_online": "draw_method",
    "online_fifty_fifty": "online_sales",
    "offline_pos": "offline_sales",
    "max_bundle_levels": "bundles",
}
STATUS_CLASS = {"open": "status-ok", "scheduled": "status-warn", "closed": "status-neutral", "cancelled": "status-bad"}


# --- reading a form ----------------------------------------------------------------------------


class FieldError(Exception):
    """A value of the form that cannot be read (before any rule is asked)."""

    def __init__(self, name: str, sentence: str) -> None:
        super().__init__(sentence)
        self.name = name
        self.sentence = sentence


@dataclass
class Problems:
    """What to show beside each field: ``{field: (code, sentence)}``; ``""`` is the form's own."""

    by_field: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, name: str, code: str, sentence: str) -> None:
        self.by_field.setdefault(name, (code, sentence))

    def __bool__(self) -> bool:
        return bool(self.by_field)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:FIELD_MAX].strip() if isinstance(value, str) else ""


def _values(form: FormData) -> dict[str, str]:
    return {k: v[:FIELD_MAX] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def to_minor(text: str, currency: str, name: str) -> int:
    """``"5.00"`` of ``currency`` in its minor units (500); refused when not an amount of it."""
    digits = MINOR_UNITS.get(currency, 2)
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise FieldError(
            name, f"Give an amount of {currency} like {from_minor(1250 * 10 ** max(0, digits - 2), currency)}."
        ) from None
    minor = amount * 10**digits
    if not amount.is_finite() or minor != minor.to_integral_value():
        raise FieldError(name, f"An amount of {currency} has at most {digits} digits after the point.")
    if minor < 0:
        raise FieldError(name, "An amount is not negative.")
    return int(minor)


def from_minor(minor: int | None, currency: str) -> str:
    """Minor units as typed in a form (``5.00``)."""
    if minor is None:
        return ""
    return format_money(minor, currency).rsplit(" ", 1)[0]


def to_ms(text: str, name: str) -> int | None:
    """A ``datetime-local`` value (``2026-12-24T18:00``, UTC) in ms; empty: None."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(name, "Give a date and time like 2026-12-24 18:00 (UTC).") from None
    return int(when.replace(tzinfo=UTC).timestamp() * 1000) if when.tzinfo is None else int(when.timestamp() * 1000)


def from_ms(ms: int | None) -> str:
    """Ms as a ``datetime-local`` value in UTC, to the minute."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def _int(text: str, name: str, what: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise FieldError(name, f"{what} is a whole number.") from None


def _bundles(form: FormData, currency: str) -> list[tuple[int, int]]:
    out = []
    for i in range(100):
        qty, price = _text(form, f"bundle_qty_{i}"), _text(form, f"bundle_price_{i}")
        if f"bundle_qty_{i}" not in form:
            break
        if not qty and not price:
            continue
        if not qty or not price:
            raise FieldError("bundles", f"Bundle row {i + 1} needs both a number of tickets and a price.")
        quantity = _int(qty, "bundles", f"The number of tickets of bundle row {i + 1}")
        assert quantity is not None
        out.append((quantity, to_minor(price, currency, "bundles")))
    return out


def _prizes(form: FormData, currency: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(100):
        if f"prize_tier_{i}" not in form:
            break
        tier, count, kind, value = (_text(form, f"prize_{k}_{i}") for k in ("tier", "count", "kind", "value"))
        if not tier and not value:
            continue
        if not tier or not value:
            raise FieldError("prizes", f"Prize row {i + 1} needs a name and an amount or a percentage.")
        row: dict[str, Any] = {"tier": tier, "count": _int(count or "1", "prizes", f"The count of prize row {i + 1}")}
        if kind == "percent_of_sales":
            row |= {
                "kind": kind,
                "percent": _int(value.rstrip("%").strip(), "prizes", f"The percentage of row {i + 1}"),
            }
        else:
            row |= {"kind": "fixed", "amount_cents": to_minor(value, currency, "prizes")}
        out.append(row)
    return out


def _online(text: str) -> bool | None:
    return {"yes": True, "no": False}.get(text)


def _pydantic_problems(exc: ValidationError, problems: Problems) -> None:
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = loc[0] if loc else ""
        sentence = err["msg"]
        problems.add(_form_field(name), "invalid_request", f"{name.replace('_', ' ')}: {sentence}.")


def _form_field(name: str) -> str:
    return _FIELD_OF.get(name, name)


def _refusal_problems(exc: TombolaError, values: dict[str, str], problems: Problems) -> None:
    """Where the service's refusal goes on the form."""
    name = str(exc.extra.get("field") or "")
    if exc.code == "jurisdiction_rule":
        rule = str(exc.extra.get("rule") or "")
        name = _RULE_FIELD.get(rule, "")
        if rule == "receipt_fields":
            name = next(
                (f for f in ("licence_number", "claim_by", "results_url") if not values.get(f)), "licence_number"
            )
    problems.add(_form_field(name), exc.code, exc.detail[:1].upper() + exc.detail[1:])


# --- pages -------------------------------------------------------------------------------------


def _venues(request: Request, portal: Portal) -> list[dict[str, Any]]:
    p = portal.principal
    return [v for v in raffles.list_venues(app_of(request)) if p.sees_venue(str(v["organisation_id"]), str(v["id"]))]


def _venue_names(request: Request) -> dict[str, str]:
    return {str(v["id"]): str(v["name"]) for v in raffles.list_venues(app_of(request))}


def visible_raffle(request: Request, portal: Portal, raffle_id: str) -> dict[str, Any]:
    """The raffle if ``portal``'s person may see it (404 ``not_found`` otherwise, as if none)."""
    app = app_of(request)
    raffles.require_visible_raffle(app, portal.principal, raffle_id)
    return raffles.get_raffle(app, raffle_id)


def profile_rules(profile: jurisdictions.Profile) -> list[dict[str, Any]]:
    """The profile's rules as the page shows them: each with what it allows here and its source."""
    out = []
    for rule in profile.to_dict()["rules"]:
        value = rule["value"]
        if isinstance(value, bool):
            shown = "Allowed" if value else "Not allowed"
        elif rule["rule"] == "max_bundle_levels":
            shown = "No limit" if value is None else f"At most {value}"
        elif rule["rule"] == "receipt_fields":
            shown = ", ".join(RECEIPT_LABELS.get(f, f) for f in value) if value else "None beyond Tombola's own"
        elif rule["rule"] == "min_rng_gross_cents":
            shown = "Any" if not value else f"{int(value) / 100:,.2f} in the raffle's currency"
        else:
            shown = str(value)
        out.append(rule | {"shown": shown, "restricted": rule["source"] is not None})
    return out


RECEIPT_LABELS = {"licence_number": "licence number", "results_url": "results URL", "claim_by_ms": "claim deadline"}


@router.get("/raffle-list", response_class=HTMLResponse, response_model=None)
def raffle_list(request: Request, portal: Floor) -> HTMLResponse:
    """The raffles this person may see: status, sales window, price, number space."""
    rows = raffles.list_visible_raffles(app_of(request), portal.principal)
    rows.sort(key=lambda r: (r["status"] not in ("open", "scheduled"), -r["created_at_ms"]))
    return render(
        request,
        "raffles/list.html",
        title="Raffles",
        raffles=rows,
        venues=_venue_names(request),
        may_manage=portal.role in MANAGERS,
        status_class=STATUS_CLASS,
    )


def _form_page(
    request: Request,
    portal: Portal,
    *,
    raffle: dict[str, Any] | None,
    values: dict[str, str],
    problems: Problems,
    status_code: int = 200,
) -> HTMLResponse:
    app = app_of(request)
    currency = raffle["currency"] if raffle else values.get("currency") or "USD"
    bundle_rows = max(3, sum(1 for k in values if k.startswith("bundle_qty_"))) if values else 3
    prize_rows = max(1, sum(1 for k in values if k.startswith("prize_tier_")))
    sold = bool(raffle) and raffles.has_sales(app, raffle["id"]) if raffle else False
    return render(
        request,
        "raffles/form.html",
        status_code=status_code,
        title=f"Edit {raffle['name']}" if raffle else "New raffle",
        raffle=raffle,
        v=values,
        problems=problems.by_field,
        venues=_venues(request, portal),
        profiles=[p | {"rules": profile_rules(jurisdictions.PROFILES[p["name"]])} for p in jurisdictions.public_list()],
        currency=currency,
        bundle_rows=bundle_rows,
        prize_rows=prize_rows,
        sold=sold,
        share=raffles.share_percent(raffle["prize_table"]) if raffle else None,
        venue_name=_venue_names(request).get(raffle["venue_id"], raffle["venue_id"]) if raffle else "",
    )


def _values_of(raffle: dict[str, Any]) -> dict[str, str]:
    """A raffle as its edit form's values."""
    cur = raffle["currency"]
    v = {
        "name": raffle["name"],
        "price": from_minor(next(p["amount_cents"] for p in raffle["price_points"] if p["quantity"] == 1), cur),
        "bundles_only": "on" if raffle["bundles_only"] else "",
        "opens_at": from_ms(raffle["sales_open_at_ms"]),
        "closes_at": from_ms(raffle["sales_close_at_ms"]),
        "offline_sales": "on" if raffle["offline_sales"] else "",
        "online_sales": "yes" if raffle["online_sales"] else "no",
        "draw_method": raffle["draw_method"],
        "jurisdiction": raffle["jurisdiction"],
        "purchase_limit": "" if raffle["purchase_limit"] is None else str(raffle["purchase_limit"]),
        "licence_number": raffle["licence_number"],
        "results_url": raffle["results_url"],
        "claim_by": from_ms(raffle["claim_by_ms"]),
        "rules_text": raffle["rules_text"],
    }
    bundles = [p for p in raffle["price_points"] if p["quantity"] != 1]
    for i in range(len(bundles) + SPARE_ROWS):
        b = bundles[i] if i < len(bundles) else None
        v[f"bundle_qty_{i}"] = str(b["quantity"]) if b else ""
        v[f"bundle_price_{i}"] = from_minor(b["amount_cents"], cur) if b else ""
    return v


def _blank_values(request: Request, portal: Portal) -> dict[str, str]:
    venues = _venues(request, portal)
    v = {
        "venue_id": str(venues[0]["id"]) if len(venues) == 1 else "",
        "currency": "USD",
        "offline_sales": "on",
        "online_sales": "",
        "draw_method": "rng",
        "jurisdiction": "",
        "prize_tier_0": "50/50",
        "prize_count_0": "1",
        "prize_kind_0": "percent_of_sales",
        "prize_value_0": "50",
    }
    for i in range(3):
        v |= {f"bundle_qty_{i}": "", f"bundle_price_{i}": ""}
    for i in range(1, 1 + SPARE_ROWS):
        v |= {f"prize_tier_{i}": "", f"prize_count_{i}": "1", f"prize_kind_{i}": "fixed", f"prize_value_{i}": ""}
    return v


@router.get("/raffle/new", response_class=HTMLResponse, response_model=None)
def new_raffle_form(request: Request, portal: Manager) -> HTMLResponse:
    return _form_page(request, portal, raffle=None, values=_blank_values(request, portal), problems=Problems())


@router.post("/raffle/new", response_class=HTMLResponse, response_model=None)
def create_raffle(request: Request, form: CheckedForm, portal: Manager) -> HTMLResponse | Response303:
    """Create a raffle through the API's own function (``POST /admin/raffles``)."""
    values, problems = _values(form), Problems()
    currency = (_text(form, "currency") or "USD").upper()
    body: dict[str, Any] = {}
    try:
        body = {
            "venue_id": _text(form, "venue_id"),
            "name": _text(form, "name"),
            "price_cents": to_minor(_text(form, "price") or "x", currency, "price"),
            "numbers": _int(_text(form, "numbers"), "numbers", "The number space") or 0,
            "closes_at_ms": to_ms(_text(form, "closes_at"), "closes_at"),
            "opens_at_ms": to_ms(_text(form, "opens_at"), "opens_at"),
            "bundles": _bundles(form, currency),
            "bundles_only": bool(form.get("bundles_only")),
            "offline_sales": bool(form.get("offline_sales")),
            "online_sales": _online(_text(form, "online_sales")),
            "currency": currency,
            "prize_table": _prizes(form, currency),
            "draw_method": _text(form, "draw_method") or "rng",
            "jurisdiction": _text(form, "jurisdiction") or None,
            "purchase_limit": _int(_text(form, "purchase_limit"), "purchase_limit", "The purchase limit"),
            "rules_text": _text(form, "rules_text"),
            "licence_number": _text(form, "licence_number"),
            "results_url": _text(form, "results_url"),
            "claim_by_ms": to_ms(_text(form, "claim_by"), "claim_by"),
        }
        if body["closes_at_ms"] is None:
            raise FieldError("closes_at", "Give the time sales close.")
        made = api.create_raffle(api.AdminRaffleCreate.model_validate(body), app_of(request), portal.principal)
    except FieldError as exc:
        problems.add(exc.name, "invalid_request", exc.sentence)
    except ValidationError as exc:
        _pydantic_problems(exc, problems)
    except TombolaError as exc:
        if exc.code == "not_found":
            raise
        _refusal_problems(exc, values, problems)
    if problems:
        return _form_page(request, portal, raffle=None, values=values, problems=problems, status_code=422)
    return redirect(request, f"{PORTAL}/raffle/{made['id']}", flash_text=f"Raffle {made['name']} created.")


@router.get("/raffle/{raffle_id}", response_class=HTMLResponse, response_model=None)
def raffle_page(request: Request, raffle_id: RaffleId, portal: Floor) -> HTMLResponse:
    """One raffle: its terms, prize table, jurisdiction profile's rules, and what may be done now."""
    raffle = visible_raffle(request, portal, raffle_id)
    app = app_of(request)
    profile = jurisdictions.profile_of(app, raffle_id)
    return render(
        request,
        "raffles/raffle.html",
        title=raffle["name"],
        r=raffle,
        venue=_venue_names(request).get(raffle["venue_id"], raffle["venue_id"]),
        profile=profile,
        rules=profile_rules(profile),
        sold=raffles.has_sales(app, raffle_id),
        share=raffles.share_percent(raffle["prize_table"]),
        may_manage=portal.role in MANAGERS,
        status_class=STATUS_CLASS,
        receipt_labels=RECEIPT_LABELS,
    )


@router.get("/raffle/{raffle_id}/edit", response_class=HTMLResponse, response_model=None)
def edit_form(request: Request, raffle_id: RaffleId, portal: Manager) -> HTMLResponse:
    raffle = visible_raffle(request, portal, raffle_id)
    return _form_page(request, portal, raffle=raffle, values=_values_of(raffle), problems=Problems())


def _edit_body(form: FormData, raffle: dict[str, Any]) -> dict[str, Any]:
    """The members of ``PATCH /admin/raffles/{id}`` the form changes (times compared to the
    minute, as the form shows them; an emptied claim deadline is left as it is)."""
    cur = raffle["currency"]
    now = _values_of(raffle)
    body: dict[str, Any] = {}
    if _text(form, "name") != raffle["name"]:
        body["name"] = _text(form, "name")
    price = to_minor(_text(form, "price") or "x", cur, "price")
    bundles = _bundles(form, cur)
    if price != to_minor(now["price"], cur, "price") or sorted(bundles) != sorted(
        (p["quantity"], p["amount_cents"]) for p in raffle["price_points"] if p["quantity"] != 1
    ):
        body["price_cents"], body["bundles"] = price, bundles
    flags = {"bundles_only": bool(form.get("bundles_only")), "offline_sales": bool(form.get("offline_sales"))}
    body |= {k: on for k, on in flags.items() if on != raffle[k]}
    online = _online(_text(form, "online_sales"))
    if online is not None and online != raffle["online_sales"]:
        body["online_sales"] = online
    for name in ("draw_method", "jurisdiction", "licence_number", "results_url", "rules_text"):
        if _text(form, name) != now[name].strip():
            body[name] = _text(form, name)
    limit = _int(_text(form, "purchase_limit"), "purchase_limit", "The purchase limit")
    if limit != raffle["purchase_limit"]:
        body["purchase_limit"] = limit
    for name, key in (("opens_at", "opens_at_ms"), ("closes_at", "closes_at_ms"), ("claim_by", "claim_by_ms")):
        if _text(form, name) and _text(form, name) != now[name]:
            body[key] = to_ms(_text(form, name), name)
    return body


@router.post("/raffle/{raffle_id}/edit", response_class=HTMLResponse, response_model=None)
def edit_raffle(
    request: Request, raffle_id: RaffleId, form: CheckedForm, portal: Manager
) -> HTMLResponse | Response303:
    """Change the raffle through the API's own function (``PATCH /admin/raffles/{id}``)."""
    raffle = visible_raffle(request, portal, raffle_id)
    values, problems = _values(form), Problems()
    try:
        body = _edit_body(form, raffle)
        if not body:
            return redirect(request, f"{PORTAL}/raffle/{raffle_id}", flash_text="Nothing changed.", kind="info")
        api.edit_raffle(raffle_id, api.RaffleEditBody.model_validate(body), app_of(request), portal.principal)
    except FieldError as exc:
        problems.add(exc.name, "invalid_request", exc.sentence)
    except ValidationError as exc:
        _pydantic_problems(exc, problems)
    except TombolaError as exc:
        if exc.code == "not_found":
            raise
        _refusal_problems(exc, values, problems)
    if problems:
        code = next(iter(problems.by_field.values()))[0]
        status = 409 if code in ("terms_fixed_after_sale", "raffle_field_fixed") else 422
        return _form_page(request, portal, raffle=raffle, values=values, problems=problems, status_code=status)
    return redirect(request, f"{PORTAL}/raffle/{raffle_id}", flash_text="Raffle saved.")


@router.post("/raffle/{raffle_id}/open", response_model=None)
def open_raffle(request: Request, raffle_id: RaffleId, _form: CheckedForm, portal: Floor) -> Response303:
    """Open the sales of a scheduled raffle now (``POST /admin/raffles/{id}/open``)."""
    done = api.open_raffle(raffle_id, app_of(request), portal.principal)
    return redirect(request, f"{PORTAL}/raffle/{raffle_id}", flash_text=f"Sales of {done['name']} are open.")


@router.post("/raffle/{raffle_id}/close", response_model=None)
def close_raffle(request: Request, raffle_id: RaffleId, _form: CheckedForm, portal: Floor) -> Response303:
    """Close sales now (``POST /admin/raffles/{id}/close``); the draw page is next."""
    done = api.close_raffle(raffle_id, app_of(request), portal.principal)
    return redirect(
        request,
        f"{PORTAL}/raffle/{raffle_id}",
        flash_text=f"Sales of {done['name']} are closed. Every device that holds numbers must sync before the draw.",
    )


@router.get("/raffle/{raffle_id}/cancel", response_class=HTMLResponse, response_model=None)
def cancel_form(request: Request, raffle_id: RaffleId, portal: Manager) -> HTMLResponse:
    raffle = visible_raffle(request, portal, raffle_id)
    return _cancel_page(request, raffle, reason="", problems=Problems())


def _cancel_page(
    request: Request, raffle: dict[str, Any], *, reason: str, problems: Problems, status_code: int = 200
) -> HTMLResponse:
    counts = app_of(request).core.count_tickets(raffle["id"])
    return render(
        request,
        "raffles/cancel.html",
        status_code=status_code,
        title=f"Cancel {raffle['name']}",
        r=raffle,
        reason=reason,
        problems=problems.by_field,
        tickets=sum(counts.values()),
    )


@router.post("/raffle/{raffle_id}/cancel", response_class=HTMLResponse, response_model=None)
def cancel_raffle(
    request: Request, raffle_id: RaffleId, form: CheckedForm, portal: Manager
) -> HTMLResponse | Response303:
    """Cancel with a reason, once confirmed (``POST /admin/raffles/{id}/cancel``)."""
    raffle = visible_raffle(request, portal, raffle_id)
    reason, problems = _text(form, "reason")[:500], Problems()
    if not reason:
        problems.add("reason", "invalid_request", "Give the reason for cancelling; it goes into the audit log.")
    if form.get("confirm") != "yes":
        problems.add("confirm", "confirmation_needed", "Tick the box to confirm that this raffle ends for good.")
    if not problems:
        try:
            api.cancel_raffle(raffle_id, api.CancelBody(reason=reason), app_of(request), portal.principal)
        except ValidationError as exc:
            _pydantic_problems(exc, problems)
        except TombolaError as exc:
            if exc.code == "not_found":
                raise
            problems.add(str(exc.extra.get("field") or ""), exc.code, exc.detail[:1].upper() + exc.detail[1:])
    if problems:
        return _cancel_page(request, raffle, reason=reason, problems=problems, status_code=422)
    return redirect(request, f"{PORTAL}/raffle/{raffle_id}", flash_text=f"{raffle['name']} is cancelled.")
