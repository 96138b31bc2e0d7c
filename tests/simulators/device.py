"""A raw protocol device for server tests: it builds records and batches directly with
:mod:`sync_protocol`, so tests can also send what an honest POS never would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import uuid6
from fastapi.testclient import TestClient

from sync_protocol.messages import (
    GENESIS_HASH,
    EnrollmentRequest,
    EnrollmentResponse,
    Payment,
    RangeGrant,
    RejectionAck,
    SaleRecord,
    SyncAck,
    SyncBatch,
    VoidRecord,
)
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner, b64u_encode

PRICES = {1: 500, 5: 1000, 30: 2000}


@dataclass
class RawDevice:
    signer: SoftwareSigner = field(default_factory=SoftwareSigner.generate)
    device_id: str = ""
    keys: KeyRing = field(default_factory=KeyRing)
    grants: list[RangeGrant] = field(default_factory=list)
    seq: int = 0
    head: str = GENESIS_HASH
    anchor_ms: int = 0
    used: set[int] = field(default_factory=set)
    records: list[SaleRecord | VoidRecord] = field(default_factory=list)

    def enroll(self, client: TestClient, code: str) -> EnrollmentResponse:
        req = EnrollmentRequest(code=code, public_key=b64u_encode(self.signer.public_key), device_name="raw")
        resp = client.post("/v1/devices/enroll", json=req.signed_by(self.signer).to_dict())
        assert resp.status_code == 201, resp.text
        out = EnrollmentResponse.from_dict(resp.json())
        self.device_id = out.device_id
        for k in out.server_keys:
            self.keys.add(PublicKey.from_dict(k))
        self.anchor_ms = out.server_time_ms
        self._take_grants(out.grants)
        return out

    def _take_grants(self, grants: list[RangeGrant]) -> None:
        known = {g.grant_id for g in self.grants}
        for g in grants:
            g.verify(self.keys)
            if g.grant_id not in known:
                self.grants.append(g)

    def free_numbers(self, raffle_id: str, quantity: int) -> list[int]:
        out: list[int] = []
        for g in sorted(self.grants, key=lambda g: g.first_number):
            if g.raffle_id != raffle_id:
                continue
            for n in range(g.first_number, g.last_number + 1):
                if n not in self.used:
                    out.append(n)
                    if len(out) == quantity:
                        return out
        raise AssertionError("no numbers left")

    def _next(self, record: SaleRecord | VoidRecord) -> SaleRecord | VoidRecord:
        sealed = record.sealed()
        self.seq, self.head = sealed.seq, sealed.hash
        self.records.append(sealed)
        return sealed

    def sale(
        self,
        raffle_id: str,
        quantity: int = 1,
        *,
        numbers: list[int] | None = None,
        amount_cents: int | None = None,
        elapsed_ms: int = 1000,
        anchor_ms: int | None = None,
        method: str = "cash",
        **extra: Any,
    ) -> SaleRecord:
        nums = numbers if numbers is not None else self.free_numbers(raffle_id, quantity)
        self.used.update(nums)
        rec = SaleRecord(
            sale_id=extra.pop("sale_id", None) or str(uuid6.uuid7()),
            device_id=self.device_id,
            seq=self.seq + 1,
            raffle_id=raffle_id,
            numbers=nums,
            amount_cents=PRICES.get(len(nums), 0) if amount_cents is None else amount_cents,
            currency="USD",
            payment=Payment(method=method, reference="T-1" if method == "card" else None),  # type: ignore[arg-type]
            seller_id="s1",
            device_time_ms=(anchor_ms or self.anchor_ms) + elapsed_ms,
            anchor_ms=self.anchor_ms if anchor_ms is None else anchor_ms,
            elapsed_ms=elapsed_ms,
            prev_hash=self.head,
            **extra,
        )
        out = self._next(rec)
        assert isinstance(out, SaleRecord)
        return out

    def void(
        self,
        sale: SaleRecord,
        reason: str = "customer changed mind",
        elapsed_ms: int = 2000,
        anchor_ms: int | None = None,
    ) -> VoidRecord:
        anchor = self.anchor_ms if anchor_ms is None else anchor_ms
        rec = VoidRecord(
            sale_id=str(uuid6.uuid7()),
            device_id=self.device_id,
            seq=self.seq + 1,
            raffle_id=sale.raffle_id,
            voids=sale.sale_id,
            reason=reason,
            device_time_ms=anchor + elapsed_ms,
            anchor_ms=anchor,
            elapsed_ms=elapsed_ms,
            prev_hash=self.head,
        )
        out = self._next(rec)
        assert isinstance(out, VoidRecord)
        return out

    def batch(
        self,
        first_seq: int,
        last_seq: int | None = None,
        rejected: list[tuple[int, str]] = (),  # type: ignore[assignment]
    ) -> SyncBatch:
        last = self.seq if last_seq is None else last_seq
        recs = [r for r in self.records if first_seq <= r.seq <= last]
        prev = recs[0].prev_hash if recs else (self.records[first_seq - 2].hash if first_seq > 1 else GENESIS_HASH)
        return SyncBatch(
            device_id=self.device_id,
            first_seq=first_seq,
            last_seq=last,
            prev_hash=prev,
            head_hash=recs[-1].hash if recs else prev,
            sent_at_ms=self.anchor_ms,
            rejected=[RejectionAck(seq=s, code=c) for s, c in rejected],
            records=recs,
        ).signed_by(self.signer)

    def post(self, client: TestClient, batch: SyncBatch) -> Any:
        return client.post("/v1/sync", json=batch.to_dict())

    def sync(self, client: TestClient, first_seq: int, **kw: Any) -> SyncAck:
        resp = self.post(client, self.batch(first_seq, **kw))
        assert resp.status_code == 200, resp.text
        ack = SyncAck.from_dict(resp.json())
        self.anchor_ms = ack.server_time_ms
        self._take_grants(ack.grants)
        return ack
