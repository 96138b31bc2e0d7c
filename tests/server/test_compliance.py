"""Compliance evidence: fairness statistics through the real draw path, and raw RNG samples."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gli_core.api import RNG_CALL
from gli_core.draw.selection import DrawTicket
from server.cli import cli
from server.compliance import fairness, rng_sample
from server.context import Tombola
from tests.support.postgres import DbUrls

DRAWS = 1000  # 2000 took 13.4 s on SQLite (5.3 ms a draw); 1000 keeps 50 expected per position
TICKETS = 20


def _rng_rows(app: Tombola, purpose: str) -> int:
    with app.core.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(RNG_CALL).where(RNG_CALL.c.purpose == purpose)).scalar_one()
        )


def test_fair_draws_pass(tombola: Tombola, tmp_path: Path) -> None:
    png = tmp_path / "fairness.png"
    started = time.perf_counter()
    # The suite checks at alpha = 1e-6 so that a fair run fails by chance about once in 250,000
    # suites, not once in 250; the biased selections below still fail at p ~ 0.
    report = fairness(tombola, DRAWS, TICKETS, 1, png, alpha=1e-6)
    elapsed = time.perf_counter() - started
    print(
        f"{DRAWS} draws: {elapsed:.2f} s, {report['ms_per_draw']} ms/draw, chi2_p={report['chi2_p']:.4g}, "
        f"ks_p={report['ks_p']:.4g}"
    )
    assert report["passed"], report
    assert report["chi2_p"] >= 1e-6 and report["ks_p"] >= 1e-6
    assert report["draws"] == DRAWS and report["tickets"] == TICKETS and report["winners_per_draw"] == 1
    assert report["chi2_bins"] == TICKETS  # 50 expected per position: no grouping needed
    assert png.exists() and png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _rng_rows(tombola, "fairness") == DRAWS  # one recorded nonce per draw


def test_biased_selection_is_detected(tombola: Tombola, tmp_path: Path) -> None:
    def first_ticket(raffle_id: str, tickets: Sequence[DrawTicket], winners: int) -> list[int]:
        return list(range(winners))

    report = fairness(tombola, 500, TICKETS, 1, tmp_path / "biased.png", draw_fn=first_ticket)
    assert not report["passed"]
    assert report["chi2_p"] < 0.001 and report["ks_p"] < 0.001


def test_subtle_bias_is_detected(tombola: Tombola, tmp_path: Path) -> None:
    """Modulo bias: a 5-bit value mod 20 makes positions 0-11 twice as likely as 12-19."""
    counter = iter(range(10**9))

    def modulo(raffle_id: str, tickets: Sequence[DrawTicket], winners: int) -> list[int]:
        return [(next(counter) * 7919 % 32) % len(tickets)]

    report = fairness(tombola, DRAWS, TICKETS, 1, tmp_path / "modulo.png", draw_fn=modulo)
    assert not report["passed"] and report["chi2_p"] < 0.001


def test_grouped_bins_and_several_winners(tombola: Tombola, tmp_path: Path) -> None:
    report = fairness(tombola, 100, 500, 3, tmp_path / "grouped.png", alpha=1e-6)
    assert report["chi2_bins"] == 60  # 300 winners / 5 expected per bin
    assert report["passed"], report


def test_rng_sample_writes_recorded_bytes(tombola: Tombola, tmp_path: Path) -> None:
    assert tombola.core.rng is not None
    before = tombola.core.rng.metrics.snapshot().get("rng_calls_total", 0)
    n = 200_000  # 4 calls of <= 64 KiB
    out = tmp_path / "sample.bin"
    report = rng_sample(tombola, n, out)
    data = out.read_bytes()
    assert len(data) == n == report["bytes"]
    assert hashlib.sha256(data).hexdigest() == report["sha256"]
    assert report["calls"] == 4 and _rng_rows(tombola, "rng-sample") == 4
    assert tombola.core.rng.metrics.snapshot()["rng_calls_total"] - before == 4


def test_cli(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    (tmp_path / "var").mkdir()  # an installation's home (commands other than `init` never create it)
    runner = CliRunner()
    png = tmp_path / "h.png"
    result = runner.invoke(
        cli,
        ["compliance", "fairness", "--draws", "50", "--tickets", "10", "-o", str(png), "--json"],
        catch_exceptions=False,
    )
    report = json.loads(result.output)
    assert result.exit_code == (0 if report["passed"] else 1), result.output  # exit 1 means FAIL, by chance here
    keys = {"draws", "tickets", "winners_per_draw", "chi2", "chi2_p", "ks", "ks_p", "histogram", "passed"}
    assert keys <= report.keys() and report["draws"] == 50 and png.stat().st_size > 0
    sample = tmp_path / "s.bin"
    result = runner.invoke(
        cli, ["compliance", "rng-sample", "--bytes", "1000", "-o", str(sample), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["bytes"] == 1000 and report["file"] == str(sample)
    assert report["sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    result = runner.invoke(cli, ["compliance", "fairness", "--draws", "5", "--winners", "0"])
    assert result.exit_code != 0
