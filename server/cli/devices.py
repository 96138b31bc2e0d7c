"""``tombola device``: enrollment codes, revocation, range extension, the device list."""

from __future__ import annotations

import click

from server.cli._common import _emit, _iso, json_option, with_app
from server.context import Tombola
from server.enrollment import service as enrollment


@click.group()
def device() -> None:
    """POS devices."""


@device.command("enroll-code")
@click.option("--venue", "venue_id", required=True)
@json_option
@with_app
def device_enroll_code(app: Tombola, venue_id: str, as_json: bool) -> None:
    """A single-use, expiring enrollment code for a venue."""
    c = enrollment.create_enrollment_code(app, venue_id)
    _emit(c, as_json, f"{c['code']}  (venue {venue_id}, expires {_iso(c['expires_at_ms'])})")


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

