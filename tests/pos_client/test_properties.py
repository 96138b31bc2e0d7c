"""Property: any interleaving of sells, voids, syncs with transient failures, rejections and
restarts leaves the server with exactly the device's records, in order, nothing twice (I3)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_client import ManualClock, NetworkError, PosClient, ServerError
from sync_protocol.messages import SaleRecord
from tests.pos_client.conftest import CODE, FAST_RETRY
from tests.pos_client.fake_server import BASE_URL, FAULTS, FakeServer

REJECTION_CODES = ("sale_after_close", "outside_grant", "amount_mismatch", "ticket_sold_twice")

operations = st.lists(
    st.one_of(
        st.tuples(st.just("sell"), st.sampled_from([1, 3, 5])),
        st.tuples(st.just("void"), st.integers(0, 1000)),
        st.tuples(st.just("sync"), st.lists(st.sampled_from(FAULTS), max_size=6)),
        st.tuples(st.just("reject"), st.tuples(st.integers(0, 1000), st.sampled_from(REJECTION_CODES))),
        st.tuples(st.just("restart"), st.none()),
        st.tuples(st.just("wait"), st.integers(0, 10 * 60_000)),
    ),
    max_size=40,
)


def _run(ops: list[tuple[str, Any]], batch_size: int, workdir: Path) -> None:
    clock = ManualClock()
    server = FakeServer(now_ms=clock.wall_ms, grant_size=1000)
    server.add_raffle("R1")
    server.add_code(CODE)
    path = workdir / "pos.db"
    with server.client() as http:

        def open_client() -> PosClient:
            return PosClient(path, clock=clock, http=http, retry=FAST_RETRY, batch_size=batch_size)

        pos = open_client()
        pos.enroll(CODE, BASE_URL)
        device_id = pos.device_id or ""
        try:
            for op, arg in ops:
                if op == "sell":
                    pos.sell("R1", arg)
                elif op == "void":
                    rejected = {r.sale_id for r in pos.status().rejected}
                    voided = {r.voids for r in pos.records() if r.kind == "void"}
                    candidates = [
                        r.sale_id
                        for r in pos.records()
                        if isinstance(r, SaleRecord) and r.sale_id not in voided | rejected
                    ]
                    if candidates:
                        pos.void(candidates[arg % len(candidates)], "property test")
                elif op == "sync":
                    server.fail_next(*arg)
                    try:
                        pos.sync()
                    except (ServerError, NetworkError):
                        pass
                    server.faults.clear()
                elif op == "reject":
                    index, code = arg
                    on_server = server.devices[device_id].acked_seq
                    pending = [r.seq for r in pos.records() if r.seq > on_server]
                    if pending:
                        server.reject(pending[index % len(pending)], code)
                elif op == "restart":
                    pos.close()
                    pos = open_client()
                else:
                    clock.advance(arg)

            result = pos.sync()
            assert result.pending == 0
            local = list(pos.records())
            log = server.records(device_id)
            # exactly the device's records, in order, each once
            assert [(e.seq, e.sale_id, e.hash) for e in log] == [(r.seq, r.sale_id, r.hash) for r in local]
            assert len({e.sale_id for e in log}) == len(log)
            # rejected on the server exactly where the device knows it was rejected
            rejected_locally = {r.seq: r.code for r in pos.status().rejected}
            assert {e.seq: e.code for e in log if e.status == "rejected"} == rejected_locally
            # the device never made a record the server had reason to refuse by itself: every
            # rejection is one the test forced, or a void of a sale that was rejected
            rejected_ids = {e.sale_id for e in log if e.status == "rejected"}
            for e in log:
                if e.status == "rejected" and e.seq not in server.forced_rejections:
                    assert e.code == "unknown_sale" and getattr(e.record, "voids", None) in rejected_ids, e
            # no number accepted twice
            numbers = [
                n for e in log if e.status == "accepted" and isinstance(e.record, SaleRecord) for n in e.record.numbers
            ]
            assert len(numbers) == len(set(numbers))
            assert pos.status().acked_seq == len(local)
        finally:
            pos.close()


@settings(max_examples=60, deadline=None)
@given(ops=operations, batch_size=st.integers(1, 4))
def test_any_interleaving_leaves_the_server_with_exactly_the_devices_records(
    ops: list[tuple[str, Any]], batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        _run(ops, batch_size, Path(workdir))
