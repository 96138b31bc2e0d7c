"""Compliance evidence: draw fairness over many synthetic draws, and raw RNG samples.

``fairness`` runs draws through the real code path (nonce from the RNG service, the VRF key in
the HSM, :func:`gli_core.draw.proof.build_proof`) and tests the winning ticket positions for
uniformity. ``rng_sample`` writes raw RNG-service output for external batteries (dieharder,
rngtest, ent). See ``docs/compliance.md``.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gli_core.api import DrawTicket, HsmUnavailable, VrfPublicKey, build_proof
from server.context import Tombola, new_id
from server.errors import InvalidRequest

ALPHA = 0.001
"""A test fails when its p-value is below this (one false alarm in 1000 runs of a fair draw)."""
MIN_EXPECTED = 5
"""Chi-square bins are grouped until every bin expects at least this many winners."""
KS_JITTER_SEED = 20_240_601
"""Seed of the (non-secret, reproducible) jitter that makes the discrete positions continuous for KS."""
SAMPLE_CHUNK = 1 << 16
"""``rng_sample`` asks the RNG service for this many bytes per call."""
MAX_SAMPLE_BYTES = 1 << 34

DrawFn = Callable[[str, Sequence[DrawTicket], int], list[int]]
"""``(raffle_id, tickets, winners) -> positions``: one draw; the winners' indexes in ``tickets``."""


TICKET_PRICE_CENTS = 100
"""What each synthetic ticket sold for (one ticket per sale)."""


def synthetic_tickets(count: int) -> list[DrawTicket]:
    """``count`` sold tickets numbered 1..count (sorted, so index = number - 1), 100 cents each."""
    return [DrawTicket(i + 1, f"tk-{i + 1}", f"sale-{i + 1}", TICKET_PRICE_CENTS) for i in range(count)]


def real_draw(app: Tombola) -> DrawFn:
    """The production draw: a fresh 32-byte nonce from the RNG service, then ``build_proof`` with
    the HSM's VRF key and a prize table of ``winners`` fixed prizes."""
    hsm, rng = app.core.hsm, app.core.rng
    if hsm is None or rng is None:
        raise HsmUnavailable("the fairness run needs the HSM; this core was opened without one", reason="token")
    key = hsm.vrf_key()
    public_key = VrfPublicKey(key.n, key.e)

    def draw(raffle_id: str, tickets: Sequence[DrawTicket], winners: int) -> list[int]:
        nonce = rng.random_bytes(32, purpose="fairness", raffle_id=raffle_id)
        proof = build_proof(
            raffle_id=raffle_id,
            public_key=public_key,
            nonce=nonce,
            tickets=tickets,
            prize_table=[{"tier": "prize", "count": winners, "kind": "fixed", "amount_cents": 1000}],
            gross_sales_cents=sum(t.amount_cents for t in tickets),
            rsasp1=key.raw_rsa,
            embed_tickets=False,
        )
        # A proof's winners[].position is the draw order; the ticket's place in the list is what
        # must be uniform, found from its number.
        index = {t.number: i for i, t in enumerate(tickets)}
        return [index[w["ticket_number"]] for w in proof["winners"]]

    return draw


