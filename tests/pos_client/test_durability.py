"""A sale returned by ``sell`` survives ``kill -9`` of the process right after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pos_client import PosClient
from sync_protocol.chain import verify_chain
from sync_protocol.messages import GENESIS_HASH, SaleRecord
from tests.pos_client.conftest import CODE, FAST_RETRY
from tests.pos_client.fake_server import BASE_URL, FakeServer

# The child sells, prints each sale id once `sell` returned, and never exits by itself.
CHILD = """
import sys, time
from pos_client import PosClient

pos = PosClient(sys.argv[1])
for _ in range(int(sys.argv[2])):
    sale = pos.sell("R1", 1)
    print(sale.sale_id, flush=True)
while True:
    time.sleep(60)
"""


@pytest.fixture
def enrolled_file(tmp_path: Path) -> Path:
    """A database enrolled on the real clock (the child process uses the system clock)."""
    server = FakeServer(grant_size=100_000)
    server.add_raffle("R1")
    server.add_code(CODE)
    path = tmp_path / "pos.db"
    with server.client() as http, PosClient(path, http=http, retry=FAST_RETRY) as pos:
        pos.enroll(CODE, BASE_URL)
    return path


def _sell_then_kill(path: Path, sales: int, kill_after: int) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(sales)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    printed: list[str] = []
    try:
        while len(printed) < kill_after:
            line = child.stdout.readline()
            assert line, "the child died before selling"
            printed.append(line.strip())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    printed.extend(line.strip() for line in child.stdout.read().splitlines() if line.strip())
    assert child.returncode == -signal.SIGKILL
    return printed


@pytest.mark.slow
def test_one_sale_then_kill_9(enrolled_file: Path) -> None:
    [sale_id] = _sell_then_kill(enrolled_file, sales=1, kill_after=1)
    with PosClient(enrolled_file) as pos:
        records = list(pos.records())
        assert [r.sale_id for r in records] == [sale_id]
        assert pos.status().raffles[0].numbers_used == 1


@pytest.mark.slow
def test_kill_9_in_the_middle_of_selling(enrolled_file: Path) -> None:
    printed = _sell_then_kill(enrolled_file, sales=100_000, kill_after=40)
    with PosClient(enrolled_file) as pos:
        records = list(pos.records())
        ids = [r.sale_id for r in records]
        # Everything `sell` returned is there, in order; at most the one in flight is extra.
        assert ids[: len(printed)] == printed
        assert len(ids) - len(printed) <= 1
        verify_chain(records, device_id=pos.device_id or "", prev_seq=0, prev_hash=GENESIS_HASH)
        sold = [n for r in records if isinstance(r, SaleRecord) for n in r.numbers]
        assert sold == list(range(1, len(records) + 1))
        assert pos.status().raffles[0].numbers_used == len(sold)
        # and the device goes on selling where it stopped
        assert pos.sell("R1", 1).numbers == [len(sold) + 1]
