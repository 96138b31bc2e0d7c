"""Delta sync ingest: validate a device's batch, put its tickets on record in the core, and
acknowledge it, all or nothing.

Order of writes (see ``docs/adr/0002-two-databases.md``): the device row is locked in the
business database first; the tickets are recorded in the core (one core transaction,
idempotent per sale id); then the sales and the device's new head are committed in the
business database. A crash between the two commits leaves tickets the business side has not
acknowledged; the device re-sends, the core sees the same sale ids and records nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from dbkit import bulk_insert_rows
from gli_core.api import TicketSale, acting_as
from gli_core.errors import NumberTaken
from server import audit
from server.context import Tombola
from server.enrollment.service import ANCHOR, DEVICE, ensure_grants, record_anchor, require_active_device
from server.events.service import apply_events
from server.models import Sale
from server.raffles.service import issuer, list_raffles, raffle_info
from server.sellers.service import roster
from server.sync.rules import BatchContext, KnownSale, RaffleTerms, judge
from sync_protocol.chain import verify_chain
from sync_protocol.errors import (
    BrokenChain,
    DeviceMismatch,
    Malformed,
    SaleIdReused,
    SaleRejected,
    SequenceGap,
    TicketSetFrozen,
    TombolaError,
)
from sync_protocol.messages import RejectedRecord, SaleRecord, SyncAck, SyncBatch, VoidRecord
from sync_protocol.signing import b64u_decode
from sync_protocol.version import EVENTS_VERSION

log = logging.getLogger("tombola.sync")

SALE = Sale.__table__  # type: ignore[attr-defined]

# The statements of every sync, built once (building one costs more CPU than running it).
_LOCK_DEVICE = select(DEVICE).where(DEVICE.c.id == bindparam("device_id")).with_for_update()
_ANCHORS_AMONG = select(ANCHOR.c.anchor_ms).where(
    (ANCHOR.c.device_id == bindparam("device_id")) & ANCHOR.c.anchor_ms.in_(bindparam("anchors", expanding=True))
)
_MOVE_DEVICE = update(DEVICE).where(DEVICE.c.id == bindparam("device_id_"))


@dataclass
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)
    acked_seq: int = 0
    head_hash: str = ""
    #: the device's venue and its raffles as the batch was judged (the ack reuses them)
    venue_id: str = ""
    raffles: list[dict[str, Any]] | None = None
    #: the server time handed to the device with this acknowledgement (recorded as an anchor)
    anchor_ms: int = 0
    #: the device's event chain as held after the batch (acked seq, head hash), when it carried events
    events_head: tuple[int, str] | None = None


#: the ``sale`` columns :func:`_sale_row` fills, in its order
SALE_COLUMNS = (
    "id",
    "device_id",
    "seq",
    "kind",
    "raffle_id",
    "seller_id",
    "device_time_ms",
    "anchor_ms",
    "elapsed_ms",
    "prev_hash",
    "hash",
    "status",
    "reject_code",
    "reject_detail",
    "source",
    "received_at_ms",
    "numbers",
    "quantity",
    "amount_cents",
    "currency",
    "payment_method",
    "payment_reference",
    "voids_sale_id",
    "void_reason",
    "voided",
)


def _sale_row(
    record: SaleRecord | VoidRecord, *, source: str, now: int, rejection: SaleRejected | None
) -> tuple[Any, ...]:
    """The ``sale`` row of a record (values of :data:`SALE_COLUMNS`), accepted or rejected."""
    head = (
        record.sale_id,
        record.device_id,
        record.seq,
        record.kind,
        record.raffle_id,
        record.seller_id,
        record.device_time_ms,
        record.anchor_ms,
        record.elapsed_ms,
        record.prev_hash,
        record.hash,
        "rejected" if rejection else "accepted",
        rejection.code if rejection else "",
        rejection.detail[:500] if rejection else "",
        source,
        now,
    )
    if isinstance(record, SaleRecord):
        return (
            *head,
            "[" + ", ".join(map(str, record.numbers)) + "]",  # json.dumps of a list of ints, faster
            len(record.numbers),
            record.amount_cents,
            record.currency.upper(),
            record.payment.method,
            record.payment.reference or "",
            "",
            "",
            False,
        )
    return (*head, "[]", 0, 0, "", "", "", record.voids, record.reason[:500], False)


def _context(
    app: Tombola,
    conn: Any,
    device: dict[str, Any],
    records: Sequence[SaleRecord | VoidRecord],
    now: int,
    venue_raffles: list[dict[str, Any]],
    *,
    careful: bool,
) -> BatchContext:
    # Judged on the very terms the devices are sent (RaffleInfo), through the rules they apply.
    raffles = {r["id"]: RaffleTerms.of(raffle_info(r)) for r in venue_raffles}
    # The numbers on record are looked up when a first attempt met one (UNIQUE(raffle_id, number)
    # is the guard either way); a batch's own repeats are caught by the rules as they go.
    by_raffle: dict[str, list[int]] = {}
    if careful:
        for r in records:
            if isinstance(r, SaleRecord):
                by_raffle.setdefault(r.raffle_id, []).extend(r.numbers)
    grants, taken = app.core.batch_view(device["id"], by_raffle)
    wanted_anchors = sorted({r.anchor_ms for r in records})
    anchors = set(conn.execute(_ANCHORS_AMONG, {"device_id": device["id"], "anchors": wanted_anchors}).scalars())
    ctx = BatchContext(
        device_id=device["id"],
        now_ms=now,
        skew_ms=app.settings.clock_skew_ms,
        lease_s=app.settings.lease_s,
        raffles=raffles,
        grants=grants,
        anchors=anchors,
        frozen=app.core.frozen_raffles({r.raffle_id for r in records}) if careful else set(),
        taken=taken,
    )
    targets = sorted({r.voids for r in records if isinstance(r, VoidRecord)})
    if targets:
        for row in conn.execute(
            select(SALE.c.id, SALE.c.device_id, SALE.c.raffle_id, SALE.c.status, SALE.c.voided).where(
                SALE.c.id.in_(targets)
            )
        ):
            ctx.sales[row.id] = KnownSale(row.device_id, row.raffle_id, row.status == "accepted", bool(row.voided))
    return ctx


_SALE_IDS_HELD = select(SALE.c.id).where(SALE.c.id.in_(bindparam("ids", expanding=True)))


def _refuse_reused_ids(conn: Any, records: Sequence[SaleRecord | VoidRecord], *, look_up: bool) -> None:
    """Refuse the batch if a record reuses the sale id of an earlier one of the batch, or (with
    ``look_up``) of a record the server holds (accepted or rejected)."""

    def reused(r: SaleRecord | VoidRecord, whose: str) -> SaleIdReused:
        return SaleIdReused(f"record {r.seq} reuses the sale id {r.sale_id} of {whose}", seq=r.seq, sale_id=r.sale_id)

    seen: set[str] = set()
    for r in records:
        if r.sale_id in seen:
            raise reused(r, "an earlier record of the batch")
        seen.add(r.sale_id)
    if look_up:
        held = set(conn.execute(_SALE_IDS_HELD, {"ids": sorted(seen)}).scalars())
        for r in records:
            if r.sale_id in held:
                raise reused(r, "a record the server holds")


class _LookCloser(Exception):
    """A write met what the first, quick judging does not look up (a frozen ticket set, a number or
    sale id on record already): nothing was written; judge the batch again with the lookups."""

    def __init__(self, cause: TombolaError) -> None:
        super().__init__(cause.detail)
        self.cause = cause


def apply_batch(
    app: Tombola,
    batch: SyncBatch,
    *,
    source: str = "sync",
    verify_signature: bool = True,
    accept_rejections: bool = False,
    allow_revoked: bool = False,
) -> BatchOutcome:
    """Validate and apply one batch in one go; raise a :class:`TombolaError` and write nothing on failure.

    ``accept_rejections`` (file ingest) records every record breaking a business rule as
    rejected; otherwise only those the device listed in ``batch.rejected`` with the same code.
    ``allow_revoked`` (file ingest) takes the export of a revoked (lost, broken) device: that
    file is exactly what reconciliation is for.

    Quick, then careful: the first attempt judges the batch without looking up what is
    rarely there (frozen ticket sets, numbers and sale ids already on record), and lets the
    writes meet it: the core checks frozen sets under a lock on the draw row while it records,
    and the unique constraints refuse a number or sale id on record. Then nothing is written and
    the batch is judged again with the lookups, which turns such records into rejections
    (``ticket_set_frozen``, ``ticket_sold_twice``, through the rejection protocol) or refuses
    the batch (``sale_id_reused``). Another device's batch may record such a number or sale id,
    or a draw freeze a set, between that second judging and its writes (two databases, no common
    lock): one more careful attempt, and if that meets it too, its error is the answer.
    """
    kwargs: dict[str, Any] = {
        "source": source,
        "verify_signature": verify_signature,
        "accept_rejections": accept_rejections,
        "allow_revoked": allow_revoked,
    }
    closer: _LookCloser | None = None
    for careful in (False, True, True):
        try:
            return _apply_batch(app, batch, careful=careful, **kwargs)
        except _LookCloser as exc:
            closer = exc
    assert closer is not None
    raise closer.cause from None


def _apply_batch(
    app: Tombola,
    batch: SyncBatch,
    *,
    source: str,
    verify_signature: bool,
    accept_rejections: bool,
    allow_revoked: bool,
    careful: bool,
) -> BatchOutcome:
    now = app.now_ms()
    records = batch.records
    if batch.last_seq != batch.first_seq + len(records) - 1:
        raise Malformed(f"the batch says records {batch.first_seq}..{batch.last_seq} but carries {len(records)}")
    with app.engine.begin() as conn:
        row = conn.execute(_LOCK_DEVICE, {"device_id": batch.device_id}).first()
        device = dict(row._mapping) if row else None
        if not (allow_revoked and device is not None):
            device = require_active_device(device, batch.device_id)
        for record in records:
            if record.device_id != device["id"]:
                raise DeviceMismatch(
                    f"record {record.seq} belongs to device {record.device_id}, not to {device['id']}", seq=record.seq
                )
        if verify_signature:
            batch.verify(b64u_decode(device["public_key"]))
        head = verify_chain(records, device_id=device["id"], prev_seq=batch.first_seq - 1, prev_hash=batch.prev_hash)
        if head != batch.head_hash:
            raise BrokenChain("the batch's head hash does not match its records")
        acked, acked_hash = device["acked_seq"], device["head_hash"]
        if batch.first_seq > acked + 1:
            raise SequenceGap(
                f"the server has records up to {acked}; record {acked + 1} is missing", missing_seq=acked + 1
            )
        split = max(0, min(len(records), acked - batch.first_seq + 1))
        old, new = records[:split], records[split:]
        if old:
            stored: dict[int, str] = dict(
                conn.execute(
                    select(SALE.c.seq, SALE.c.hash).where(
                        (SALE.c.device_id == device["id"]) & SALE.c.seq.in_([r.seq for r in old])
                    )
                ).all()
            )
            for record in old:
                if stored.get(record.seq) != record.hash:
                    raise BrokenChain(f"record {record.seq} differs from the one the server holds", seq=record.seq)
        elif batch.first_seq == acked + 1 and batch.prev_hash != acked_hash:
            raise BrokenChain(f"the batch does not follow record {acked} held by the server", seq=batch.first_seq)

        outcome = BatchOutcome(duplicates=len(old), acked_seq=acked, head_hash=acked_hash, venue_id=device["venue_id"])
        if batch.events is not None:  # protocol 1.1: the device's events, in this same transaction
            outcome.events_head = apply_events(conn, device["id"], batch.events, now_ms=now)
        if new:
            _refuse_reused_ids(conn, new, look_up=careful)
            outcome.raffles = list_raffles(app, device["venue_id"], conn=conn)
            ctx = _context(app, conn, device, new, now, outcome.raffles, careful=careful)
            verdicts = judge(new, ctx)
            acknowledged = {(r.seq, r.code) for r in batch.rejected}
            for record, verdict in zip(new, verdicts, strict=True):
                if verdict is not None and not accept_rejections and (record.seq, verdict.code) not in acknowledged:
                    raise verdict
            tickets = [
                TicketSale(
                    r.sale_id,
                    r.device_id,
                    r.seq,
                    r.raffle_id,
                    tuple(r.numbers),
                    r.hash,
                    r.amount_cents,
                    r.anchored_time_ms,
                )
                for r, v in zip(new, verdicts, strict=True)
                if v is None and isinstance(r, SaleRecord)
            ]
            voided = [r.voids for r, v in zip(new, verdicts, strict=True) if v is None and isinstance(r, VoidRecord)]
            # The sale rows first, in the business transaction still open: a sale id the server
            # holds already is refused by the primary key before the core commits anything.
            try:
                bulk_insert_rows(
                    conn,
                    SALE,
                    SALE_COLUMNS,
                    [_sale_row(r, source=source, now=now, rejection=v) for r, v in zip(new, verdicts, strict=True)],
                )
            except IntegrityError as exc:
                raise _LookCloser(SaleIdReused("a record reuses a sale id the server holds")) from exc
            try:
                app.core.record(tickets, voided)
            except (TicketSetFrozen, NumberTaken) as exc:
                raise _LookCloser(exc) from exc
            if voided:
                conn.execute(update(SALE).where(SALE.c.id.in_(voided)).values(voided=True))
            outcome.applied = sum(1 for v in verdicts if v is None)
            outcome.rejected = [
                RejectedRecord(seq=r.seq, sale_id=r.sale_id, code=v.code, detail=v.detail)
                for r, v in zip(new, verdicts, strict=True)
                if v is not None
            ]
            outcome.acked_seq, outcome.head_hash = new[-1].seq, new[-1].hash
        conn.execute(
            _MOVE_DEVICE,
            {
                "device_id_": device["id"],
                "acked_seq": outcome.acked_seq,
                "head_hash": outcome.head_hash,
                "last_seen_seq": max(device["last_seen_seq"], batch.last_seq, outcome.acked_seq),
                **({"last_sync_ms": now} if source == "sync" else {}),
            },
        )
        if source == "sync":
            record_anchor(conn, device["id"], now)
            outcome.anchor_ms = now
        if new or source != "sync":
            audit.record(
                conn,
                app,
                "sync.accepted",
                {
                    "device_id": device["id"],
                    "source": source,
                    "first_seq": batch.first_seq,
                    "last_seq": batch.last_seq,
                    "applied": outcome.applied,
                    "duplicates": outcome.duplicates,
                    "acked_seq": outcome.acked_seq,
                    "head_hash": outcome.head_hash,
                    "rejected": [{"seq": r.seq, "sale_id": r.sale_id, "code": r.code} for r in outcome.rejected[:1000]],
                    "rejected_count": len(outcome.rejected),
                },
                tenant=audit.tenant_of_venue(conn, device["venue_id"]),
                actor=f"device:{device['id']}",
            )
    return outcome


def sync(app: Tombola, batch: SyncBatch) -> SyncAck:
    """The ``POST /v1/sync`` operation: apply the batch, top up grants, answer with an ack.

    A batch refused as a whole leaves a ``sync.rejected`` audit entry with the reason; an
    accepted one leaves ``sync.accepted`` (with its rejected records) in its own transaction.
    """
    with acting_as(f"device:{batch.device_id}"):
        try:
            outcome = apply_batch(app, batch)
        except TombolaError as exc:
            if exc.code not in ("unknown_device",):  # no tenant, no device: nothing to attribute
                _log_refusal(app, batch, exc)
            raise
        return _acknowledge(app, batch, outcome)


def _log_refusal(app: Tombola, batch: SyncBatch, exc: TombolaError) -> None:
    """``sync.rejected`` for a refused batch; a failure to log never changes the device's answer."""
    try:
        audit.record_now(
            app,
            "sync.rejected",
            {
                "device_id": batch.device_id,
                "first_seq": batch.first_seq,
                "last_seq": batch.last_seq,
                "code": exc.code,
                "detail": exc.detail[:300],
            },
            tenant=_tenant_of_device(app, batch.device_id),
            actor="service:server",
        )
    except TombolaError:
        log.exception("could not log the refusal of a batch of %s", batch.device_id)


