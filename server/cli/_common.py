"""Helpers every ``tombola`` command module shares: time parsing and printing, ``--json``, and
``with_app``, which opens the installation's services for a handler and closes them after."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from gli_core.api import acting_as
from server import audit
from server.config import Settings
from server.context import Tombola
from server.errors import InvalidRequest
from sync_protocol.money import format_money

F = TypeVar("F", bound=Callable[..., Any])


def _ms(text: str) -> int:
    """ISO 8601 (naive = UTC) to Unix milliseconds."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{text!r} is not an ISO 8601 time such as 2026-12-31T22:00:00Z") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _emit(obj: Any, as_json: bool, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(obj, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


json_option: Callable[[F], F] = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _cli_actor() -> str:
    """``user:<login>@cli``: who ran the command (the operating-system account)."""
    import getpass
    import re

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return "user:" + (re.sub(r"[^A-Za-z0-9._\-]", "_", login)[:60] or "unknown") + "@cli"


def with_app(fn: F) -> F:
    """Open the installation's services for the handler and close them after."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = Tombola.open(Settings())
        try:
            with acting_as(_cli_actor()):
                return fn(app, *args, **kwargs)
        finally:
            try:
                audit.drain(app)  # the command's business events reach the audit log before it exits
            finally:
                app.close()

    return wrapper  # type: ignore[return-value]


def prices_text(r: dict[str, Any]) -> str:
    """The price points as money, and whether other quantities sell as singles."""
    money = r["currency"]
    points = ", ".join(f"{p['quantity']} for {format_money(p['amount_cents'], money)}" for p in r["price_points"])
    return points + ("; bundles only" if r.get("bundles_only") else "; any other quantity at the single price")
