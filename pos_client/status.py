"""Device status: what is pending, how long the lease lasts, numbers per raffle, alerts.

Alerts are strings that start with a stable code, then a sentence:

- ``revoked``: the server revoked this device; it may not sell.
- ``offline_lease_expired`` / ``lease_under_1h``: the offline lease ran out / ends within the hour.
- ``sales_closing``: an open raffle closes within the hour.
- ``numbers_80pct_used``: 80 % or more of the numbers granted for an open raffle are used.
- ``rejected_records``: the server rejected records; rejected sales must be refunded.
- ``not_enrolled``: the database has no identity yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pos_client import ledger, wallet
from pos_client.clock import Clock, Reading
from pos_client.ledger import RejectedRecord
from pos_client.store import Store

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RaffleStatus:
    raffle_id: str
    name: str
    status: str
    currency: str
    sales_open_at_ms: int
    sales_close_at_ms: int
    numbers_granted: int
    numbers_used: int
    numbers_left: int


@dataclass(frozen=True)
class Status:
    """A snapshot of the device (``to_dict`` is the CLI's ``--json`` form)."""

    device_id: str | None
    venue_id: str | None
    device_status: str
    server_url: str | None
    pending: int
    acked_seq: int
    last_seq: int
    last_sync_ms: int | None
    lease_left_s: int | None
    server_time_ms: int | None
    raffles: list[RaffleStatus] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(store: Store, clock: Clock) -> Status:
    """The device's status now."""
    state = store.device()
    if state is None or not state.enrolled:
        return Status(
            device_id=None,
            venue_id=None,
            device_status="not_enrolled",
            server_url=None,
            pending=0,
            acked_seq=0,
            last_seq=0,
            last_sync_ms=None,
            lease_left_s=None,
            server_time_ms=None,
            alerts=["not_enrolled: this device is not enrolled"],
        )
    device = state.require_enrolled()
    now = Reading.of(clock)
    elapsed = device.anchor.elapsed_ms(now)
    server_now = device.anchor.server_time_ms + elapsed
    lease_left_ms = device.lease_s * 1000 - elapsed
    lease_left_s = max(0, lease_left_ms // 1000)
    with store.read() as conn:
        counts = wallet.counts_by_raffle(conn)
        infos = wallet.raffles(conn)
        chain = ledger.head(conn)
        pending = ledger.count(conn, after=device.acked_seq)
        rejected = ledger.rejected(conn)
    raffles: list[RaffleStatus] = []
    alerts: list[str] = []
    if device.revoked:
        alerts.append("revoked: the server revoked this device; it may not sell")
    if lease_left_ms <= 0:
        alerts.append("offline_lease_expired: the offline lease ran out; sync before selling")
    elif lease_left_ms < HOUR_MS:
        alerts.append(f"lease_under_1h: the offline lease ends in {lease_left_s // 60} min; sync soon")
    for info in infos:
        number_counts = counts.get(info.raffle_id, wallet.NumberCounts(granted=0, used=0))
        raffles.append(
            RaffleStatus(
                raffle_id=info.raffle_id,
                name=info.name,
                status=info.status,
                currency=info.currency,
                sales_open_at_ms=info.sales_open_at_ms,
                sales_close_at_ms=info.sales_close_at_ms,
                numbers_granted=number_counts.granted,
                numbers_used=number_counts.used,
                numbers_left=number_counts.left,
            )
        )
        selling = info.status in ("open", "scheduled") and server_now < info.sales_close_at_ms
        if not selling:
            continue
        if info.sales_close_at_ms - server_now <= HOUR_MS:
            minutes = (info.sales_close_at_ms - server_now) // 60_000
            alerts.append(f"sales_closing: raffle {info.raffle_id} closes in {minutes} min")
        if info.no_grant:
            alerts.append(f"no_more_numbers: raffle {info.raffle_id}: {wallet.no_grant_advice(info.no_grant)}")
        elif number_counts.granted and number_counts.used * 5 >= number_counts.granted * 4:
            alerts.append(
                f"numbers_80pct_used: raffle {info.raffle_id} has used {number_counts.used} of "
                f"{number_counts.granted} numbers; sync for more"
            )
    if rejected:
        alerts.append(f"rejected_records: the server rejected {len(rejected)} record(s); refund rejected sales")
    return Status(
        device_id=device.device_id,
        venue_id=device.venue_id,
        device_status=device.status,
        server_url=device.server_url,
        pending=pending,
        acked_seq=device.acked_seq,
        last_seq=chain.seq,
        last_sync_ms=device.last_sync_ms,
        lease_left_s=lease_left_s,
        server_time_ms=server_now,
        raffles=raffles,
        rejected=rejected,
        alerts=alerts,
    )