def _tenant_of_device(app: Tombola, device_id: str) -> str:
    with app.engine.connect() as conn:
        venue = conn.execute(select(DEVICE.c.venue_id).where(DEVICE.c.id == device_id)).scalar_one_or_none()
        return audit.tenant_of_venue(conn, venue) if venue else ""


def _events_members(outcome: BatchOutcome) -> dict[str, Any]:
    """The ack's 1.1 members when the batch carried events (sync-protocol section 19), else none."""
    if outcome.events_head is None:
        return {}
    seq, head = outcome.events_head
    return {"protocol_version": EVENTS_VERSION, "events_acked_seq": seq, "events_head_hash": head}


def _acknowledge(app: Tombola, batch: SyncBatch, outcome: BatchOutcome) -> SyncAck:
    device_id = batch.device_id
    anchor = outcome.anchor_ms  # recorded in the batch's transaction: a time the device may count from
    app.core.device_synced(device_id, anchor)
    raffles = outcome.raffles if outcome.raffles is not None else list_raffles(app, outcome.venue_id)
    grants, revoked, no_grant = ensure_grants(app, device_id, raffles)
    by = issuer(app, outcome.venue_id)
    return SyncAck(
        device_id=device_id,
        acked_seq=outcome.acked_seq,
        head_hash=outcome.head_hash,
        applied=outcome.applied,
        duplicates=outcome.duplicates,
        rejected=outcome.rejected,
        grants=grants,
        raffles=[raffle_info(r, no_grant.get(r["id"]), by=by) for r in raffles],
        revoked_grants=revoked,
        server_time_ms=anchor,
        lease_s=app.settings.lease_s,
        **_events_members(outcome),
        sellers=roster(app, outcome.venue_id),
    )
