"""``tombola venue``: venues."""

from __future__ import annotations

import click

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola
from server.raffles import service as raffles


@click.group()
def venue() -> None:
    """Venues."""


@venue.command("create")
@click.argument("name")
@json_option
@with_app
def venue_create(app: Tombola, name: str, as_json: bool) -> None:
    """Create a venue."""
    v = raffles.create_venue(app, name)
    _emit(v, as_json, f"venue {v['id']} {v['name']!r}")


@venue.command("list")
@json_option
@with_app
def venue_list(app: Tombola, as_json: bool) -> None:
    """List venues."""
    vs = raffles.list_venues(app)
    _emit(vs, as_json, lambda: "\n".join(f"{v['id']}  {v['name']}" for v in vs) or "no venues")
