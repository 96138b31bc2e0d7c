"""The offline-sale-loop simulation: many POS devices (the real ``PosClient``) selling offline
for hours against the real server app, with connections cut at random before and after the
server commits, then a check that the server holds exactly what the devices sold.

Time is injected: the server runs on a :class:`FakeClock`, each device on a ``ManualClock``,
and both move on together in 15-minute rounds.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from pos_client import ManualClock, PosClient, PosError, RetryPolicy
from server.context import Tombola
from server.enrollment import service as enrollment
from server.models import Sale
from server.raffles import service as raffles
from sync_protocol.messages import SaleRecord, VoidRecord
from tests.support.app import HOUR_MS, FakeClock, Seed

ROUND_MS = 15 * 60 * 1000
QUANTITIES = (1, 1, 1, 5, 5, 30)


class FaultyTransport(httpx.BaseTransport):
    """Cuts connections at random: before the request reaches the server, or after the server
    has answered (and committed) but before the answer reaches the device."""

    def __init__(self, inner: httpx.BaseTransport, rng: random.Random, p_before: float, p_after: float) -> None:
        self.inner, self.rng, self.p_before, self.p_after = inner, rng, p_before, p_after
        self.cut_before = self.cut_after = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.p_before:
            self.cut_before += 1
            raise httpx.ConnectError("cable pulled before the request", request=request)
        response = self.inner.handle_request(request)
        response.read()
        if roll < self.p_before + self.p_after:
            self.cut_after += 1
            raise httpx.ReadError("cable pulled after the server answered", request=request)
        return response


@dataclass
class SimDevice:
    pos: PosClient
    clock: ManualClock
    sync_p: float
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass
class SimResult:
    devices: int
    records: int
    tickets: int
    voids: int
    refusals: dict[str, int]
    cut_before: int
    cut_after: int
    syncs: int


def run_simulation(
    app: Tombola,
    client: TestClient,
    seeded: Seed,
    server_clock: FakeClock,
    workdir: Path,
    *,
    devices: int = 20,
    hours: int = 8,
    seed: int = 1,
    p_before: float = 0.15,
    p_after: float = 0.15,
    sales_per_round: int = 3,
) -> SimResult:
    rng = random.Random(seed)
    faulty = FaultyTransport(client._transport, rng, p_before, p_after)  # type: ignore[attr-defined]
    http = httpx.Client(transport=faulty, base_url="http://testserver")
    retry = RetryPolicy(attempts=3, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)
    sims: list[SimDevice] = []
    for i in range(devices):
        code = enrollment.create_enrollment_code(app, seeded.venue_id)["code"]
        clock = ManualClock(wall_ms=server_clock.now + rng.randint(-60_000, 60_000), monotonic_ms=rng.randint(0, 10**9))
        pos = PosClient(
            workdir / f"pos-{i}.db", clock=clock, http=http, retry=retry, batch_size=rng.choice((7, 50, 500))
        )
        for _attempt in range(20):  # enrollment also crosses the faulty network
            try:
                pos.enroll(code, "http://testserver", device_name=f"till {i}")
                break
            except PosError:
                continue
        assert pos.device_id is not None, "enrollment must survive cut connections (it is idempotent)"
        # A quarter of the devices never sync until the end: eight hours offline.
        sims.append(SimDevice(pos, clock, sync_p=0.0 if i % 4 == 0 else rng.uniform(0.05, 0.3)))
    syncs = 0
    for _round in range(hours * 4):
        server_clock.advance(ROUND_MS)
        for sim in sims:
            sim.clock.advance(ROUND_MS - rng.randint(0, 1000))
            for _ in range(rng.randint(0, sales_per_round)):
                try:
                    sale = sim.pos.sell(
                        seeded.raffle_id,
                        rng.choice(QUANTITIES),
                        payment=rng.choice(("cash", "card")),
                        reference="TERM-1",
                    )
                    if rng.random() < 0.05:
                        sim.pos.void(sale.sale_id, "customer changed their mind")
                except PosError as exc:
                    sim.refusals[exc.code] = sim.refusals.get(exc.code, 0) + 1
            if rng.random() < sim.sync_p:
                syncs += 1
                try:
                    sim.pos.sync()
                except PosError as exc:
                    sim.refusals["sync:" + exc.code] = sim.refusals.get("sync:" + exc.code, 0) + 1
    raffles.close_raffle(app, seeded.raffle_id)
    server_clock.advance(HOUR_MS // 2)
    for sim in sims:
        sim.clock.advance(HOUR_MS // 2)
        for _attempt in range(50):
            try:
                sim.pos.sync()
                if sim.pos.status().pending == 0:
                    break
            except PosError:
                continue
        assert sim.pos.status().pending == 0, f"device {sim.pos.device_id} could not sync everything"
    total_refusals: dict[str, int] = {}
    for sim in sims:
        for k, v in sim.refusals.items():
            total_refusals[k] = total_refusals.get(k, 0) + v
    result = check_server_matches_devices(app, seeded, [s.pos for s in sims])
    for sim in sims:
        sim.pos.close()
    http.close()
    return SimResult(
        devices=devices,
        records=result["records"],
        tickets=result["tickets"],
        voids=result["voids"],
        refusals=total_refusals,
        cut_before=faulty.cut_before,
        cut_after=faulty.cut_after,
        syncs=syncs,
    )


def check_server_matches_devices(app: Tombola, seeded: Seed, devices: list[PosClient]) -> dict[str, int]:
    """I1-I4: the server's tickets are exactly the union of the devices' accepted sales."""
    expected: dict[tuple[int, str], str] = {}
    device_records: dict[tuple[str, int], str] = {}
    voided_sales: set[str] = set()
    voids = 0
    close_ms = raffles.get_raffle(app, seeded.raffle_id)["sales_close_at_ms"]
    for pos in devices:
        records = list(pos.records())
        rejected = {r.seq for r in pos.status().rejected}
        for rec in records:
            device_records[(rec.device_id, rec.seq)] = rec.hash
            if rec.seq in rejected:
                continue
            if isinstance(rec, SaleRecord):
                for n in rec.numbers:
                    assert (n, rec.sale_id) not in expected
                    expected[(n, rec.sale_id)] = "sold"
                assert rec.anchored_time_ms < close_ms, "I4: a sale after close was accepted"
                assert rec.elapsed_ms <= app.settings.lease_s * 1000, "I4: a sale after the lease was accepted"
            elif isinstance(rec, VoidRecord):
                voided_sales.add(rec.voids)
                voids += 1
    for n, sale_id in list(expected):
        if sale_id in voided_sales:
            expected[(n, sale_id)] = "voided"
    on_server = {(t.number, t.sale_id): t.status for t in app.core.tickets(seeded.raffle_id)}
    missing = set(expected) - set(on_server)
    extra = set(on_server) - set(expected)
    assert not missing, f"I3: {len(missing)} sold tickets never reached the server"
    assert not extra, f"I2/I3: {len(extra)} tickets on the server that no device sold"
    assert on_server == expected, "voided tickets differ"
    numbers = [n for n, _ in on_server]
    assert len(numbers) == len(set(numbers)), "I2: a number recorded twice"
    sale_table = Sale.__table__  # type: ignore[attr-defined]
    with app.engine.connect() as conn:
        rows = conn.execute(select(sale_table.c.device_id, sale_table.c.seq, sale_table.c.hash)).all()
    server_records = {(r.device_id, r.seq): r.hash for r in rows}
    assert len(rows) == len(server_records)
    assert server_records == device_records, "I3: the server's records differ from the devices' chains"
    grants = sorted(
        (g.grant.first_number, g.grant.last_number) for g in app.core.grants(raffle_id=seeded.raffle_id, status=None)
    )
    for (_, last), (first, _) in itertools.pairwise(grants):
        assert first > last, "I1: two grants overlap"
    return {"records": len(device_records), "tickets": len(expected), "voids": voids}
