"""Benchmark: the RNG service (health tests, rejection sampling, a record per call) against raw
C_GenerateRandom on the same token, in the same run.

An operation is one service call, alternately ``random_bytes(32)`` and ``randbelow(n)`` for
``n`` = 1,000,003 (20 bits, so some draws are rejected), each building its :class:`RngCall`
record (kept in memory: persisting it is the audit log's cost, not the RNG's). The reference is
a raw ``C_GenerateRandom`` of 32 bytes through python-pkcs11 on the same logged-in session, with
no lock, test or record. Both run in interleaved rounds so that noise hits them alike; the token
is a fresh SoftHSM2 token under ``bench/out`` unless ``--from-env`` takes ``TOMBOLA_HSM_*``.

Last line: one JSON object with ``p50_ms``, ``p99_ms`` (service latency per call), ``ops_per_min``
(service calls a minute, one thread), ``raw_ops_per_min``, ``ratio`` (ops / raw), and details.
Targets: ``p99_ms <= 5`` and ``ops_per_min >= 10000`` (the spec asks for < 100 ms and 1,000).

    .venv/bin/python bench/rng.py [--n 20000] [--rounds 10] [--from-env]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gli_core.hsm import Hsm, HsmConfig, ensure_softhsm_token, open_hsm
from gli_core.rng import RngCall, RngService, false_alarm_rates

N_BELOW = 1_000_003


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(hsm: Hsm, n: int, rounds: int) -> dict[str, Any]:
    records: list[RngCall] = []
    rng = RngService(hsm.generate_random, records.append)
    rng.random_bytes(32, purpose="warm-up")  # the start-up health test (1024 bytes) is not timed
    session = hsm._login.session()  # the same logged-in session, for the raw reference
    per_round = max(1, n // rounds)
    latencies_bytes: list[float] = []
    latencies_below: list[float] = []
    raw_latencies: list[float] = []
    service_s = raw_s = 0.0
    clock = time.perf_counter_ns
    for r in range(rounds):
        start = clock()
        for i in range(per_round):
            t0 = clock()
            if i % 2 == 0:
                rng.random_bytes(32, purpose="bench", raffle_id="rf-bench")
                latencies_bytes.append((clock() - t0) / 1e6)
            else:
                rng.randbelow(N_BELOW, purpose="bench", raffle_id="rf-bench")
                latencies_below.append((clock() - t0) / 1e6)
        service_s += (clock() - start) / 1e9
        start = clock()
        for _ in range(per_round):
            t0 = clock()
            session.generate_random(256)  # bits: 32 bytes
            raw_latencies.append((clock() - t0) / 1e6)
        raw_s += (clock() - start) / 1e9
        log(f"round {r + 1}/{rounds}: {len(latencies_bytes) + len(latencies_below)} service calls so far")
    ops = len(latencies_bytes) + len(latencies_below)
    assert rng.healthy and len(records) == ops + 2  # start-up + warm-up + one per call
    latencies = latencies_bytes + latencies_below
    ops_per_min = ops / service_s * 60
    raw_ops_per_min = len(raw_latencies) / raw_s * 60
    drawn = rng.metrics.snapshot()["rng_bytes_total"]
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    log(f"service: p50 {p50:.4f} ms p99 {p99:.4f} ms max {max(latencies):.3f} ms, {ops_per_min:,.0f} calls/min")
    log(f"raw C_GenerateRandom: p50 {statistics.median(raw_latencies):.4f} ms, {raw_ops_per_min:,.0f} calls/min")
    return {
        "p50_ms": round(p50, 4),
        "p99_ms": round(p99, 4),
        "ops_per_min": round(ops_per_min),
        "raw_ops_per_min": round(raw_ops_per_min),
        "ratio": round(ops_per_min / raw_ops_per_min, 4),
        "bytes32_p99_ms": round(percentile(latencies_bytes, 99), 4),
        "randbelow_p99_ms": round(percentile(latencies_below, 99), 4),
        "max_ms": round(max(latencies), 3),
        "raw_p50_ms": round(statistics.median(raw_latencies), 4),
        "raw_p99_ms": round(percentile(raw_latencies, 99), 4),
        "n": ops,
        "bytes_drawn": drawn,
        "expected_false_alarms": sum(false_alarm_rates(rng.tests.params)) * drawn,
        "targets_met": p99 <= 5 and ops_per_min >= 10_000,
        "token": hsm.token_info()["token_model"],
    }


def main() -> None:
    default_n = 5000 if os.environ.get("TOMBOLA_BENCH_SIZE") == "small" else 20_000
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=default_n, help="service calls to time (as many raw calls)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--from-env", action="store_true", help="use the token of TOMBOLA_HSM_* instead of a fresh one")
    args = parser.parse_args()
    if args.from_env:
        with open_hsm(HsmConfig.from_env(home=Path(os.environ.get("TOMBOLA_HOME", "var")))) as hsm:
            result = run(hsm, args.n, args.rounds)
    else:
        base = Path(__file__).resolve().parent / "out"
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base, prefix="rng-") as workdir:
            pin = secrets.token_urlsafe(16)
            ensure_softhsm_token(Path(workdir), "bench", pin, secrets.token_urlsafe(16))
            with Hsm.open(HsmConfig(token_label="bench", pin=pin)) as hsm:
                result = run(hsm, args.n, args.rounds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
