"""The offline sale loop end to end (issue: "Tests that must exist", simulation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pos_client import PosClient
from server.app import create_app
from server.context import Tombola
from tests.flows.simulation import check_server_matches_devices, run_simulation
from tests.support.app import FakeClock, Seed, open_tombola, seed
from tests.support.postgres import DbUrls


@pytest.mark.slow
def test_twenty_devices_eight_hours_offline_with_cut_connections(
    tombola: Tombola, client: TestClient, seeded: Seed, clock: FakeClock, tmp_path: Path
) -> None:
    result = run_simulation(tombola, client, seeded, clock, tmp_path, devices=20, hours=8, seed=20261125)
    assert result.cut_before > 10 and result.cut_after > 10, "the faults must actually happen"
    assert result.tickets > 1000 and result.voids > 0
    print(result)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed_=st.integers(0, 2**32),
    devices=st.integers(1, 4),
    hours=st.integers(1, 9),
    p_before=st.floats(0, 0.4),
    p_after=st.floats(0, 0.4),
)
# Found in CI: an enrollment whose first try reached the server (answer cut) and whose last try
# could not connect forgot its key, so the retry with a new key found the code spent.
@example(seed_=4, devices=1, hours=1, p_before=0.375, p_after=0.375)
def test_any_schedule_of_faults_loses_nothing(
    seed_: int, devices: int, hours: int, p_before: float, p_after: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clock = FakeClock()
        app = open_tombola(work / "var", DbUrls(f"sqlite:///{work}/core.db", f"sqlite:///{work}/b.db", "sqlite"), clock)
        seeded = seed(app, close_in_ms=hours * 3_600_000 + 60_000, grant_size=100)
        with TestClient(create_app(tombola=app)) as client:
            run_simulation(
                app,
                client,
                seeded,
                clock,
                work,
                devices=devices,
                hours=hours,
                seed=seed_,
                p_before=p_before,
                p_after=p_after,
            )
        app.close()


SELLER = textwrap.dedent(
    """
    import sys
    from pos_client import PosClient
    pos = PosClient(sys.argv[1])
    while True:
        sale = pos.sell(sys.argv[2], 1)
        print(sale.sale_id, flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_mid_sale_loses_no_returned_sale(
    tombola: Tombola, client: TestClient, seeded: Seed, tmp_path: Path
) -> None:
    """A device process is killed with SIGKILL while selling; every sale it returned survives,
    the chain stays whole, and after sync the server has exactly the device's sales."""
    db = tmp_path / "pos.db"
    pos = PosClient(db, http=client)
    pos.enroll(seeded.code, "http://testserver")
    pos.close()
    printed: list[str] = []
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", SELLER, str(db), seeded.raffle_id], stdout=subprocess.PIPE, env=dict(os.environ)
        )
        assert proc.stdout is not None
        while len(printed) < 40 * (_ + 1):
            line = proc.stdout.readline().decode().strip()
            if line:
                printed.append(line)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rest = proc.stdout.read().decode().split()
        printed.extend(rest)
    pos = PosClient(db, http=client)
    local = {r.sale_id for r in pos.records()}
    assert set(printed) <= local, "a sale returned to the caller was lost by kill -9"
    pos.sync()
    assert pos.status().pending == 0
    check_server_matches_devices(tombola, seeded, [pos])
    pos.close()
