"""``tombola seller``: the roster of a venue's sellers, who sign in on its devices with a PIN."""

from __future__ import annotations

import sys

import click

from server.cli._common import _emit, _iso, json_option, with_app
from server.context import Tombola
from server.errors import InvalidRequest
from server.sellers import service as sellers


@click.group()
def seller() -> None:
    """Sellers: the roster a venue's devices sign in against, offline."""


@seller.command("add")
@click.option("--venue", "venue_id", required=True, help="The venue whose devices the seller signs in on.")
@click.option("--name", required=True, help="The seller's name, as devices show it.")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN (4 to 8 digits) from standard input.")
@click.option("--supervisor", is_flag=True, help="The seller may authorise voids with their PIN.")
@json_option
@with_app
def seller_add(app: Tombola, venue_id: str, name: str, pin_stdin: bool, supervisor: bool, as_json: bool) -> None:
    """Add a seller; the venue's devices get them (only a hash of the PIN) at their next sync.

    The PIN is read from standard input (first line), never from the command line, so it stays
    out of shell history and process lists: `printf '4821\\n' | tombola seller add ...`.
    """
    if not pin_stdin:
        raise InvalidRequest("give the PIN on standard input with --pin-stdin (never on the command line)", field="pin")
    line = sys.stdin.readline()
    pin = line.rstrip("\r\n")
    if not pin:
        raise InvalidRequest("no PIN on standard input: pipe 4 to 8 digits into --pin-stdin", field="pin")
    s = sellers.add_seller(app, venue_id, name, pin, supervisor=supervisor)
    role = " (supervisor)" if s["supervisor"] else ""
    _emit(s, as_json, f"seller {s['id']} {s['name']!r}{role} at venue {s['venue_id']}; devices get it at next sync")


@seller.command("list")
@click.option("--venue", "venue_id", required=True)
@json_option
@with_app
def seller_list(app: Tombola, venue_id: str, as_json: bool) -> None:
    """List the venue's sellers, active and disabled."""
    ss = sellers.list_sellers(app, venue_id)

    def text() -> str:
        lines = [
            f"{s['id']}  {s['status']:<8} {'supervisor' if s['supervisor'] else 'seller':<10} {s['name']}"
            + (f"  (disabled {_iso(s['disabled_at_ms'])})" if s["disabled_at_ms"] else "")
            for s in ss
        ]
        return "\n".join(lines) or "no sellers"

    _emit(ss, as_json, text)


@seller.command("disable")
@click.argument("seller_id")
@json_option
@with_app
def seller_disable(app: Tombola, seller_id: str, as_json: bool) -> None:
    """Take a seller off the roster; devices drop them at their next sync (idempotent)."""
    s = sellers.disable_seller(app, seller_id)
    _emit(s, as_json, f"seller {s['id']} {s['name']!r} disabled; devices drop them at their next sync")
