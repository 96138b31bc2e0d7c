#!/usr/bin/env python
"""Generate the draw test vectors in ``tests/vectors/draw/``.

Everything is fixed: betas are SHA-256 of fixed labels, tickets and prize tables are literals,
and the proof examples use the RFC 9381 Appendix A 2048-bit key (a public test key: its
private exponent is in ``tests/vectors/rfc9381/rsa-fdh-vrf-sha256.json``) with a fixed nonce,
so the output is byte-for-byte deterministic (RSA-FDH-VRF is deterministic).

- ``stream.json``: the first bytes of the draw stream ``SHAKE-256("tombola/draw-stream/v1\\0" || beta)``;
- ``randbelow.json``: ``randbelow`` on one stream for a sequence of bounds, with the bytes read;
- ``selection.json``: winners, redraws and stream bytes consumed for fixed betas, tickets and tiers;
- ``proof-example.json``: a complete draw proof (embedded tickets) with a step-by-step trace of
  the selection (``docs/draw-proof.md`` shows it as its worked example);
- ``proof-ticket-file.json`` and ``tickets-<sha256>.json``: the same draw with the ticket list in
  a separate file named by its hash.

The trace is computed here by a second, literal implementation of the algorithm of
``docs/draw-proof.md`` (reading the SHAKE-256 output directly), and the script fails if it
disagrees with ``gli_core.draw``.

Run ``.venv/bin/python tests/vectors/generate_draw_vectors.py`` after an intended change of the
draw algorithm (which needs a new ``ALGORITHM`` version) and review the diff;
``test_selection.py::test_vectors_drift`` (every file of ``tests/vectors/draw/``) fails whenever
the committed files differ from what this script writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gli_core.draw import proof as draw_proof  # noqa: E402
from gli_core.draw.selection import (  # noqa: E402
    STREAM_DOMAIN,
    DrawStream,
    DrawTicket,
    RedrawRequest,
    randbelow,
    select,
)
from gli_core.draw.vrf import VrfPublicKey  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "draw"
RFC9381 = Path(__file__).resolve().parent / "rfc9381" / "rsa-fdh-vrf-sha256.json"
SCRIPT = "tests/vectors/generate_draw_vectors.py"


def beta_of(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def test_key() -> tuple[VrfPublicKey, int]:
    key = json.loads(RFC9381.read_text())["keys"]["2048"]
    n, e, d = int(key["n"], 16), int(key["e"], 16), int(key["d"], 16)
    return VrfPublicKey(n, e), d


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def stream_vectors() -> dict[str, Any]:
    cases = []
    for label in ("stream-0", "stream-1"):
        beta = beta_of(label)
        cases.append(
            {
                "beta": beta.hex(),
                "first_64_bytes": hashlib.shake_256(STREAM_DOMAIN + beta).digest(64).hex(),
            }
        )
    return {
        "description": "The draw stream: SHAKE-256(b'tombola/draw-stream/v1\\x00' || beta), first 64 bytes.",
        "source": SCRIPT,
        "cases": cases,
    }


def randbelow_vectors() -> dict[str, Any]:
    beta = beta_of("randbelow")
    stream = DrawStream(beta)
    steps = []
    for n in (1, 2, 3, 10, 255, 256, 257, 1000, 65536, 65537, 1_000_000, 2**40 + 1, 7, 7, 7, 7):
        before = stream.consumed
        value = randbelow(stream, n)
        steps.append({"n": n, "value": value, "bytes_read": stream.consumed - before, "consumed": stream.consumed})
    return {
        "description": "randbelow(n) on one stream, in order: mask to (n-1).bit_length() bits of "
        "ceil(bits/8) big-endian bytes, reject values >= n. bytes_read counts rejected attempts too.",
        "source": SCRIPT,
        "beta": beta.hex(),
        "steps": steps,
    }


def _tickets(numbers: list[int]) -> list[DrawTicket]:
    return [DrawTicket(n, f"ticket-{n:04d}", f"sale-{n // 3:04d}") for n in numbers]


#: The tiered table (fixed prizes and shares of sales) two selection cases draw from.
TIERED_TABLE: list[dict[str, Any]] = [
    {"tier": "grand", "count": 1, "kind": "fixed", "amount_cents": 50000},
    {"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50},
    {"tier": "runner-up", "count": 3, "kind": "fixed", "amount_cents": 2500},
    {"tier": "tenth", "count": 2, "kind": "percent_of_sales", "percent": 10},
]

SELECTION_CASES: list[dict[str, Any]] = [
    {
        "name": "one-ticket-one-prize",
        "beta_label": "selection-0",
        "numbers": [42],
        "prize_table": [{"tier": "prize", "count": 1, "kind": "fixed", "amount_cents": 0}],
        "gross_sales_cents": 500,
        "redraws": [],
    },
    {
        "name": "every-ticket-wins",
        "beta_label": "selection-1",
        "numbers": [1, 2, 3, 4, 5],
        "prize_table": [{"tier": "prize", "count": 5, "kind": "fixed", "amount_cents": 100}],
        "gross_sales_cents": 500,
        "redraws": [],
    },
    {
        "name": "tiers-and-fifty-fifty",
        "beta_label": "selection-2",
        "numbers": [n for n in range(1, 301) if n % 7],
        "prize_table": TIERED_TABLE,
        "gross_sales_cents": 1_234_567,
        "redraws": [],
    },
    {
        "name": "redraws",
        "beta_label": "selection-2",
        "numbers": [n for n in range(1, 301) if n % 7],
        "prize_table": TIERED_TABLE,
        "gross_sales_cents": 1_234_567,
        "redraws": ["runner-up#1:declined", "grand#0:unclaimed by the deadline", "runner-up#1:declined again"],
    },
    {
        "name": "large-sparse-numbers",
        "beta_label": "selection-3",
        "numbers": [n * 1009 + 17 for n in range(70_000)],
        "prize_table": [{"tier": "prize", "count": 10, "kind": "fixed", "amount_cents": 1000}],
        "gross_sales_cents": 7_000_000,
        "redraws": [],
    },
]


def _requests(case: dict[str, Any], tickets: list[DrawTicket]) -> list[RedrawRequest]:
    """Redraw specs ``tier#k:reason``: replace the k-th current holder of that tier."""
    beta = beta_of(case["beta_label"])
    requests: list[RedrawRequest] = []
    for spec in case["redraws"]:
        tier_k, reason = spec.split(":", 1)
        tier, k = tier_k.split("#")
        holders = select(
            beta, tickets, case["prize_table"], gross_sales_cents=case["gross_sales_cents"], redraws=requests
        ).holders
        holder = [h for h in holders if h.tier == tier][int(k)]
        requests.append(RedrawRequest(tier, holder.ticket.number, reason))
    return requests


