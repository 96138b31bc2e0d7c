"""The README's walk-through, as a user runs it: real ``tombola serve`` process, the
``tombola`` and ``tombola-pos`` commands in subprocesses, selling offline while the server is
down, then syncing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import free_port, running_server, server_env

BIN = Path(sys.executable).parent


def run(env: dict[str, str], *args: str) -> dict | list:  # type: ignore[type-arg]
    out = subprocess.run(
        [str(BIN / args[0]), *args[1:], "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_walkthrough_with_real_processes(tmp_path: Path) -> None:
    home = tmp_path / "var"
    env = server_env(home, f"sqlite:///{home}/core.db", f"sqlite:///{home}/business.db")
    env["TOMBOLA_POS_DB"] = str(tmp_path / "pos.db")
    run(env, "tombola", "init")
    demo = run(env, "tombola", "demo")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(env, port):
        run(env, "tombola-pos", "enroll", demo["code"], "--server", url)  # type: ignore[call-overload]
    # The server is down: the POS sells offline.
    sold = [
        run(env, "tombola-pos", "sell", "--raffle", demo["raffle_id"], "--quantity", q, "--payment", "cash")  # type: ignore[call-overload]
        for q in ("1", "5", "30")
    ]
    status = run(env, "tombola-pos", "status")
    assert status["pending"] == 3  # type: ignore[call-overload]
    failed = subprocess.run([str(BIN / "tombola-pos"), "sync"], env=env, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and "network" in failed.stderr.lower()
    with running_server(env, port):
        run(env, "tombola-pos", "sync")
    assert run(env, "tombola-pos", "status")["pending"] == 0  # type: ignore[call-overload]
    tickets = run(env, "tombola", "tickets", "--raffle", demo["raffle_id"])  # type: ignore[call-overload]
    assert sorted(t["number"] for t in tickets) == sorted(n for s in sold for n in s["numbers"])  # type: ignore[index]
    report = run(env, "tombola", "report", "reconciliation", "--raffle", demo["raffle_id"])  # type: ignore[call-overload]
    assert report["gross_sales_cents"] == 500 + 1000 + 2000  # type: ignore[call-overload]
