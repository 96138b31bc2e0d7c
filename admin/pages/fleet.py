"""What the portal shows of POS devices: their check-in age, offline lease, grants, usage and
alerts, for a person's tenant and venues. Reads only: every change goes through a ``server``
service (``server.enrollment.service``, ``server.accounts.approvals``).

Check-in colours follow the commercial fleet consoles (issue 12): green up to 10 minutes since the
device's last contact with the server, amber up to 30, red beyond, always with a text label. A
device's last contact is its last sync, or its enrollment before the first sync.

Grants and usage are read from the draw core through the server's context (``app.core``: the
core's public interface, the same reads the sync's top-up uses; ``admin`` never imports
``gli_core``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from server.auth import Principal
from server.context import Tombola
from server.enrollment import service as enrollment
from server.errors import NotFound
from server.raffles import service as raffles

MINUTE_MS = 60_000
#: check-in age limits (ms): green up to ONLINE_MS, amber up to LATE_MS, red beyond
ONLINE_MS = 10 * MINUTE_MS
LATE_MS = 30 * MINUTE_MS
#: a device is warned about when this much of the numbers of its active grants of a raffle are used
USAGE_ALERT = 0.8
#: a device is warned about when its offline lease ends within this time
LEASE_ALERT_MS = 60 * MINUTE_MS


def age_text(ms: int) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    s = max(0, ms) // 1000
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


@dataclass(frozen=True)
class CheckIn:
    """A device's last contact: ``css`` (``ok``/``warn``/``bad``), a label and the age in words."""

    at_ms: int
    css: str
    label: str
    age: str
    synced: bool

    @property
    def text(self) -> str:
        return f"{self.label} · {'last sync' if self.synced else 'enrolled, never synced'} {self.age} ago"


def check_in(device: dict[str, Any], now_ms: int) -> CheckIn:
    """The colour and label of a device's last contact (its last sync, else its enrollment)."""
    synced = device.get("last_sync_ms") is not None
    at = int(device["last_sync_ms"] if synced else device["enrolled_at_ms"])
    age = now_ms - at
    if device.get("status") == "revoked":
        return CheckIn(at, "bad", "Revoked", age_text(age), synced)
    if age <= ONLINE_MS:
        css, label = "ok", "Online"
    elif age <= LATE_MS:
        css, label = "warn", "Late"
    else:
        css, label = "bad", "Offline"
    return CheckIn(at, css, label, age_text(age), synced)


@dataclass
class RaffleUsage:
    """A device's active grants of one raffle: numbers granted and used (sold or spent)."""

    raffle_id: str
    raffle_name: str
    raffle_status: str
    granted: int
    used: int

    @property
    def percent(self) -> int:
        return 0 if self.granted == 0 else min(100, self.used * 100 // self.granted)

    @property
    def left(self) -> int:
        return max(0, self.granted - self.used)


@dataclass
class GrantRow:
    """One grant of a device, with whether it reached the device (``delivered``)."""

    grant_id: str
    raffle_id: str
    raffle_name: str
    first_number: int
    last_number: int
    size: int
    kind: str
    status: str
    reason: str
    issued_at_ms: int
    delivered: bool


@dataclass
class DeviceView:
    """A device as its pages show it."""

    device: dict[str, Any]
    venue: dict[str, Any]
    check_in: CheckIn
    lease_ends_ms: int
    lease_left_ms: int
    #: records the device announced that the server has not accepted (None: nothing known)
    pending_records: int | None
    usage: list[RaffleUsage] = field(default_factory=list)
    grants: list[GrantRow] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.device["id"])

    @property
    def name(self) -> str:
        return str(self.device["name"] or self.device["id"])

    @property
    def active(self) -> bool:
        return bool(self.device["status"] == "active")

    @property
    def last_contact_ms(self) -> int:
        return self.check_in.at_ms


def visible_venues(app: Tombola, principal: Principal) -> list[dict[str, Any]]:
    """The venues ``principal`` sees, in creation order."""
    return [v for v in raffles.list_venues(app) if principal.sees_venue(str(v["organisation_id"]), str(v["id"]))]