def selection_vectors() -> dict[str, Any]:
    out = []
    for case in SELECTION_CASES:
        tickets = _tickets(case["numbers"])
        beta = beta_of(case["beta_label"])
        requests = _requests(case, tickets)
        sel = select(beta, tickets, case["prize_table"], gross_sales_cents=case["gross_sales_cents"], redraws=requests)
        numbers = case["numbers"]
        out.append(
            {
                "name": case["name"],
                "beta": beta.hex(),
                "ticket_numbers": numbers
                if len(numbers) <= 300
                else {"formula": "n * 1009 + 17 for n in 0..69999", "count": len(numbers)},
                "prize_table": case["prize_table"],
                "gross_sales_cents": case["gross_sales_cents"],
                "redraw_requests": [
                    {"tier": r.tier, "replaced_ticket_number": r.replaced_ticket_number, "reason": r.reason}
                    for r in requests
                ],
                "winners": [
                    {
                        "tier": w.tier,
                        "position": w.position,
                        "ticket_number": w.ticket.number,
                        "amount_cents": w.amount_cents,
                    }
                    for w in sel.winners
                ],
                "redraws": [
                    {
                        "tier": r.tier,
                        "position": r.position,
                        "replaced_ticket_number": r.replaced.number,
                        "ticket_number": r.ticket.number,
                        "amount_cents": r.amount_cents,
                    }
                    for r in sel.redraws
                ],
                "stream_bytes": sel.stream_bytes,
            }
        )
    return {
        "description": "Winner selection (tombola/draw/v2): fixed beta -> fixed winners. Tickets are "
        "ticket-NNNN / sale-MMMM (MMMM = number // 3); sorted by number. stream_bytes is the number of "
        "stream bytes read, rejected attempts included.",
        "source": SCRIPT,
        "cases": out,
    }


