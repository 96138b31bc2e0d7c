"""No client input gives a 5xx or wedges a device, and SQLite and PostgreSQL answer it alike.

Hypothesis generates signed sale records with extreme values (what an outside implementation
could sign: numbers, amounts, ids, texts and times at and past their bounds) and admin requests
to create raffles with extreme values. Each goes to one server on SQLite and one on PostgreSQL,
each with its own enrolled device. For every input: no 5xx, the same status and error code (and
``field``) on both; then the device, having acknowledged a rejection or dropped a refused
record, still syncs a good sale (issue 9, section 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.context import Tombola
from sync_protocol.errors import SALE_REJECTION_CODES
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, FakeClock, Seed, open_tombola, seed
from tests.support.postgres import DbUrls, create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = int(os.environ.get("TOMBOLA_NO_5XX_EXAMPLES", "25"))

#: integers around every bound that matters: 0, 2**31, 2**53, 2**63 and their neighbours
edge_ints = st.sampled_from(
    [-(2**63), -(2**31), -1, 0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64]
) | st.integers(min_value=-(2**64), max_value=2**64)
edge_texts = st.sampled_from(
    ["", "\x00", "a\x00b", "ß" * 3, "x" * 64, "x" * 65, "é" * 129, "USD", "usd", "EURO"]
) | st.text(max_size=70)

RECORD_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "amount_cents": edge_ints,
        "numbers": st.lists(edge_ints, min_size=1, max_size=3),
        "raffle_id": edge_texts,
        "seller_id": edge_texts,
        "currency": edge_texts,
        "elapsed_ms": edge_ints,
        "device_time_ms": edge_ints,
    },
)
RAFFLE_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "name": edge_texts,
        "price_cents": edge_ints,
        "numbers": edge_ints,
        "closes_at_ms": edge_ints,
        "opens_at_ms": edge_ints,
        "currency": edge_texts,
        "bundles": st.lists(st.tuples(edge_ints, edge_ints), max_size=2),
    },
)


@dataclass
class Server:
    backend: str
    app: Tombola
    client: TestClient
    seeded: Seed
    device: RawDevice


@pytest.fixture
def servers(pg_admin_dsn: str, tmp_path: Path) -> Iterator[list[Server]]:
    """One server on SQLite and one on PostgreSQL, each seeded with an enrolled device."""
    names = ("no5xx_core", "no5xx_business")
    core, business = (create_pg_database(pg_admin_dsn, n) for n in names)
    urls = {
        "sqlite": DbUrls(
            core=f"sqlite:///{tmp_path / 'core.db'}", business=f"sqlite:///{tmp_path / 'business.db'}", backend="sqlite"
        ),
        "postgresql": DbUrls(core=core, business=business, backend="postgresql"),
    }
    with ExitStack() as stack:
        for n in names:
            stack.callback(drop_pg_database, pg_admin_dsn, n)
        out = []
        for backend, url in urls.items():
            app = open_tombola(tmp_path / backend, url, FakeClock())
            stack.callback(app.close)
            client = stack.enter_context(TestClient(create_app(tombola=app)))
            seeded = seed(app)
            device = RawDevice()
            device.enroll(client, seeded.code)
            out.append(Server(backend, app, client, seeded, device))
        yield out


def _answer(resp: Any) -> tuple[int, str | None, str | None]:
    assert resp.status_code < 500, resp.text
    body = resp.json() if resp.status_code >= 400 else {}
    return resp.status_code, body.get("error"), body.get("field")


def _forget_last(device: RawDevice) -> None:
    device.records.pop()
    device.seq = device.records[-1].seq if device.records else 0
    device.head = device.records[-1].hash if device.records else "0" * 64


def _send_tampered(server: Server, changes: dict[str, Any]) -> tuple[int, str | None, str | None]:
    device = server.device
    device.sale(server.seeded.raffle_id, 1)
    last = device.records.pop()
    try:
        bad = last.model_copy(update=changes).sealed()
    except Exception:  # no canonical form (an integer beyond I-JSON): no device can sign it
        device.records.append(last)
        _forget_last(device)
        return 0, "unsignable", None
    device.records.append(bad)
    device.head = bad.hash
    first = device.seq
    answer = _answer(device.post(server.client, device.batch(first)))
    status, code, _ = answer
    if status == 200:
        pass
    elif code in SALE_REJECTION_CODES:  # the rejection protocol: acknowledge, and it is stored
        resp = device.post(server.client, device.batch(first, rejected=[(first, code)]))
        assert resp.status_code == 200, resp.text
    else:  # refused whole: nothing was stored; the device never keeps such a record
        _forget_last(device)
    return answer


def _still_syncs(server: Server) -> None:
    device = server.device
    device.sale(server.seeded.raffle_id, 1)
    ack = device.sync(server.client, device.seq)
    assert ack.applied == 1 and ack.acked_seq == device.seq, server.backend


def test_extreme_records_never_give_5xx_and_both_backends_agree(servers: list[Server]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(changes=RECORD_CHANGES)
    def check(changes: dict[str, Any]) -> None:
        answers = {s.backend: _send_tampered(s, changes) for s in servers}
        assert answers["sqlite"] == answers["postgresql"], (changes, answers)
        for s in servers:
            _still_syncs(s)

    check()


def test_extreme_admin_requests_never_give_5xx_and_both_backends_agree(servers: list[Server]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(changes=RAFFLE_CHANGES)
    def check(changes: dict[str, Any]) -> None:
        answers = {}
        for s in servers:
            body = {
                "venue_id": s.seeded.venue_id,
                "name": "Edge 50/50",
                "price_cents": 500,
                "numbers": 1000,
                "closes_at_ms": s.app.now_ms() + 3_600_000,
                **changes,
            }
            answers[s.backend] = _answer(s.client.post("/v1/admin/raffles", json=body, headers=ADMIN))
        assert answers["sqlite"] == answers["postgresql"], (changes, answers)
        for s in servers:
            _still_syncs(s)

    check()
