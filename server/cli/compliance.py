"""``tombola compliance``: draw fairness statistics and raw RNG samples (docs/compliance.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from server.cli._common import _emit, json_option, with_app
from server.context import Tombola


@click.group()
def compliance() -> None:
    """Compliance evidence: draw fairness statistics and raw RNG samples (docs/compliance.md)."""


@compliance.command("fairness")
@click.option("--draws", required=True, type=int, help="Number of synthetic draws.")
@click.option("--tickets", default=100, show_default=True, type=int, help="Tickets in each synthetic raffle.")
@click.option("--winners", default=1, show_default=True, type=int, help="Fixed prizes drawn in each raffle.")
@click.option(
    "-o",
    "--output",
    "png",
    default="fairness.png",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Histogram PNG.",
)
@json_option
@with_app
def compliance_fairness(app: Tombola, draws: int, tickets: int, winners: int, png: Path, as_json: bool) -> None:
    """Run N draws through the real draw path and test winning positions for uniformity."""
    from server.compliance import fairness

    r = fairness(app, draws, tickets, winners, png)
    _emit(
        r,
        as_json,
        lambda: (
            f"{'PASS' if r['passed'] else 'FAIL'}: {r['draws']} draws x {r['winners_per_draw']} winner(s) over "
            f"{r['tickets']} tickets in {r['elapsed_s']} s ({r['ms_per_draw']} ms/draw)\n"
            f"  chi-square {r['chi2']:.3f} over {r['chi2_bins']} bins, p = {r['chi2_p']:.4g}\n"
            f"  Kolmogorov-Smirnov D = {r['ks']:.5f}, p = {r['ks_p']:.4g}\n"
            f"  (pass: both p >= {r['alpha']}); histogram {r['histogram']}"
        ),
    )
    if not r["passed"]:
        sys.exit(1)


@compliance.command("rng-sample")
@click.option("--bytes", "nbytes", required=True, type=int, help="Number of raw bytes to write.")
@click.option("-o", "--output", "path", required=True, type=click.Path(path_type=Path), help="Output file.")
@json_option
@with_app
def compliance_rng_sample(app: Tombola, nbytes: int, path: Path, as_json: bool) -> None:
    """Write N raw bytes from the RNG service (health-tested, recorded) for external batteries."""
    from server.compliance import rng_sample

    r = rng_sample(app, nbytes, path)
    _emit(r, as_json, lambda: f"wrote {r['bytes']} bytes to {r['file']} (sha256 {r['sha256']})")
