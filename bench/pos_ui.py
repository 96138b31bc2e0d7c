"""Benchmark: tap-to-receipt-on-screen in the running POS app, beside a bare ``PosClient.sell``.

The real app (``tests/app/driver.py``) runs in a window under Xvfb (started here when
``DISPLAY`` is unset). Each round taps the 5-ticket bundle (not timed), then taps **Confirm**
and times from the simulated touch-down to the first frame drawn after it (``Window.on_flip``):
the sale committed durably by the SDK, the receipt screen built and drawn with the numbers. The
driver's command round trip is outside the figure. Interleaved with the rounds, as the reference
in the same run, a bare ``PosClient.sell`` of the same bundle on another device database.
Both devices are enrolled against an in-process answer (``bench/pos_sale.py``); the app's
background sync runs and fails (no server), as it would offline.

The last line printed is one JSON object:
``{"p50_ms", "p99_ms", "sdk_p50_ms", "sdk_p99_ms", "ratio", "n"}`` with ``ratio = sdk_p99 / p99``.
Target: ``p99_ms <= 100``.

    .venv/bin/python bench/pos_ui.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from pos_sale import enrollment_transport  # noqa: E402

from pos_client import PosClient  # noqa: E402
from pos_client.sellers import store_roster  # noqa: E402
from sync_protocol.messages import SellerInfo  # noqa: E402
from sync_protocol.pins import hash_pin  # noqa: E402
from tests.app.harness import AppProcess  # noqa: E402
from tests.support.xvfb import display, kivy_env  # noqa: E402

SELLER_ID, SELLER_PIN = "sl-bench", "4821"


def enrolled(path: Path, numbers: int) -> None:
    with PosClient(path, http=httpx.Client(transport=enrollment_transport(numbers))) as pos:
        pos.enroll("BENCH-CODE", "http://127.0.0.1:9")  # a port nobody listens on: syncs fail fast
        # The app sells only for a signed-in seller: the roster a sync would bring, stored directly.
        stored = hash_pin(SELLER_PIN)
        seller = SellerInfo(
            seller_id=SELLER_ID,
            name="Bench",
            pin_scheme=stored.pin_scheme,
            pin_salt=stored.pin_salt,
            pin_hash=stored.pin_hash,
        )
        with pos.store.write() as conn:
            store_roster(conn, [seller])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    small = os.environ.get("TOMBOLA_BENCH_SIZE") == "small"
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50 if small else 200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pos-ui-"))
    numbers = 5 * (args.n + 10)
    enrolled(work / "app.db", numbers)
    enrolled(work / "sdk.db", numbers)
    ui: list[float] = []
    sdk: list[float] = []
    with display() as name, PosClient(work / "sdk.db") as bare:
        app = AppProcess(work / "app.db", kivy_env(name, work / "kivy"))
        try:
            app.tap(f"seller_{SELLER_ID}")  # the sign-in screen comes first (not timed)
            for digit in SELLER_PIN:
                app.tap(f"pin_{digit}")
            app.tap("pin_ok")
            for i in range(args.n + 5):
                app.tap("price_5")
                ms = float(app.tap("confirm", timed=True)["ms"])
                app.tap("next_sale")
                started = time.perf_counter()
                bare.sell("R1", 5, payment="cash", amount_cents=2000)
                sdk_ms = (time.perf_counter() - started) * 1000
                if i >= 5:  # warm-up rounds (first layouts, caches)
                    ui.append(ms)
                    sdk.append(sdk_ms)
                print(f"round {i}: app {ms:.1f} ms, sdk {sdk_ms:.1f} ms", file=sys.stderr)
        finally:
            app.close()
    p99, sdk_p99 = pct(ui, 0.99), pct(sdk, 0.99)
    result = {
        "p50_ms": round(statistics.median(ui), 2),
        "p99_ms": round(p99, 2),
        "sdk_p50_ms": round(statistics.median(sdk), 2),
        "sdk_p99_ms": round(sdk_p99, 2),
        "ratio": round(sdk_p99 / p99, 3),
        "n": len(ui),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
