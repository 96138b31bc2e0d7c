"""Benchmark: public reads of the real server under concurrent load, beside a bare FastAPI endpoint.

What runs:

1. Not timed: a fresh ``TOMBOLA_HOME`` (``tombola init``: SQLite, SoftHSM2, the embedded default),
   a venue with two 50/50 raffles, one device enrolled over HTTP that sells ``--sales`` tickets in
   each and syncs; the second raffle closes, the device syncs again, and its draw is initiated,
   executed (HSM VRF) and published with the ``tombola draw`` commands.
2. ``tombola serve`` (uvicorn, ``--workers``) serves the public reads; a bare FastAPI app
   (``bench/api_bare.py``: one route answering a small constant JSON document) runs under the same
   uvicorn options (workers, log level ``info``: an access-log line per request) on another port.
3. Load, from a second process: ``wrk`` (C, Debian's package) with ``--threads`` threads and
   ``--connections`` keep-alive connections for ``--seconds`` per target, its Lua ``done`` hook
   printing requests, non-2xx answers, socket errors and the latency percentiles as JSON.
   Targets, in this order, each after a one-second warm-up of the same target:

   - ``raffles``: ``GET /raffles`` (the open raffles with each 50/50 jackpot);
   - ``ticket_check``: ``GET /tickets/check?raffle=..&number=..&code=..``, cycling over every
     sold ticket with its real verification code (rate limit raised for the run: one address
     sends everything here; the shared limiter still counts every request in the database);
   - ``draw_results``: ``GET /draws/{raffle}`` (published results);
   - ``results_page``: ``GET /results/{raffle}``, the public results page (HTML);
   - ``check_page``: ``GET /check?raffle=..&number=..&code=..``, the ticket checker's page (HTML)
     a receipt's QR code opens, cycling over the same tickets;
   - ``bare``: the bare endpoint, measured the same way (the reference of the same run).

The last stdout line is one JSON object: per target ``rps``, ``p50_ms``, ``p99_ms``, ``non_2xx``,
``errors``, ``ratio`` (its rps / the bare endpoint's rps); ``targets`` (JSON reads: >= 2,000
requests/s, p99 < 50 ms, ratio >= 0.6; HTML pages: >= 1,000 pages/s, p99 < 50 ms) and ``met`` per
target. Any non-2xx answer or socket error fails the run.

    .venv/bin/python bench/api.py [--seconds 5] [--connections 32] [--threads 1] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOMBOLA = str(BIN / "tombola")
TARGET_RPS = 2000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.6
TARGET_PAGES = 1000.0  # issue 12: the public pages as HTML
PAGES = ("results_page", "check_page")

LUA = r"""
paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
counter = 0
request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@{"requests":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


class BenchFailure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench/api] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    small = os.environ.get("TOMBOLA_BENCH_SIZE") == "small"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=2.0 if small else 5.0, help="load per target")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (the load generator's cores)")
    p.add_argument("--workers", type=int, default=1, help="server processes of both servers (SQLite: 1)")
    p.add_argument("--sales", type=int, default=50 if small else 200, help="tickets sold per raffle")
    p.add_argument("--out", type=Path, help="also write the JSON line to this file")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(cmd: list[str], env: dict[str, str], url: str, log_path: Path, what: str) -> Iterator[None]:
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise BenchFailure(f"{what} exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchFailure(f"{what} did not answer {url} within 60 s")
                time.sleep(0.2)
            log(f"{what} up ({url}, pid {proc.pid})")
            yield
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def tombola(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([TOMBOLA, *args, "--json"], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchFailure(f"tombola {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")
    return json.loads(out.stdout)


def seed(home: Path, env: dict[str, str], base: str, sales: int) -> dict[str, Any]:
    """Two raffles with ``sales`` tickets each from one enrolled device; the second closed, drawn
    and published. Returns the raffle ids and every ticket's check path."""
    from pos_client import PosClient
    from server.config import Settings
    from server.context import Tombola
    from server.enrollment import service as enrollment
    from server.raffles import service as raffles

    app = Tombola.open(Settings(home=home))
    try:
        venue = raffles.create_venue(app, "Bench Hall")
        now = app.now_ms()

        def create(name: str, close_in_ms: int) -> str:
            spec = raffles.RaffleCreate(
                venue_id=venue["id"],
                name=name,
                price_cents=500,
                number_space=100_000,
                sales_close_at_ms=now + close_in_ms,
                bundles=((3, 1000),),
            )
            return str(raffles.create_raffle(app, spec)["id"])

        open_raffle = create("Bench 50/50", 24 * 3_600_000)
        drawn_raffle = create("Bench drawn 50/50", 20_000)
        code = enrollment.create_enrollment_code(app, venue["id"])["code"]
    finally:
        app.close()

    device = PosClient(home / "device.db")
    try:
        device.enroll(code, base)
        tickets: list[tuple[str, int, str]] = []
        for raffle_id in (open_raffle, drawn_raffle):
            for _ in range(sales):
                sale = device.sell(raffle_id, 1)
                tickets.extend((raffle_id, n, c) for n, c in zip(sale.numbers, sale.codes, strict=True))
        device.sync()
        wait_s = max(0.0, (now + 20_000) / 1000 - time.time()) + 1.5
        log(f"sold {len(tickets)} tickets; waiting {wait_s:.0f} s for the second raffle to close")
        time.sleep(wait_s)
        device.sync()
    finally:
        device.close()
    for step in ("initiate", "execute", "publish"):
        tombola(env, "draw", step, drawn_raffle)
    checks = [f"/tickets/check?raffle={r}&number={n}&code={c}" for r, n, c in tickets if r == open_raffle]
    return {"open": open_raffle, "drawn": drawn_raffle, "checks": checks}


def load(
    wrk: str, base: str, paths: list[str], args: argparse.Namespace, workdir: Path, seconds: float
) -> dict[str, Any]:
    path_file = workdir / "paths.txt"
    path_file.write_text("\n".join(paths) + "\n")
    script = workdir / "bench.lua"
    script.write_text(LUA)
    cmd = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base,
    ]
    out = subprocess.run(cmd, env={**os.environ, "BENCH_PATHS": str(path_file)}, capture_output=True, text=True)
    lines = [line[2:] for line in out.stdout.splitlines() if line.startswith("@@")]
    if out.returncode != 0 or not lines:
        raise BenchFailure(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    raw = json.loads(lines[-1])
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "non_2xx": raw["non_2xx"],
        "errors": raw["errors"],
    }


def measure(
    wrk: str, base: str, paths: list[str], args: argparse.Namespace, workdir: Path, name: str
) -> dict[str, Any]:
    load(wrk, base, paths, args, workdir, 1)  # warm-up: connections, caches, the first queries
    result = load(wrk, base, paths, args, workdir, args.seconds)
    log(f"{name}: {result['rps']} req/s, p99 {result['p99_ms']} ms")
    if result["non_2xx"] or result["errors"]:
        raise BenchFailure(f"{name}: {result['non_2xx']} non-2xx answers and {result['errors']} socket errors")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchFailure("wrk is not installed (scripts/bootstrap.sh installs Debian's wrk)")
    with tempfile.TemporaryDirectory(prefix="tombola-bench-api-") as tmp:
        work = Path(tmp)
        home = work / "var"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOMBOLA_")}
        env.update(TOMBOLA_HOME=str(home), TOMBOLA_TICKET_CHECK_RATE="1000000/second")
        tombola(env, "init")
        port, bare_port = free_port(), free_port()
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        serve = [TOMBOLA, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
        bare = [
            str(BIN / "uvicorn"),
            "bench.api_bare:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(bare_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "info",  # as tombola serve runs: an access-log line per request
        ]
        results: dict[str, Any] = {}
        with running(serve, env, f"{base}/healthz", work / "server.log", "tombola serve"):
            seeded = seed(home, env, base, args.sales)
            targets = {
                "raffles": ["/raffles"],
                "ticket_check": seeded["checks"],
                "draw_results": [f"/draws/{seeded['drawn']}"],
                # issue 12: the public pages as HTML, under the same load
                "results_page": [f"/results/{seeded['drawn']}"],
                "check_page": [p.replace("/tickets/check", "/check", 1) for p in seeded["checks"]],
            }
            for name, paths in targets.items():
                results[name] = measure(wrk, base, paths, args, work, name)
        with running(bare, {**env, "PYTHONPATH": str(ROOT)}, f"{bare_base}/bare", work / "bare.log", "bare app"):
            results["bare"] = measure(wrk, bare_base, ["/bare"], args, work, "bare")
    reference = results["bare"]["rps"]
    met = {}
    for name, r in results.items():
        r["ratio"] = round(r["rps"] / reference, 3) if reference else None
        if name in PAGES:
            met[name] = r["rps"] >= TARGET_PAGES and r["p99_ms"] < TARGET_P99_MS
        elif name != "bare":
            met[name] = r["rps"] >= TARGET_RPS and r["p99_ms"] < TARGET_P99_MS and (r["ratio"] or 0) >= TARGET_RATIO
    line = json.dumps(
        {
            "bench": "api",
            **results,
            "targets": {
                "rps": TARGET_RPS,
                "p99_ms": TARGET_P99_MS,
                "ratio": TARGET_RATIO,
                "pages_per_s": TARGET_PAGES,
            },
            "met": met,
            "seconds": args.seconds,
            "connections": args.connections,
            "threads": args.threads,
            "workers": args.workers,
        }
    )
    if args.out:
        args.out.write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as exc:
        log(f"FAILED: {exc}")
        sys.exit(1)