EXAMPLE_NUMBERS = [3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610]
EXAMPLE_TABLE = [
    {"tier": "grand", "count": 1, "kind": "fixed", "amount_cents": 10000},
    {"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50},
    {"tier": "consolation", "count": 2, "kind": "fixed", "amount_cents": 500},
]
EXAMPLE_NONCE = bytes(range(32))
EXAMPLE_RAFFLE = "raffle-example"


def _example_tickets() -> list[DrawTicket]:
    """Sale ``s-<number // 10>``; every ticket 500 cents, except sale s-0 (tickets 3, 5, 8), three
    tickets for 1501 cents split 501 + 500 + 500 (the remainder on the first, as the core splits)."""
    return [DrawTicket(n, f"t-{n}", f"s-{n // 10}", 501 if n == 3 else 500) for n in EXAMPLE_NUMBERS]


EXAMPLE_GROSS = sum(t.amount_cents for t in _example_tickets())
assert EXAMPLE_GROSS == 6001


def literal_trace(beta: bytes, count: int, draws: int) -> list[dict[str, Any]]:
    """docs/draw-proof.md sections 5-6, literally: SHAKE-256 output read in order, full array."""
    xof = hashlib.shake_256(STREAM_DOMAIN + beta).digest(4096)
    offset = 0
    a = list(range(count))
    steps = []
    for i in range(draws):
        n = count - i
        bits = (n - 1).bit_length()
        attempts = []
        r = 0
        if bits:
            size = (bits + 7) // 8
            while True:
                chunk = xof[offset : offset + size]
                offset += size
                value = int.from_bytes(chunk, "big") & ((1 << bits) - 1)
                attempts.append({"bytes": chunk.hex(), "masked": value, "accepted": value < n})
                if value < n:
                    r = value
                    break
        j = i + r
        a[i], a[j] = a[j], a[i]
        steps.append({"draw": i, "n": n, "bits": bits, "attempts": attempts, "j": j, "selected_position": a[i]})
    return steps


def proof_vectors() -> dict[str, str]:
    key, d = test_key()

    def rsasp1(m: int) -> int:
        return pow(m, d, key.n)

    tickets = _example_tickets()
    first = draw_proof.build_proof(
        raffle_id=EXAMPLE_RAFFLE,
        public_key=key,
        nonce=EXAMPLE_NONCE,
        tickets=tickets,
        prize_table=EXAMPLE_TABLE,
        gross_sales_cents=EXAMPLE_GROSS,
        rsasp1=rsasp1,
    )
    consolation = next(w for w in first["winners"] if w["tier"] == "consolation")
    redraws = [RedrawRequest("consolation", consolation["ticket_number"], "declined")]
    proof = draw_proof.build_proof(
        raffle_id=EXAMPLE_RAFFLE,
        public_key=key,
        nonce=EXAMPLE_NONCE,
        tickets=tickets,
        prize_table=EXAMPLE_TABLE,
        gross_sales_cents=EXAMPLE_GROSS,
        rsasp1=rsasp1,
        redraws=redraws,
    )
    beta = bytes.fromhex(proof["beta"])
    trace = literal_trace(beta, len(tickets), 5)
    positions = [w["ticket_number"] for w in proof["winners"]] + [r["ticket_number"] for r in proof["redraws"]]
    literal = [EXAMPLE_NUMBERS[s["selected_position"]] for s in trace]
    if positions != literal:
        raise SystemExit(f"gli_core.draw and the literal algorithm disagree: {positions} != {literal}")
    file_proof = draw_proof.build_proof(
        raffle_id=EXAMPLE_RAFFLE,
        public_key=key,
        nonce=EXAMPLE_NONCE,
        tickets=tickets,
        prize_table=EXAMPLE_TABLE,
        gross_sales_cents=EXAMPLE_GROSS,
        rsasp1=rsasp1,
        redraws=redraws,
        embed_tickets=False,
    )
    example = {
        "description": "A complete draw proof made with the RFC 9381 Appendix A 2048-bit test key (never a "
        "production key), nonce 00 01 .. 1f, 12 tickets, three tiers and one redraw; `trace` follows the "
        "selection step by step (docs/draw-proof.md, worked example).",
        "source": SCRIPT,
        "alpha_text": bytes.fromhex(proof["alpha"]).decode("utf-8").replace("\x00", "\\0"),
        "ticket_leaves": [leaf.hex() for leaf in draw_proof.ticket_leaves(tickets)],
        "trace": trace,
        "proof": proof,
    }
    files = {
        "proof-example.json": _dump(example),
        "proof-ticket-file.json": _dump(file_proof),
        draw_proof.tickets_file_name(file_proof): draw_proof.tickets_file_bytes(tickets).decode("utf-8"),
    }
    return files


def generate() -> dict[str, str]:
    files = {
        "stream.json": _dump(stream_vectors()),
        "randbelow.json": _dump(randbelow_vectors()),
        "selection.json": _dump(selection_vectors()),
    }
    files.update(proof_vectors())
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (args.out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
