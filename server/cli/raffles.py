"""``tombola raffle``: create, edit, open, close and list raffles; the jurisdiction profiles."""

from __future__ import annotations

from typing import Any

import click

from server import jurisdictions
from server.cli._common import _emit, _iso, _ms, json_option, prices_text, with_app
from server.context import Tombola
from server.errors import InvalidRequest
from server.raffles import service as raffles


def _bundle(text: str) -> tuple[int, int]:
    try:
        q, c = text.split(":")
        return int(q), int(c)
    except ValueError as exc:
        raise InvalidRequest(f"--bundle {text!r} is not QTY:CENTS, e.g. 5:1000") from exc


def _prize(text: str) -> dict[str, Any]:
    try:
        tier, count, kind, value = text.rsplit(":", 3)
        if kind == "fixed":
            return {"tier": tier, "count": int(count), "kind": "fixed", "amount_cents": int(value)}
        if kind == "percent":
            return {"tier": tier, "count": int(count), "kind": "percent_of_sales", "percent": int(value)}
    except ValueError:
        pass
    raise InvalidRequest(f"--prize {text!r} is not TIER:COUNT:fixed:CENTS or TIER:COUNT:percent:P")


@click.group()
def raffle() -> None:
    """Raffles."""


@raffle.command("create")
@click.option("--venue", "venue_id", required=True)
@click.option("--name", required=True)
@click.option("--price-cents", required=True, type=int, help="Price of one ticket.")
@click.option("--numbers", required=True, type=int, help="Size of the raffle's number space.")
@click.option("--closes-at", required=True, help="ISO 8601 time sales close.")
@click.option("--opens-at", default=None, help="ISO 8601 time sales open (default now).")
@click.option("--bundle", "bundles", multiple=True, help="QTY:CENTS price point, repeatable.")
@click.option(
    "--bundles-only",
    is_flag=True,
    help="Sell only the price points (default: any quantity also sells at QTY x the single price).",
)
@click.option(
    "--offline-sales/--no-offline-sales",
    default=True,
    help="Whether devices may sell while they cannot reach the server (default: they may; "
    "--no-offline-sales stops a device's sales as soon as it loses the server, Ontario AGCO POS 1.1.5).",
)
@click.option("--currency", default="USD", help="ISO 4217 code; amounts are in its minor units.")
@click.option("--grant-size", default=None, type=int, help="Numbers per device grant (default 1000).")
@click.option(
    "--prize",
    "prizes",
    multiple=True,
    help="TIER:COUNT:fixed:CENTS or TIER:COUNT:percent:P, repeatable, in draw order "
    "(default: one 50/50 prize of 50% of sales).",
)
@click.option(
    "--licence",
    "licence_number",
    default="",
    help="The raffle's licence number, printed on receipts (default: the organisation's).",
)
@click.option("--results-url", default="", help="Where the results are published (http/https), printed on receipts.")
@click.option("--claim-by", default=None, help="ISO 8601 time prizes must be claimed by, printed on receipts.")
@click.option(
    "--jurisdiction",
    type=click.Choice(sorted(jurisdictions.PROFILES)),
    default=None,
    help="The rule profile of the raffle's licence (default: the organisation's); docs/jurisdictions.md.",
)
@click.option(
    "--online-sales/--no-online-sales",
    default=None,
    help="Also sell tickets online (default: when the jurisdiction allows it).",
)
@click.option(
    "--draw-method",
    type=click.Choice(jurisdictions.DRAW_METHODS),
    default="rng",
    help="rng: the HSM draw; barrel: printed barrel tickets drawn by hand (North Dakota online raffles).",
)
@click.option("--purchase-limit", type=int, default=None, help="Most tickets one customer may buy online.")
@click.option("--rules-text", default="", help="The raffle's rules for players.")
@json_option
@with_app
def raffle_create(
    app: Tombola,
    venue_id: str,
    name: str,
    price_cents: int,
    numbers: int,
    closes_at: str,
    opens_at: str | None,
    bundles: tuple[str, ...],
    bundles_only: bool,
    offline_sales: bool,
    currency: str,
    grant_size: int | None,
    prizes: tuple[str, ...],
    licence_number: str,
    results_url: str,
    claim_by: str | None,
    jurisdiction: str | None,
    online_sales: bool | None,
    draw_method: str,
    purchase_limit: int | None,
    rules_text: str,
    as_json: bool,
) -> None:
    """Create a raffle; sales open at once unless --opens-at is later.

    --licence, --results-url and --claim-by reach the devices, which print them on receipts.
    """
    r = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=venue_id,
            name=name,
            price_cents=price_cents,
            number_space=numbers,
            sales_close_at_ms=_ms(closes_at),
            sales_open_at_ms=_ms(opens_at) if opens_at else None,
            bundles=tuple(_bundle(b) for b in bundles),
            bundles_only=bundles_only,
            offline_sales=offline_sales,
            currency=currency,
            grant_size=grant_size,
            prize_table=tuple(_prize(p) for p in prizes),
            licence_number=licence_number,
            results_url=results_url,
            claim_by_ms=_ms(claim_by) if claim_by else None,
            jurisdiction=jurisdiction,
            online_sales=online_sales,
            draw_method=draw_method,
            purchase_limit=purchase_limit,
            rules_text=rules_text,
        ),
    )
    # What to publish now, before any ticket exists: a draw proof means something only against
    # these (docs/draw-proof.md section 1; tombola verify-draw --nonce-commitment --vrf-fingerprint).
    draw = app.core.draw_status(r["id"])
    published = {
        "nonce_commitment": draw["nonce_commitment"],
        "vrf_fingerprint": draw["vrf"]["fingerprint"],
        "vrf_key_id": draw["vrf"]["key_id"],
    }
    _emit(
        r | {"draw": published},
        as_json,
        f"raffle {r['id']} {r['name']!r} {r['status']}, closes {_iso(r['sales_close_at_ms'])}\n"
        f"  prices: {prices_text(r)}\n"
        f"  publish now: nonce commitment {published['nonce_commitment']}\n"
        f"               VRF key fingerprint {published['vrf_fingerprint']} ({published['vrf_key_id']})\n"
        f"  a draw proof is checked against them: tombola verify-draw PROOF "
        f"--nonce-commitment {published['nonce_commitment']} --vrf-fingerprint {published['vrf_fingerprint']}",
    )