def visible_device(app: Tombola, principal: Principal, device_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device and its venue, or 404 ``not_found`` when it does not exist or is another
    tenant's or venue's (the same answer: nothing tells the two apart)."""
    try:
        device = enrollment.get_device(app, device_id)
    except NotFound:
        raise NotFound(f"no device {device_id}") from None
    venue = raffles.get_venue(app, str(device["venue_id"]))
    if not principal.sees_venue(str(venue["organisation_id"]), str(venue["id"])):
        raise NotFound(f"no device {device_id}")
    return device, venue


def _lease(app: Tombola, device: dict[str, Any], now_ms: int, last_ms: int) -> tuple[int, int]:
    ends = last_ms + app.settings.lease_s * 1000
    return ends, ends - now_ms


def view(
    app: Tombola,
    device: dict[str, Any],
    venue: dict[str, Any],
    *,
    venue_raffles: list[dict[str, Any]] | None = None,
    with_grants: bool = False,
) -> DeviceView:
    """The device's check-in, lease, pending records and usage of its venue's open raffles (and,
    ``with_grants``, every grant it was issued)."""
    now = app.now_ms()
    ci = check_in(device, now)
    ends, left = _lease(app, device, now, ci.at_ms)
    seen, acked = int(device.get("last_seen_seq") or 0), int(device.get("acked_seq") or 0)
    out = DeviceView(device, venue, ci, ends, left, seen - acked if seen > acked else None)
    raffle_list = venue_raffles if venue_raffles is not None else raffles.list_raffles(app, str(venue["id"]))
    by_id = {r["id"]: r for r in raffle_list}
    open_ids = [r["id"] for r in raffle_list if r["status"] == "open"]
    if out.active and open_ids:
        spent = enrollment.rejected_numbers(app, out.id, open_ids)
        for raffle_id, (granted, used) in sorted(app.core.device_usage(out.id, open_ids, spent).items()):
            r = by_id[raffle_id]
            out.usage.append(RaffleUsage(raffle_id, str(r["name"]), str(r["status"]), granted, used))
    if with_grants:
        for g in app.core.grants(device_id=out.id, status=None):
            named = by_id.get(g.grant.raffle_id)
            out.grants.append(
                GrantRow(
                    grant_id=g.grant.grant_id,
                    raffle_id=g.grant.raffle_id,
                    raffle_name=str(named["name"]) if named else g.grant.raffle_id,
                    first_number=g.grant.first_number,
                    last_number=g.grant.last_number,
                    size=g.grant.size,
                    kind=g.kind,
                    status=g.status,
                    reason=g.reason,
                    issued_at_ms=g.grant.issued_at_ms,
                    delivered=delivered(device, g.grant.issued_at_ms),
                )
            )
        out.grants.sort(key=lambda row: (row.issued_at_ms, row.grant_id), reverse=True)
    return out


def delivered(device: dict[str, Any], issued_at_ms: int) -> bool:
    """Whether a grant issued at ``issued_at_ms`` reached the device: every sync's answer carries
    the device's active grants, and enrollment its first ones, so a grant is on the device once
    it synced (or enrolled) at or after the grant was issued."""
    last = device.get("last_sync_ms")
    if last is not None and int(last) >= issued_at_ms:
        return True
    return int(device["enrolled_at_ms"]) >= issued_at_ms


def find_grant(app: Tombola, device_id: str, grant_id: str) -> Any:
    """The core's view of one grant of the device (404 when it is not this device's)."""
    for g in app.core.grants(device_id=device_id, status=None):
        if g.grant.grant_id == grant_id:
            return g
    raise NotFound(f"no grant {grant_id} of device {device_id}")


def fleet(app: Tombola, principal: Principal, venue_id: str | None = None) -> list[DeviceView]:
    """Every device ``principal`` sees (of ``venue_id`` if given), with usage, newest enrolled first."""
    out: list[DeviceView] = []
    for venue in visible_venues(app, principal):
        if venue_id and venue["id"] != venue_id:
            continue
        venue_raffles = raffles.list_raffles(app, str(venue["id"]))
        for device in enrollment.list_devices(app, str(venue["id"])):
            out.append(view(app, device, venue, venue_raffles=venue_raffles))
    out.sort(key=lambda d: (d.device["enrolled_at_ms"], d.id), reverse=True)
    return out


@dataclass(frozen=True)
class Alert:
    """A device that needs someone's attention: ``kind`` (``usage``, ``lease``, ``unsynced``,
    ``printer``), ``level`` (``warn``/``bad``) and a sentence."""

    kind: str
    level: str
    device_id: str
    device_name: str
    text: str


def alerts(app: Tombola, principal: Principal, devices: list[DeviceView]) -> list[Alert]:
    """The dashboard's alerts for ``devices`` (all active, in the principal's scope):

    * ``usage``: past :data:`USAGE_ALERT` of the numbers of its active grants of an open raffle;
    * ``lease``: its offline lease (last contact + ``lease_s``) ends within :data:`LEASE_ALERT_MS`
      or has ended, while it holds numbers of an open raffle;
    * ``unsynced``: it holds a grant of a raffle whose sales closed (draw not frozen yet) and has
      not synced since the close: the draw waits for it (sync, ingest its file or void its remainder);
    * ``printer``: a ``printer.error`` event in the last 24 hours not followed by ``printer.recovered``.
    """
    from server.reports import service as reports

    now = app.now_ms()
    out: list[Alert] = []
    active = [d for d in devices if d.active]
    for d in active:
        for u in d.usage:
            if u.granted and u.used >= USAGE_ALERT * u.granted:
                out.append(
                    Alert(
                        "usage",
                        "bad" if u.left == 0 else "warn",
                        d.id,
                        d.name,
                        f"has used {u.percent}% of its numbers of {u.raffle_name} ({u.left:,} left)",
                    )
                )
        if any(u.left for u in d.usage):
            if d.lease_left_ms <= 0:
                text = f"offline lease ended {age_text(-d.lease_left_ms)} ago: it cannot sell until it syncs"
                out.append(Alert("lease", "bad", d.id, d.name, text))
            elif d.lease_left_ms <= LEASE_ALERT_MS:
                text = f"offline lease ends in {age_text(d.lease_left_ms)}: it must sync before then"
                out.append(Alert("lease", "warn", d.id, d.name, text))
    closed: dict[str, dict[str, Any]] = {}
    for d in active:
        for r in raffles.list_raffles(app, str(d.venue["id"])):
            if r["status"] == "closed":
                closed[r["id"]] = r
    if closed:
        frozen = app.core.frozen_raffles(closed)
        waiting = {rid: r for rid, r in closed.items() if rid not in frozen}
        by_id = {d.id: d for d in active}
        for raffle_id, r in waiting.items():
            holders = sorted({g.grant.device_id for g in app.core.grants(raffle_id=raffle_id, status="active")})
            for holder in (by_id[i] for i in holders if i in by_id):
                last = holder.device.get("last_sync_ms")
                if last is None or int(last) < int(r["sales_close_at_ms"]):
                    text = f"has not synced since sales of {r['name']} closed: the draw waits for it"
                    out.append(Alert("unsynced", "bad", holder.id, holder.name, text))
    if active:
        since = _iso(now - 24 * 3_600_000)
        log = reports.device_event_log(app, principal, since=since, limit=10_000)
        last_printer: dict[str, dict[str, Any]] = {}
        for row in log["rows"]:
            if row["type"] in ("printer.error", "printer.recovered"):
                last_printer[row["device_id"]] = row
        names = {d.id: d.name for d in active}
        for device_id, row in sorted(last_printer.items()):
            if row["type"] == "printer.error" and device_id in names:
                reason = detail_text(row["detail"])
                text = f"printer error at {row['at'].replace('T', ' ').replace('Z', ' UTC')}"
                out.append(
                    Alert("printer", "warn", device_id, names[device_id], text + (f": {reason}" if reason else ""))
                )
    order = {"bad": 0, "warn": 1}
    out.sort(key=lambda a: (order[a.level], a.kind, a.device_name))
    return out


def detail_text(detail: Any) -> str:
    """An event's ``detail`` (a dict, or its JSON text) as ``key: value, ...``."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return str(detail[:200])
    if not isinstance(detail, dict):
        return ""
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(detail.items()))


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
