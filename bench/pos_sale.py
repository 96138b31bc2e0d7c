"""Benchmark: the latency of one durable ``PosClient.sell``, against raw durable SQLite.

N sales (default 2000; 500 with ``TOMBOLA_BENCH_SIZE=small``) on a real file in WAL mode with
``synchronous=FULL``, each timed from call to return (the sale is committed and fsynced when
``sell`` returns). Interleaved with them, as the reference in the same run and on the same disk,
N raw ``INSERT`` + ``COMMIT`` of a row of the same size into another file with the same
pragmas. The device is enrolled first against an in-process answer (an ``httpx.MockTransport``
that signs one grant big enough for every sale): no network, no server.

The last line printed is one JSON object:
``{"p50_ms", "p99_ms", "raw_p50_ms", "raw_p99_ms", "ratio", "n"}`` with ``ratio = raw_p99 / p99``.
Target: ``p99_ms <= 5``.

    .venv/bin/python bench/pos_sale.py [--n 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from pos_client import PosClient
from sync_protocol.messages import EnrollmentRequest, EnrollmentResponse, PricePoint, RaffleInfo, RangeGrant
from sync_protocol.signing import SoftwareSigner, b64u_encode

HOUR_MS = 3_600_000


def enrollment_transport(numbers: int) -> httpx.MockTransport:
    """Answers one enrollment with a raffle open for a day and a grant of ``numbers`` numbers."""
    signer = SoftwareSigner.generate()

    def handle(request: httpx.Request) -> httpx.Response:
        EnrollmentRequest.from_dict(orjson.loads(request.content)).verify()
        now = time.time_ns() // 1_000_000
        device_id = "dv-bench"
        raffle = RaffleInfo(
            raffle_id="R1",
            name="Bench raffle",
            currency="EUR",
            price_points=[PricePoint(quantity=1, amount_cents=500), PricePoint(quantity=5, amount_cents=2000)],
            sales_open_at_ms=now - HOUR_MS,
            sales_close_at_ms=now + 24 * HOUR_MS,
            status="open",
        )
        grant = RangeGrant(
            grant_id="gr-bench",
            raffle_id="R1",
            device_id=device_id,
            first_number=1,
            last_number=numbers,
            issued_at_ms=now,
            lease_s=8 * 3600,
            sales_close_at_ms=raffle.sales_close_at_ms,
            signer_key_id="",
        ).signed_by(signer)
        response = EnrollmentResponse(
            device_id=device_id,
            venue_id="venue-bench",
            server_keys=[
                {"key_id": signer.key_id, "algorithm": "ed25519", "public_key": b64u_encode(signer.public_key)}
            ],
            server_time_ms=now,
            lease_s=8 * 3600,
            grants=[grant],
            raffles=[raffle],
        )
        return httpx.Response(201, json=response.to_dict())

    return httpx.MockTransport(handle)


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def run(n: int, workdir: Path) -> dict[str, float | int]:
    http = httpx.Client(transport=enrollment_transport(n + 100))
    pos = PosClient(workdir / "pos.db", http=http)
    pos.enroll("BENCH-0001", "http://bench.invalid", device_name="bench")

    raw = sqlite3.connect(workdir / "raw.db")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, sale_id TEXT, hash TEXT, body TEXT)")
    raw.commit()

    # Warm up both paths (imports, page cache, the WAL file) without measuring.
    for _ in range(20):
        pos.sell("R1", 1)
    sample = pos.store.conn.execute("SELECT sale_id, hash, body FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    row_size = sum(len(v) for v in sample)

    sells: list[float] = []
    raws: list[float] = []
    for i in range(n):
        start = time.perf_counter()
        pos.sell("R1", 1)
        sells.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        raw.execute("INSERT INTO records (seq, sale_id, hash, body) VALUES (?, ?, ?, ?)", (i + 1, *sample))
        raw.commit()
        raws.append((time.perf_counter() - start) * 1000)

    pos.close()
    http.close()
    raw.close()
    p50, p99 = statistics.median(sells), percentile(sells, 99)
    raw_p50, raw_p99 = statistics.median(raws), percentile(raws, 99)
    print(f"row size {row_size} bytes; sell p50 {p50:.3f} ms p99 {p99:.3f} ms max {max(sells):.3f} ms")
    print(f"raw insert+commit p50 {raw_p50:.3f} ms p99 {raw_p99:.3f} ms max {max(raws):.3f} ms")
    return {
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "raw_p50_ms": round(raw_p50, 3),
        "raw_p99_ms": round(raw_p99, 3),
        "ratio": round(raw_p99 / p99, 3),
        "n": n,
    }


def main() -> None:
    default_n = 500 if os.environ.get("TOMBOLA_BENCH_SIZE") == "small" else 2000
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=default_n, help="sales to time")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a real disk, not tmpfs)")
    args = parser.parse_args()
    base = args.dir or Path(__file__).resolve().parent / "out"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix="pos_sale-") as workdir:
        result = run(args.n, Path(workdir))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
