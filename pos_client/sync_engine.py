"""Delta sync: upload what the server has not acknowledged, take back grants, raffles and time.

The server's acknowledgement is the only truth about what it holds: the device keeps
``acked_seq``/``acked_hash`` from the last :class:`~sync_protocol.messages.SyncAck` and every
batch starts right after it (``first_seq = acked_seq + 1``, ``prev_hash = acked_hash``). A
crash anywhere (before the send, after the server committed but before the answer arrived)
therefore costs at most a re-send, which the server treats as a duplicate.

One sync is a loop of batches of at most ``batch_size`` records until nothing is pending (or
``max_batches`` acknowledgements arrived); with nothing pending it sends one empty batch, which
asks for grants, raffles and time only. For each answer:

- 2xx :class:`SyncAck`: checked against the local chain (the acknowledged head must be the
  device's own record at that seq, else :class:`~pos_client.errors.SyncConflict`), then in one
  transaction: new ack state, records the server lists as rejected, a new time anchor and
  lease, raffles, revocations, device status, and the new grants (each verified with the pinned
  keys; a bad one is refused, reported and not stored).
- a sale rejection (a code of :data:`sync_protocol.errors.SALE_REJECTION_CODES` naming a
  ``seq``): the record is marked rejected locally (durably), and the batch is sent again with
  ``rejected`` acknowledging every rejection in its range; the server then records it as
  rejected and moves on.
- any other 4xx: :class:`~pos_client.errors.ServerRefused`, not retried; a
  ``device_revoked`` refusal also marks the device revoked, so it stops selling, and a
  ``sequence_gap`` naming a ``missing_seq`` the device had seen acknowledged moves the
  device's ack state back there, so the next sync re-sends from it. 5xx and
  network failures are retried by the :mod:`~pos_client.transport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pos_client import events, ledger, sellers, wallet
from pos_client.clock import Anchor, Clock, Reading
from pos_client.errors import ServerRefused, SyncConflict
from pos_client.store import EnrolledDevice, Store
from pos_client.transport import Answer, Transport
from pos_client.wallet import RefusedGrant
from sync_protocol.errors import SALE_REJECTION_CODES
from sync_protocol.messages import RejectionAck, SyncAck, SyncBatch
from sync_protocol.signing import Signer
from sync_protocol.version import EVENTS_VERSION

SYNC_PATH = "/v1/sync"
DEFAULT_BATCH_SIZE = 500
REVOKED_CODE = "device_revoked"
GAP_CODE = "sequence_gap"
EVENT_GAP_CODE = "event_sequence_gap"


@dataclass(frozen=True)
class Rejection:
    """A record the server refused during this sync."""

    seq: int
    sale_id: str
    code: str
    detail: str


@dataclass
class SyncResult:
    """What one :meth:`SyncEngine.sync` achieved.

    Attributes:
        batches: acknowledgements received.
        sent: records newly acknowledged by the server during this sync.
        acked_seq: the server's acknowledged seq at the end.
        pending: records still not acknowledged.
        new_grants: ids of grants received, verified and stored.
        refused_grants: grants refused (bad signature, wrong device, overlap).
        rejections: records the server refused during this sync.
        revoked_grants: grants newly revoked.
        device_status: ``active`` or ``revoked``.
        server_time_ms: the last anchor's server time.
    """

    batches: int = 0
    sent: int = 0
    acked_seq: int = 0
    pending: int = 0
    new_grants: list[str] = field(default_factory=list)
    refused_grants: list[RefusedGrant] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    revoked_grants: list[str] = field(default_factory=list)
    device_status: str = "active"
    server_time_ms: int = 0
    #: device events newly acknowledged by the server during this sync, and those still waiting
    events_sent: int = 0
    events_pending: int = 0


def build_batch(
    device: EnrolledDevice,
    bodies: list[dict[str, Any]],
    rejections: list[tuple[int, str]],
    *,
    sent_at_ms: int,
    event_bodies: list[dict[str, Any]] | None = None,
) -> SyncBatch:
    """The unsigned batch of ``bodies`` (records right after the acknowledged seq), sans I/O.

    ``event_bodies``, when there are any, go in ``events`` and the batch says protocol 1.1;
    without them the batch is exactly a 1.0 batch.
    """
    first = device.acked_seq + 1
    extra: dict[str, Any] = {}
    if event_bodies:
        extra = {"events": event_bodies, "protocol_version": EVENTS_VERSION}
    return SyncBatch(
        **extra,
        device_id=device.device_id,
        first_seq=first,
        last_seq=first + len(bodies) - 1,
        prev_hash=device.acked_hash,
        head_hash=bodies[-1]["hash"] if bodies else device.acked_hash,
        sent_at_ms=sent_at_ms,
        rejected=[RejectionAck(seq=seq, code=code) for seq, code in rejections],
        records=bodies,  # parsed by the model validator
    )


class SyncEngine:
    """Runs syncs for one device database."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        transport: Transport,
        signer: Signer,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.store = store
        self.clock = clock
        self.transport = transport
        self.signer = signer
        self.batch_size = max(1, batch_size)

    def sync(self, max_batches: int | None = None) -> SyncResult:
        """Upload every pending record (or ``max_batches`` batches of them); see the module doc.

        Raises:
            ServerRefused: a hard 4xx from the server.
            ServerError, NetworkError: the server could not be reached, after retries.
            SyncConflict: the server's answer contradicts the device's chain.
        """
        result = SyncResult()
        rejection_rounds = 0
        while True:
            device = self.store.enrolled_device()
            with self.store.read() as conn:
                bodies = ledger.bodies_after(conn, device.acked_seq, self.batch_size)
                rejections = ledger.rejections_between(conn, device.acked_seq + 1, device.acked_seq + len(bodies))
                event_bodies = events.pending_bodies(conn)
                events_before, _ = events.acked(conn)
            batch = build_batch(
                device, bodies, rejections, sent_at_ms=self.clock.wall_ms(), event_bodies=event_bodies
            ).signed_by(self.signer)
            answer = self.transport.post(SYNC_PATH, batch.to_dict())
            at = Reading.of(self.clock)
            events.note_reachable(self.store, self.clock, reachable=True)
            if not answer.ok:
                if answer.error_code in SALE_REJECTION_CODES and isinstance(answer.body.get("seq"), int):
                    rejection_rounds += 1
                    if rejection_rounds > 2 * self.batch_size + 2:  # each round marks a new (seq, code)
                        raise SyncConflict("the server keeps rejecting records of the same batch")
                    result.rejections.append(self._record_rejection(batch, answer, at))
                    continue
                self._note_refusal(answer)
                raise ServerRefused(answer.detail, server_code=answer.error_code, http_status=answer.status)
            ack = SyncAck.from_dict(answer.body)
            rejection_rounds = 0
            previous = device.acked_seq
            self._apply_ack(ack, at, result)
            result.batches += 1
            result.sent += max(0, ack.acked_seq - previous)
            with self.store.read() as conn:
                result.pending = ledger.count(conn, after=ack.acked_seq)
                events_after, _ = events.acked(conn)
                result.events_pending = events.pending_count(conn)
            result.events_sent += max(0, events_after - events_before)
            result.acked_seq = ack.acked_seq
            # Events alone ask for one more batch only while the server takes them (an older
            # server ignores them: they wait for one that does) or when none were sent yet.
            more_events = result.events_pending > 0 and (not event_bodies or events_after > events_before)
            if (result.pending == 0 and not more_events) or (max_batches is not None and result.batches >= max_batches):
                return result
            if bodies and ack.acked_seq == previous and result.pending > 0:
                raise SyncConflict(
                    f"the server acknowledged none of records {batch.first_seq}..{batch.last_seq}", seq=batch.first_seq
                )

    def _note_refusal(self, answer: Answer) -> None:
        """Keep what a hard refusal teaches: revoked device; where the server's chains (sales, events) really end."""
        if answer.error_code == REVOKED_CODE:
            with self.store.write() as conn:
                conn.execute("UPDATE device SET status = 'revoked' WHERE id = 1")
        missing = answer.body.get("missing_seq")
        if answer.error_code == GAP_CODE and isinstance(missing, int) and missing >= 1:
            # The server holds less than it once acknowledged (restored from a backup): the next
            # sync starts where the server says its chain ends. Re-sending is harmless.
            with self.store.write() as conn:
                device = self.store.enrolled_device()
                held = ledger.hash_at(conn, missing - 1)
                if missing - 1 < device.acked_seq and held is not None:
                    conn.execute("UPDATE device SET acked_seq = ?, acked_hash = ? WHERE id = 1", (missing - 1, held))
        missing_event = answer.body.get("missing_event_seq")
        if answer.error_code == EVENT_GAP_CODE and isinstance(missing_event, int) and missing_event >= 1:
            # The same for the event chain: without it, every later batch (its sales too) would be
            # refused for the gap, and the device could never sync again.
            with self.store.write() as conn:
                events.rewind_ack(conn, missing_event)

    def _record_rejection(self, batch: SyncBatch, answer: Answer, at: Reading) -> Rejection:
        seq = int(answer.body["seq"])
        code = answer.error_code
        if not batch.first_seq <= seq <= batch.last_seq:
            raise ServerRefused(
                f"{answer.detail} (the server rejected record {seq}, which is not in the batch "
                f"{batch.first_seq}..{batch.last_seq})",
                server_code=code,
                http_status=answer.status,
                seq=seq,
            )
        if any(r.seq == seq and r.code == code for r in batch.rejected):
            raise SyncConflict(
                f"the server rejected record {seq} with {code} again, although the batch acknowledged that rejection",
                seq=seq,
            )
        record = batch.records[seq - batch.first_seq]
        sale_id = answer.body.get("sale_id")
        if sale_id is not None and sale_id != record.sale_id:
            raise SyncConflict(f"the server rejected record {seq} as sale {sale_id}, but it is {record.sale_id}")
        with self.store.write() as conn:
            ledger.mark_rejected(conn, seq, code, answer.detail, at.wall_ms)
        return Rejection(seq=seq, sale_id=record.sale_id, code=code, detail=answer.detail)

    def _apply_ack(self, ack: SyncAck, at: Reading, result: SyncResult) -> None:
        with self.store.write() as conn:
            device = self.store.enrolled_device()
            if ack.device_id != device.device_id:
                raise SyncConflict(f"the server answered for device {ack.device_id}, this is {device.device_id}")
            local_hash = ledger.hash_at(conn, ack.acked_seq)
            if local_hash is None:
                raise SyncConflict(
                    f"the server acknowledges record {ack.acked_seq}, which this device never made",
                    seq=ack.acked_seq,
                )
            if local_hash != ack.head_hash:
                raise SyncConflict(
                    f"the server's record {ack.acked_seq} is not this device's record {ack.acked_seq}",
                    seq=ack.acked_seq,
                )
            conn.execute(
                "UPDATE device SET acked_seq = ?, acked_hash = ?, last_sync_ms = ?, status = ? WHERE id = 1",
                (ack.acked_seq, ack.head_hash, at.wall_ms, ack.device_status),
            )
            for rejected in ack.rejected:
                row = ledger.sale_row(conn, rejected.sale_id)
                if row is not None and row["seq"] == rejected.seq:
                    ledger.mark_rejected(conn, rejected.seq, rejected.code, rejected.detail, at.wall_ms)
            if device.anchor is not None:
                events.note_clock_offset(
                    conn,
                    self.store,
                    self.clock,
                    old_offset_ms=device.anchor.wall_ms - device.anchor.server_time_ms,
                    new_offset_ms=at.wall_ms - ack.server_time_ms,
                )
            self.store.set_anchor(Anchor.received(ack.server_time_ms, at), ack.lease_s)
            events.apply_ack(conn, ack)
            wallet.store_raffles(conn, ack.raffles)
            sellers.store_roster(conn, ack.sellers)
            revoked = wallet.revoke(conn, ack.revoked_grants, now_ms=at.wall_ms)
            intake = wallet.store_grants(
                conn, ack.grants, keys=wallet.keyring(conn), device_id=device.device_id, now_ms=at.wall_ms
            )
        result.revoked_grants.extend(revoked)
        result.new_grants.extend(intake.stored)
        result.refused_grants.extend(intake.refused)
        result.device_status = ack.device_status
        result.server_time_ms = ack.server_time_ms
