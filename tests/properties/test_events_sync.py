"""Property: any interleaving of sales, device events, syncs and lost acknowledgements ends, after a
final sync, with every sale on the server once and every event stored once, in the device's order
and with the device's hashes (both backends)."""

from __future__ import annotations

import itertools
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_client import PosClient
from server.context import Tombola
from server.enrollment import service as enrollment
from server.events import service as device_events
from sync_protocol.messages import EVENT_TYPES, GENESIS_HASH
from tests.support.app import Seed

SELF_RECORDED = {"sale.voided", "connection.lost", "connection.back", "clock.jump", "sync.failed"}
op = st.one_of(
    st.tuples(st.just("sale"), st.integers(1, 5)),
    st.tuples(st.just("event"), st.sampled_from([t for t in EVENT_TYPES if t not in SELF_RECORDED])),
    st.tuples(st.just("sync"), st.integers(1, 3)),
    st.tuples(st.just("lose_ack"), st.integers(0, 5)),
)
_counter = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=25))
def test_any_interleaving_of_sales_and_events_syncs_without_loss(
    ops: list[tuple[str, int | str]], client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    code = enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"]
    with PosClient(tmp_path / f"pos-{next(_counter)}.db", http=client) as pos:
        pos.enroll(code, str(client.base_url))
        sold = 0
        for kind, arg in ops:
            if kind == "sale":
                assert isinstance(arg, int)
                sold += len(pos.sell(seeded.raffle_id, arg).numbers)
            elif kind == "event":
                pos.record_event(str(arg), {"k": 1})
            elif kind == "sync":
                pos.sync(max_batches=int(arg))
            else:  # the last acknowledgement of events never arrived: the device sends them again
                with pos.store.write() as conn:
                    row = conn.execute(
                        "SELECT seq, hash FROM events WHERE seq <= ? ORDER BY seq DESC", (arg,)
                    ).fetchone()
                    seq, head = row if row else (0, GENESIS_HASH)
                    acked = conn.execute("SELECT acked_seq FROM event_ack").fetchone()[0]
                    if seq < acked:
                        conn.execute("UPDATE event_ack SET acked_seq = ?, acked_hash = ?", (seq, head))
        result = pos.sync()
        assert (result.pending, result.events_pending) == (0, 0)
        device_id = pos.device_id or ""
        mine = [(e.seq, e.type, e.hash) for e in pos.events()]
    held = [(e["seq"], e["type"], e["hash"]) for e in device_events.list_events(tombola, device_id, limit=10_000)]
    assert held == mine
    on_record = [t for t in tombola.core.tickets(seeded.raffle_id) if t.sale_id]
    assert sum(1 for t in on_record if _device_of(tombola, t.sale_id) == device_id) == sold


def _device_of(tombola: Tombola, sale_id: str) -> str:
    from sqlalchemy import text

    with tombola.engine.connect() as conn:
        return str(conn.execute(text("SELECT device_id FROM sale WHERE id = :i"), {"i": sale_id}).scalar_one())