@raffle.command("close")
@click.argument("raffle_id")
@json_option
@with_app
def raffle_close(app: Tombola, raffle_id: str, as_json: bool) -> None:
    """Close sales now."""
    r = raffles.close_raffle(app, raffle_id)
    _emit(r, as_json, f"raffle {r['id']} closed at {_iso(r['sales_close_at_ms'])}")


@raffle.command("edit")
@click.argument("raffle_id")
@click.option("--name", default=None)
@click.option("--price-cents", type=int, default=None, help="Price of one ticket (fixed from the first sale).")
@click.option("--bundle", "bundles", multiple=True, help="QTY:CENTS, repeatable: replaces the bundles.")
@click.option("--no-bundles", is_flag=True, help="Remove every bundle.")
@click.option("--opens-at", default=None, help="ISO 8601 time sales open (only while scheduled).")
@click.option("--closes-at", default=None, help="ISO 8601 time sales close.")
@click.option("--offline-sales/--no-offline-sales", default=None)
@click.option("--online-sales/--no-online-sales", default=None)
@click.option("--draw-method", type=click.Choice(jurisdictions.DRAW_METHODS), default=None)
@click.option("--jurisdiction", type=click.Choice(sorted(jurisdictions.PROFILES)), default=None)
@click.option("--purchase-limit", type=int, default=None)
@click.option("--no-purchase-limit", is_flag=True, help="Remove the purchase limit.")
@click.option("--rules-text", default=None)
@click.option("--licence", "licence_number", default=None)
@click.option("--results-url", default=None)
@click.option("--claim-by", default=None, help="ISO 8601 time prizes must be claimed by.")
@json_option
@with_app
def raffle_edit(
    app: Tombola,
    raffle_id: str,
    name: str | None,
    price_cents: int | None,
    bundles: tuple[str, ...],
    no_bundles: bool,
    opens_at: str | None,
    closes_at: str | None,
    offline_sales: bool | None,
    online_sales: bool | None,
    draw_method: str | None,
    jurisdiction: str | None,
    purchase_limit: int | None,
    no_purchase_limit: bool,
    rules_text: str | None,
    licence_number: str | None,
    results_url: str | None,
    claim_by: str | None,
    as_json: bool,
) -> None:
    """Change a scheduled or open raffle (the same edit as PATCH /admin/raffles/{id}); price,
    bundles and prizes are fixed from the first sale (WAC 230-11-320)."""
    r = raffles.edit_raffle(
        app,
        raffle_id,
        raffles.RaffleEdit(
            name=name,
            price_cents=price_cents,
            bundles=() if no_bundles else (tuple(_bundle(b) for b in bundles) or None),
            sales_open_at_ms=_ms(opens_at) if opens_at else None,
            sales_close_at_ms=_ms(closes_at) if closes_at else None,
            offline_sales=offline_sales,
            online_sales=online_sales,
            draw_method=draw_method,
            jurisdiction=jurisdiction,
            purchase_limit=purchase_limit,
            no_purchase_limit=no_purchase_limit,
            rules_text=rules_text,
            licence_number=licence_number,
            results_url=results_url,
            claim_by_ms=_ms(claim_by) if claim_by else None,
        ),
    )
    _emit(
        r,
        as_json,
        f"raffle {r['id']} {r['name']!r} {r['status']}, closes {_iso(r['sales_close_at_ms'])}\n"
        f"  prices: {prices_text(r)}",
    )


@raffle.command("open")
@click.argument("raffle_id")
@json_option
@with_app
def raffle_open(app: Tombola, raffle_id: str, as_json: bool) -> None:
    """Open the sales of a scheduled raffle now."""
    r = raffles.open_raffle(app, raffle_id)
    _emit(r, as_json, f"raffle {r['id']} open from {_iso(r['sales_open_at_ms'])}")


@raffle.command("jurisdictions")
@json_option
def raffle_jurisdictions(as_json: bool) -> None:
    """The jurisdiction profiles and their rules, with sources (docs/jurisdictions.md)."""
    profiles = jurisdictions.public_list()
    _emit(
        profiles,
        as_json,
        lambda: "\n".join(
            f"{p['name']}: {p['title']}\n"
            + "\n".join(f"  {r['rule']} = {r['value']}  [{r['source']['cite']}]" for r in p["rules"] if r["source"])
            for p in profiles
        ),
    )


@raffle.command("list")
@json_option
@with_app
def raffle_list(app: Tombola, as_json: bool) -> None:
    """List raffles."""
    rs = raffles.list_raffles(app)
    _emit(rs, as_json, lambda: "\n".join(f"{r['id']}  {r['status']:<9} {r['name']}" for r in rs) or "no raffles")
