"""``tombola device``: enrollment codes, revocation, range extension, the device list, its events."""

from __future__ import annotations

import click

from server.cli._common import _emit, _iso, json_option, with_app
from server.context import Tombola
from server.enrollment import service as enrollment
from server.events import service as device_events
from sync_protocol.enrollment_link import enrollment_link
from sync_protocol.messages import EVENT_TYPES


@click.group()
def device() -> None:
    """POS devices."""


@device.command("enroll-code")
@click.option("--venue", "venue_id", required=True)
@click.option(
    "--link",
    "server_url",
    default=None,
    help="The server address devices use: also print the enrollment link (a QR code of it fills a POS's setup).",
)
@click.option(
    "--server-key", default=None, help="With --link: the grant key devices pin (as `tombola init` printed it)."
)
@json_option
@with_app
def device_enroll_code(
    app: Tombola, venue_id: str, server_url: str | None, server_key: str | None, as_json: bool
) -> None:
    """A single-use, expiring enrollment code for a venue."""
    c = enrollment.create_enrollment_code(app, venue_id)
    text = f"{c['code']}  (venue {venue_id}, expires {_iso(c['expires_at_ms'])})"
    if server_url is not None:
        c["link"] = enrollment_link(server_url, c["code"], server_key)
        text += f"\n{c['link']}"
    _emit(c, as_json, text)


@device.command("revoke")
@click.argument("device_id")
@click.option("--reason", required=True, help="Why: lost, stolen, broken... (kept in the audit log).")
@json_option
@with_app
def device_revoke(app: Tombola, device_id: str, reason: str, as_json: bool) -> None:
    """Revoke a device: its syncs are refused and its unsold numbers voided (a second revoke does nothing)."""
    d = enrollment.revoke_device(app, device_id, reason)
    voided = d["voided_grants"]
    numbers = sum(v["unsold"] for v in voided)
    text = (
        f"device {device_id} revoked: {numbers} unsold number(s) of {len(voided)} grant(s) voided"
        if d["revoked_now"]
        else f"device {device_id} was revoked already ({d['revoke_reason']}); nothing changed"
    )
    _emit(d, as_json, text)


@device.command("extend")
@click.argument("device_id")
@click.option("--raffle", "raffle_id", required=True)
@click.option("--numbers", required=True, type=int)
@click.option("--reason", required=True)
@json_option
@with_app
def device_extend(app: Tombola, device_id: str, raffle_id: str, numbers: int, reason: str, as_json: bool) -> None:
    """Extend a device's range at once (delivered on its next sync)."""
    g = enrollment.extend_device(app, device_id, raffle_id, numbers, reason)
    out = g.to_dict() | {"id": g.grant_id}
    _emit(out, as_json, f"grant {g.grant_id}: numbers {g.first_number}-{g.last_number} for {device_id}")


@device.command("list")
@json_option
@with_app
def device_list(app: Tombola, as_json: bool) -> None:
    """List devices."""
    ds = enrollment.list_devices(app)
    _emit(
        ds,
        as_json,
        lambda: (
            "\n".join(
                f"{d['id']}  {d['status']:<8} acked {d['acked_seq']:>6}  "
                f"last sync {_iso(d['last_sync_ms'])}  {d['name']}"
                for d in ds
            )
            or "no devices"
        ),
    )


@device.command("events")
@click.argument("device_id")
@click.option("--since", default=None, help="Only events at or after this ISO 8601 time (server clock).")
@click.option("--type", "event_type", type=click.Choice(EVENT_TYPES), default=None, help="Only events of this type.")
@click.option("--limit", type=click.IntRange(1, device_events.MAX_LIST), default=1000, show_default=True)
@json_option
@with_app
def device_events_list(
    app: Tombola, device_id: str, since: str | None, event_type: str | None, limit: int, as_json: bool
) -> None:
    """A device's significant events (start, sign-in, PIN failures, printer, connection, clock, sync, voids)."""
    rows = device_events.list_events(app, device_id, since=since, type=event_type, limit=limit)

    def text() -> str:
        lines = []
        for e in rows:
            detail = " ".join(f"{k}={v}" for k, v in e["detail"].items())
            seller = f" seller {e['seller_id']}" if e["seller_id"] else ""
            lines.append(f"{_iso(e['occurred_at_ms'])}  #{e['seq']:<6} {e['type']:<20}{seller} {detail}".rstrip())
        return "\n".join(lines) or f"no events of device {device_id}"

    _emit(rows, as_json, text)
