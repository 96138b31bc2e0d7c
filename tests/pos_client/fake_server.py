"""An in-memory stand-in for the server's device endpoints, for the POS SDK's tests.

It implements the contract the SDK relies on (``POST /v1/devices/enroll``, ``POST /v1/sync``)
with in-memory state: grants signed by a :class:`SoftwareSigner` and never overlapping,
batch signature and chain checks, idempotency (a re-sent record with the same hash is a
duplicate; a different hash at an acknowledged seq is ``broken_chain``), the sale rules that
matter to the device (unknown raffle, anchor, lease, close, grant, number sold twice, void
target), rejections the device must acknowledge, and fault injection:

- ``"503"``: answer 503 without touching anything;
- ``"drop_before"``: the connection fails before the request is processed;
- ``"drop_after"``: the batch is processed and committed, then the connection drops;
- ``"timeout_after"``: committed, then the client times out waiting for the answer.

Drive it through :meth:`FakeServer.client` (a Starlette ``TestClient``, an ``httpx.Client``).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from sync_protocol import rules
from sync_protocol.chain import verify_chain
from sync_protocol.errors import TombolaError
from sync_protocol.messages import (
    GENESIS_HASH,
    EnrollmentRequest,
    EnrollmentResponse,
    PricePoint,
    RaffleInfo,
    RangeGrant,
    RejectedRecord,
    SaleRecord,
    SellerInfo,
    SyncAck,
    SyncBatch,
    VoidRecord,
)
from sync_protocol.signing import SoftwareSigner, b64u_decode, b64u_encode

BASE_URL = "http://testserver"
HOUR_MS = 3_600_000
FAULTS = ("503", "drop_before", "drop_after", "timeout_after")


@dataclass
class StoredRecord:
    seq: int
    sale_id: str
    hash: str
    record: SaleRecord | VoidRecord
    status: str  # accepted | rejected
    code: str = ""
    detail: str = ""


@dataclass
class FakeDevice:
    device_id: str
    venue_id: str
    public_key: bytes
    log: list[StoredRecord] = field(default_factory=list)
    anchors: set[int] = field(default_factory=set)
    grants: list[RangeGrant] = field(default_factory=list)
    revoked_grants: set[str] = field(default_factory=set)
    revoked: bool = False

    @property
    def acked_seq(self) -> int:
        return len(self.log)

    @property
    def head_hash(self) -> str:
        return self.log[-1].hash if self.log else GENESIS_HASH


class Refusal(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


class FakeServer:
    """In-memory server state plus the FastAPI app over it.

    Args:
        now_ms: the server's clock (default: the real wall clock).
        lease_s: the offline lease handed to devices.
        grant_size: numbers per grant issued at enrollment.
    """

    def __init__(
        self, *, now_ms: Callable[[], int] | None = None, lease_s: int = 8 * 3600, grant_size: int = 100
    ) -> None:
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.lease_s = lease_s
        self.grant_size = grant_size
        self.signer = SoftwareSigner.generate()
        self.raffles: dict[str, RaffleInfo] = {}
        self.codes: dict[str, str] = {}
        self.used_codes: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self.devices: dict[str, FakeDevice] = {}
        self.next_number: dict[str, int] = {}
        self.taken: dict[tuple[str, int], str] = {}
        self.faults: deque[str] = deque()
        self.forced_rejections: dict[int, str] = {}
        self.batches: list[SyncBatch] = []  # every batch that got past its signature check
        self.requests = 0  # every request that reached the app
        #: the venue's roster sent with every answer (``None``: the member is left out, an older server)
        self.sellers: list[SellerInfo] | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ set-up

    def add_raffle(
        self,
        raffle_id: str = "R1",
        *,
        price_points: tuple[tuple[int, int], ...] = ((1, 500), (3, 1200), (5, 2000)),
        open_in_ms: int = -HOUR_MS,
        close_in_ms: int = 6 * HOUR_MS,
        status: str = "open",
        currency: str = "EUR",
    ) -> RaffleInfo:
        now = self.now_ms()
        info = RaffleInfo(
            raffle_id=raffle_id,
            name=f"Raffle {raffle_id}",
            currency=currency,
            price_points=[PricePoint(quantity=q, amount_cents=a) for q, a in price_points],
            sales_open_at_ms=now + open_in_ms,
            sales_close_at_ms=now + close_in_ms,
            status=status,  # type: ignore[arg-type]
        )
        self.raffles[raffle_id] = info
        self.next_number.setdefault(raffle_id, 1)
        return info

    def update_raffle(self, raffle_id: str, **changes: Any) -> None:
        self.raffles[raffle_id] = self.raffles[raffle_id].model_copy(update=changes)

    def add_code(self, code: str = "CODE-0001", venue_id: str = "venue-1") -> str:
        self.codes[code] = venue_id
        return code

    def issue_grant(
        self,
        device_id: str,
        raffle_id: str,
        size: int | None = None,
        *,
        tamper: bool = False,
        signer: SoftwareSigner | None = None,
    ) -> RangeGrant:
        """A new grant for the device, delivered with every answer from now on."""
        first = self.next_number[raffle_id]
        last = first + (size or self.grant_size) - 1
        self.next_number[raffle_id] = last + 1
        grant = RangeGrant(
            grant_id=f"gr-{uuid.uuid4().hex[:12]}",
            raffle_id=raffle_id,
            device_id=device_id,
            first_number=first,
            last_number=last,
            issued_at_ms=self.now_ms(),
            lease_s=self.lease_s,
            sales_close_at_ms=self.raffles[raffle_id].sales_close_at_ms,
            signer_key_id="",
        ).signed_by(signer or self.signer)
        if tamper:
            sig = bytearray(b64u_decode(grant.signature))
            sig[0] ^= 0xFF
            grant = grant.model_copy(update={"signature": b64u_encode(bytes(sig))})
        self.devices[device_id].grants.append(grant)
        return grant

    def revoke_grant(self, device_id: str, grant_id: str) -> None:
        self.devices[device_id].revoked_grants.add(grant_id)

    def revoke_device(self, device_id: str) -> None:
        self.devices[device_id].revoked = True

    def reject(self, seq: int, code: str) -> None:
        """Refuse record ``seq`` (of any device) with ``code`` until the device acknowledges it."""
        self.forced_rejections[seq] = code

    def fail_next(self, *faults: str) -> None:
        for fault in faults:
            assert fault in FAULTS, fault
        self.faults.extend(faults)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=BASE_URL)

    def records(self, device_id: str) -> list[StoredRecord]:
        return list(self.devices[device_id].log)

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/devices/enroll", status_code=201)
        async def enroll(request: Request) -> Any:
            body = await request.json()
            return self._guarded(lambda: self._enroll(body), status=201)

        @app.post("/v1/sync")
        async def sync(request: Request) -> Any:
            body = await request.json()
            return self._guarded(lambda: self._sync(body), status=200)

        @app.get("/healthz")
        async def healthz() -> Any:
            return self._guarded(lambda: {"status": "ok"}, status=200)

        return app

    def _guarded(self, handler: Callable[[], dict[str, Any]], *, status: int) -> Any:
        self.requests += 1
        fault = self.faults.popleft() if self.faults else None
        if fault == "503":
            return JSONResponse({"error": "unavailable", "detail": "try again later"}, status_code=503)
        if fault == "drop_before":
            raise httpx.ConnectError("connection refused (simulated)")
        try:
            result = handler()
        except Refusal as exc:
            return JSONResponse({"error": exc.code, "detail": exc.detail, **exc.extra}, status_code=exc.status)
        except TombolaError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status)
        if fault == "drop_after":
            raise httpx.RemoteProtocolError("server disconnected without sending a response (simulated)")
        if fault == "timeout_after":
            raise httpx.ReadTimeout("timed out (simulated)")
        return JSONResponse(result, status_code=status)

    def _enroll(self, body: dict[str, Any]) -> dict[str, Any]:
        request = EnrollmentRequest.from_dict(body)
        public_key = request.verify()
        if request.code in self.used_codes:
            key, response = self.used_codes[request.code]
            if key == public_key:
                return response
            raise Refusal(409, "enrollment_code_used", "this enrollment code was already used")
        venue_id = self.codes.get(request.code)
        if venue_id is None:
            raise Refusal(403, "enrollment_code_invalid", "this enrollment code is not known")
        now = self.now_ms()
        device = FakeDevice(device_id=f"dv-{uuid.uuid4().hex[:10]}", venue_id=venue_id, public_key=public_key)
        device.anchors.add(now)
        self.devices[device.device_id] = device
        for info in self.raffles.values():
            if info.status == "open":
                self.issue_grant(device.device_id, info.raffle_id)
        response = EnrollmentResponse(
            device_id=device.device_id,
            venue_id=venue_id,
            server_keys=[
                {
                    "key_id": self.signer.key_id,
                    "algorithm": "ed25519",
                    "public_key": b64u_encode(self.signer.public_key),
                }
            ],
            server_time_ms=now,
            lease_s=self.lease_s,
            grants=device.grants,
            raffles=list(self.raffles.values()),
            sellers=self.sellers,
        ).to_dict()
        self.used_codes[request.code] = (public_key, response)
        return response

    def _sync(self, body: dict[str, Any]) -> dict[str, Any]:
        batch = SyncBatch.from_dict(body)
        device = self.devices.get(batch.device_id)
        if device is None:
            raise Refusal(401, "unknown_device", f"device {batch.device_id} is not enrolled here")
        if device.revoked:
            raise Refusal(403, "device_revoked", f"device {batch.device_id} was revoked")
        batch.verify(device.public_key)
        self.batches.append(batch)
        records = batch.records
        if batch.last_seq != batch.first_seq + len(records) - 1:
            raise Refusal(422, "malformed", "the batch's seq range does not match its records")
        head = verify_chain(
            records, device_id=device.device_id, prev_seq=batch.first_seq - 1, prev_hash=batch.prev_hash
        )
        if head != batch.head_hash:
            raise Refusal(409, "broken_chain", "the batch's head hash does not match its records")
        acked = device.acked_seq
        if batch.first_seq > acked + 1:
            raise Refusal(409, "sequence_gap", f"record {acked + 1} is missing", missing_seq=acked + 1)
        split = max(0, min(len(records), acked - batch.first_seq + 1))
        old, new = records[:split], records[split:]
        for record in old:
            if device.log[record.seq - 1].hash != record.hash:
                raise Refusal(409, "broken_chain", f"record {record.seq} differs from the one held", seq=record.seq)
        if not old:
            held = device.log[batch.first_seq - 2].hash if batch.first_seq >= 2 else GENESIS_HASH
            if batch.prev_hash != held:
                raise Refusal(409, "broken_chain", "the batch does not follow the records held", seq=batch.first_seq)

        # Judge the new records in order on a scratch copy of the state; commit only if all pass.
        acknowledged = {(r.seq, r.code) for r in batch.rejected}
        taken = dict(self.taken)
        sales = {r.sale_id: r for r in device.log}
        voided = {r.record.voids for r in device.log if isinstance(r.record, VoidRecord) and r.status == "accepted"}
        entries: list[StoredRecord] = []
        for record in new:
            code, detail = self._judge(record, device, taken, sales, voided)
            entry = StoredRecord(record.seq, record.sale_id, record.hash, record, "accepted")
            if code:
                if (record.seq, code) not in acknowledged:
                    raise Refusal(422, code, detail, seq=record.seq, sale_id=record.sale_id)
                entry.status, entry.code, entry.detail = "rejected", code, detail
            elif isinstance(record, SaleRecord):
                for number in record.numbers:
                    taken[(record.raffle_id, number)] = record.sale_id
            else:
                voided.add(record.voids)
            sales[record.sale_id] = entry
            entries.append(entry)

        # Commit.
        self.taken = taken
        device.log.extend(entries)
        now = self.now_ms()
        device.anchors.add(now)
        return SyncAck(
            device_id=device.device_id,
            acked_seq=device.acked_seq,
            head_hash=device.head_hash,
            applied=sum(1 for e in entries if e.status == "accepted"),
            duplicates=len(old),
            rejected=[
                RejectedRecord(seq=e.seq, sale_id=e.sale_id, code=e.code, detail=e.detail)
                for e in entries
                if e.status == "rejected"
            ],
            grants=[g for g in device.grants if g.grant_id not in device.revoked_grants],
            raffles=list(self.raffles.values()),
            revoked_grants=sorted(device.revoked_grants),
            device_status="active",
            server_time_ms=now,
            lease_s=self.lease_s,
            sellers=self.sellers,
        ).to_dict()

    def _judge(
        self,
        record: SaleRecord | VoidRecord,
        device: FakeDevice,
        taken: dict[tuple[str, int], str],
        sales: dict[str, StoredRecord],
        voided: set[str],
    ) -> tuple[str, str]:
        forced = self.forced_rejections.get(record.seq)
        if forced:
            return forced, f"record {record.seq} refused ({forced})"
        info = self.raffles.get(record.raffle_id)
        if info is None:
            return "unknown_raffle", f"record {record.seq} names an unknown raffle"
        if record.anchor_ms not in device.anchors:
            return "bad_anchor", f"record {record.seq} counts from a time this server never gave"
        if record.elapsed_ms > self.lease_s * 1000:
            return "lease_expired", f"record {record.seq} was made after the lease"
        if isinstance(record, VoidRecord):
            target = sales.get(record.voids)
            if target is None or target.status != "accepted" or record.voids in voided:
                return "unknown_sale", f"void {record.seq} names no voidable sale"
            after_close = rules.check_void_window(rules.RaffleTerms.of(info), record.anchored_time_ms)
            if after_close is not None:
                return after_close.code, f"record {record.seq}: {after_close.detail}"
            return "", ""
        if info.status == "cancelled" or record.anchored_time_ms >= info.sales_close_at_ms:
            return "sale_after_close", f"record {record.seq} was sold after close"
        if record.anchored_time_ms < info.sales_open_at_ms:
            return "sale_before_open", f"record {record.seq} was sold before the raffle opened"
        ranges = [
            (g.first_number, g.last_number)
            for g in device.grants
            if g.raffle_id == record.raffle_id and g.grant_id not in device.revoked_grants
        ]
        for number in record.numbers:
            if not any(a <= number <= b for a, b in ranges):
                return "outside_grant", f"record {record.seq} sells {number}, outside the device's grants"
            owner = taken.get((record.raffle_id, number))
            if owner is not None and owner != record.sale_id:
                return "ticket_sold_twice", f"record {record.seq} sells {number} twice"
        price = rules.check_price(rules.RaffleTerms.of(info), len(record.numbers), record.amount_cents, record.currency)
        if price is not None:
            return price.code, f"record {record.seq}: {price.detail}"
        return "", ""
