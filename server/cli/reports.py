"""``tombola report sales|drawing|exceptions|voided-numbers|device-events``: the reports of
:mod:`server.reports.service` (the functions the HTTP routes call) as the system admin, printed as
JSON (``--json``, the HTTP API's body) or CSV (the default, the API's ``format=csv``)."""

from __future__ import annotations

import json
from typing import Any

import click

from server.auth import INSTALLATION_ADMIN
from server.cli._common import with_app
from server.cli.records import report
from server.context import Tombola
from server.reports import service


def _print(rep: dict[str, Any], as_json: bool) -> None:
    click.echo(json.dumps(rep) if as_json else service.to_csv(rep), nl=as_json)


_json = click.option("--json", "as_json", is_flag=True, help="Print JSON (as the API answers) instead of CSV.")
_from = click.option("--from", "since", default=None, help="From this time (ISO 8601, UTC when naive), inclusive.")
_to = click.option("--to", "until", default=None, help="Up to this time (ISO 8601), exclusive.")


@report.command("sales")
@click.option("--group-by", type=click.Choice(service.GROUP_BY), default="raffle", show_default=True)
@click.option("--raffle", default=None, help="Only this raffle.")
@_from
@_to
@_json
@with_app
def report_sales(
    app: Tombola, group_by: str, raffle: str | None, since: str | None, until: str | None, as_json: bool
) -> None:
    """Sales by raffle, venue, device, seller, payment method or hour (voids subtracted)."""
    rep = service.sales(app, INSTALLATION_ADMIN, group_by=group_by, raffle=raffle, since=since, until=until)
    _print(rep, as_json)


@report.command("drawing")
@click.option("--raffle", required=True)
@_json
@with_app
def report_drawing(app: Tombola, raffle: str, as_json: bool) -> None:
    """GLI-31 raffle drawing report."""
    _print(service.drawing(app, INSTALLATION_ADMIN, raffle=raffle), as_json)


@report.command("exceptions")
@click.option("--raffle", default=None)
@_from
@_to
@click.option("--kind", type=click.Choice(service.EXCEPTION_KINDS), default=None, help="Only this exception.")
@_json
@with_app
def report_exceptions(
    app: Tombola, raffle: str | None, since: str | None, until: str | None, kind: str | None, as_json: bool
) -> None:
    """GLI-31 exception report: voids, rejections, extensions, two-person requests, break-glass,
    redraws, revocations and voided remainders (audit events with their log index)."""
    _print(service.exceptions(app, INSTALLATION_ADMIN, raffle=raffle, since=since, until=until, kind=kind), as_json)


@report.command("voided-numbers")
@click.option("--raffle", required=True)
@_json
@with_app
def report_voided_numbers(app: Tombola, raffle: str, as_json: bool) -> None:
    """GLI-31 voided numbers with their verification codes."""
    _print(service.voided_numbers(app, INSTALLATION_ADMIN, raffle=raffle), as_json)


@report.command("device-events")
@click.option("--device", default=None)
@_from
@_to
@click.option("--type", "event_type", default=None)
@click.option("--limit", type=int, default=1000, show_default=True)
@_json
@with_app
def report_device_events(
    app: Tombola,
    device: str | None,
    since: str | None,
    until: str | None,
    event_type: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """GLI-31 5.6.2 device event log, by time, device and type."""
    rep = service.device_event_log(
        app, INSTALLATION_ADMIN, device=device, since=since, until=until, type=event_type, limit=limit
    )
    _print(rep, as_json)