def _chi_square_bins(tickets: int, total: int) -> list[int]:
    """Bin edges over positions ``[0, tickets)``: one bin per position when each expects >= 5
    winners, else contiguous groups of near-equal width."""
    bins = max(2, min(tickets, total // MIN_EXPECTED))
    return sorted({round(i * tickets / bins) for i in range(bins + 1)})


def analyse(positions: Sequence[int], tickets: int, alpha: float = ALPHA) -> dict[str, Any]:
    """Chi-square goodness-of-fit and Kolmogorov-Smirnov tests of ``positions`` against uniform
    on ``[0, tickets)``."""
    import numpy as np
    from scipy import stats

    pos = np.asarray(positions, dtype=np.int64)
    if pos.size == 0:
        raise InvalidRequest("no draws to analyse")
    edges = _chi_square_bins(tickets, int(pos.size))
    observed, _ = np.histogram(pos, bins=np.asarray(edges))
    expected = pos.size * np.diff(edges) / tickets
    chi = stats.chisquare(observed, expected)
    # Randomised probability integral transform: (pos + U) / T is exactly uniform on [0, 1) under
    # the null, so the continuous KS distribution applies. (pos + 0.5) / T would not be: its
    # distance from the uniform CDF is at least 1 / (2T), which fails a fair draw once N >> T^2.
    jitter = np.random.default_rng(KS_JITTER_SEED).random(pos.size)
    ks = stats.kstest((pos + jitter) / tickets, "uniform")
    return {
        "chi2": float(chi.statistic),
        "chi2_p": float(chi.pvalue),
        "chi2_bins": len(edges) - 1,
        "ks": float(ks.statistic),
        "ks_p": float(ks.pvalue),
        "passed": bool(chi.pvalue >= alpha and ks.pvalue >= alpha),
    }


def histogram(positions: Sequence[int], tickets: int, png_path: Path, title: str) -> None:
    """Write a histogram of winning positions with the uniform expectation as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = _chi_square_bins(tickets, len(positions))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.hist(positions, bins=edges, color="#4c72b0", edgecolor="white")
        ax.step(
            edges,
            [len(positions) * (b - a) / tickets for a, b in itertools.pairwise(edges)] + [0],
            where="post",
            color="#c44e52",
            label="uniform expectation",
        )
        ax.set_xlabel("winning ticket position in the sorted ticket list")
        ax.set_ylabel("winners")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        png_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, dpi=100)
    finally:
        plt.close(fig)


def fairness(
    app: Tombola,
    draws: int,
    tickets: int,
    winners: int,
    png_path: Path,
    *,
    draw_fn: DrawFn | None = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Run ``draws`` synthetic draws of ``winners`` prizes over ``tickets`` tickets and test the
    winning positions for uniformity; write the histogram to ``png_path``.

    ``draw_fn`` replaces the production draw (tests inject a biased one to check detection).

    Raises:
        InvalidRequest: a count is out of range.
        HsmUnavailable: no token (the real draw needs it).
    """
    if draws < 1:
        raise InvalidRequest("--draws must be at least 1")
    if tickets < 2:
        raise InvalidRequest("--tickets must be at least 2")
    if not 1 <= winners <= tickets:
        raise InvalidRequest("--winners must be between 1 and --tickets")
    draw = draw_fn or real_draw(app)
    ticket_list = synthetic_tickets(tickets)
    run_id = new_id("fair")
    positions: list[int] = []
    started = time.perf_counter()
    for i in range(draws):
        positions.extend(draw(f"{run_id}-{i}", ticket_list, winners))
    elapsed = time.perf_counter() - started
    result = analyse(positions, tickets, alpha)
    histogram(
        positions,
        tickets,
        png_path,
        f"{draws} draws, {tickets} tickets, {winners} winner(s): chi2 p={result['chi2_p']:.3g}, "
        f"KS p={result['ks_p']:.3g}",
    )
    return {
        "draws": draws,
        "tickets": tickets,
        "winners_per_draw": winners,
        **{k: result[k] for k in ("chi2", "chi2_p", "chi2_bins", "ks", "ks_p")},
        "alpha": alpha,
        "elapsed_s": round(elapsed, 3),
        "ms_per_draw": round(1000 * elapsed / draws, 3),
        "histogram": str(png_path),
        "passed": result["passed"],
    }


def rng_sample(app: Tombola, nbytes: int, path: Path) -> dict[str, Any]:
    """Write ``nbytes`` raw bytes from the RNG service to ``path``, in recorded, health-tested
    calls of at most :data:`SAMPLE_CHUNK` bytes.

    Raises:
        InvalidRequest: ``nbytes`` out of range.
        HsmUnavailable: no token.
        RngUnhealthy: a health test failed (the partial file is removed).
    """
    if not 1 <= nbytes <= MAX_SAMPLE_BYTES:
        raise InvalidRequest(f"--bytes must be between 1 and {MAX_SAMPLE_BYTES}")
    rng = app.core.rng
    if rng is None:
        raise HsmUnavailable("the RNG sample needs the HSM; this core was opened without one", reason="token")
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    calls = 0
    try:
        with path.open("wb") as out:
            left = nbytes
            while left:
                chunk = rng.random_bytes(min(left, SAMPLE_CHUNK), purpose="rng-sample")
                out.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
                calls += 1
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"bytes": nbytes, "file": str(path), "sha256": digest.hexdigest(), "calls": calls}
