"""Winner selection: exact stream consumption (vectors with a drift test), determinism,
distinctness, tiers, 50/50 rounding, redraws, and no bias (chi-square, scipy)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from gli_core.draw import selection
from gli_core.draw.selection import (
    STREAM_DOMAIN,
    Drawer,
    DrawInputInvalid,
    DrawStream,
    DrawTicket,
    NotEnoughTickets,
    RedrawRequest,
    Tier,
    parse_prize_table,
    randbelow,
    redraw,
    select,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DRAW_VECTORS = VECTORS / "draw"
GENERATOR = VECTORS / "generate_draw_vectors.py"
ONE_PRIZE = [{"tier": "prize", "count": 1, "kind": "fixed", "amount_cents": 100}]


def beta_of(label: str | int) -> bytes:
    return hashlib.sha256(str(label).encode()).digest()


def tickets(numbers: range | list[int]) -> list[DrawTicket]:
    return [DrawTicket(n, f"t-{n}", f"s-{n}") for n in numbers]


class FixedStream(DrawStream):
    """A stream that serves given bytes, to check exactly what randbelow reads."""

    def __init__(self, data: bytes) -> None:
        super().__init__(b"\x00" * 32)
        self._data = data

    def read(self, size: int) -> bytes:
        start = self.consumed
        self._consumed = start + size
        chunk = self._data[start : start + size]
        assert len(chunk) == size, "read past the given bytes"
        return chunk


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_draw_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the stream and randbelow -----------------------------------------------------------------


def test_stream_vectors() -> None:
    data = json.loads((DRAW_VECTORS / "stream.json").read_text())
    for case in data["cases"]:
        beta = bytes.fromhex(case["beta"])
        expected = bytes.fromhex(case["first_64_bytes"])
        assert hashlib.shake_256(STREAM_DOMAIN + beta).digest(64) == expected
        stream = DrawStream(beta)
        pieces = [stream.read(size) for size in (1, 2, 3, 5, 8, 13, 32)]  # across buffer refills
        assert b"".join(pieces) == expected and stream.consumed == 64


def test_stream_reads_far_and_in_order() -> None:
    beta = beta_of("far")
    stream = DrawStream(beta)
    data = b"".join(stream.read(7) for _ in range(1000))
    assert data == hashlib.shake_256(STREAM_DOMAIN + beta).digest(7000)


def test_randbelow_vectors() -> None:
    data = json.loads((DRAW_VECTORS / "randbelow.json").read_text())
    stream = DrawStream(bytes.fromhex(data["beta"]))
    for step in data["steps"]:
        before = stream.consumed
        assert randbelow(stream, step["n"]) == step["value"]
        assert stream.consumed - before == step["bytes_read"]
        assert stream.consumed == step["consumed"]


@pytest.mark.parametrize(
    ("n", "data", "value", "consumed"),
    [
        (1, b"", 0, 0),  # nothing to choose: no byte read
        (2, b"\xff", 1, 1),  # 1 bit: the low bit of one byte
        (256, b"\xab", 0xAB, 1),
        (257, b"\x01\x01\x00\x05", 5, 4),  # 9 bits of 2 bytes: 0x101 = 257 rejected, then 5
        (257, b"\xfe\x01", 1, 2),  # 0xfe01 & 0x1ff = 1: the 7 high bits are masked off
        (5, b"\xff\x06\x0d\x04", 4, 4),  # 7, 6, 5 rejected, then 4
        (5, b"\xf9", 1, 1),  # the high bits of the byte are masked off
        (2**40 + 1, bytes(6), 0, 6),  # 41 bits: 6 bytes
        (2**40, b"\xff" * 5, 2**40 - 1, 5),  # 40 bits: 5 bytes, all values valid
    ],
)
def test_randbelow_reads_exactly(n: int, data: bytes, value: int, consumed: int) -> None:
    stream = FixedStream(data)
    assert randbelow(stream, n) == value
    assert stream.consumed == consumed


def test_randbelow_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError):
        randbelow(DrawStream(beta_of(0)), 0)


# --- vectors and drift ------------------------------------------------------------------------


def _case_numbers(case: dict[str, Any]) -> list[int]:
    if isinstance(case["ticket_numbers"], list):
        return case["ticket_numbers"]
    assert case["ticket_numbers"]["formula"] == "n * 1009 + 17 for n in 0..69999"
    return [n * 1009 + 17 for n in range(70_000)]


@pytest.mark.parametrize(
    "case", json.loads((DRAW_VECTORS / "selection.json").read_text())["cases"], ids=lambda c: c["name"]
)
def test_selection_vector(case: dict[str, Any]) -> None:
    numbers = _case_numbers(case)
    ts = [DrawTicket(n, f"ticket-{n:04d}", f"sale-{n // 3:04d}") for n in numbers]
    requests = [RedrawRequest(**r) for r in case["redraw_requests"]]
    sel = select(
        bytes.fromhex(case["beta"]),
        ts,
        case["prize_table"],
        gross_sales_cents=case["gross_sales_cents"],
        redraws=requests,
    )
    got = [
        {"tier": w.tier, "position": w.position, "ticket_number": w.ticket.number, "amount_cents": w.amount_cents}
        for w in sel.winners
    ]
    assert got == case["winners"]
    got_redraws = [
        {
            "tier": r.tier,
            "position": r.position,
            "replaced_ticket_number": r.replaced.number,
            "ticket_number": r.ticket.number,
            "amount_cents": r.amount_cents,
        }
        for r in sel.redraws
    ]
    assert got_redraws == case["redraws"]
    assert sel.stream_bytes == case["stream_bytes"]


def test_vectors_drift(tmp_path: Path) -> None:
    """The committed vectors are exactly what the generator writes (a changed algorithm shows)."""
    _generator().main(["--out", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in DRAW_VECTORS.iterdir())
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (DRAW_VECTORS / name).read_bytes(), f"{name} drifted"


# --- determinism, distinctness, tiers ---------------------------------------------------------


def test_the_same_inputs_give_the_same_winners() -> None:
    ts = tickets(range(1, 1001))
    table = [
        {"tier": "a", "count": 3, "kind": "fixed", "amount_cents": 1},
        {"tier": "b", "count": 4, "kind": "fixed", "amount_cents": 2},
    ]
    first = select(beta_of("same"), ts, table, gross_sales_cents=0)
    assert select(beta_of("same"), list(ts), table, gross_sales_cents=0) == first
    assert select(beta_of("other"), ts, table, gross_sales_cents=0).winners != first.winners


@given(
    count=st.integers(min_value=1, max_value=60),
    tier_counts=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4),
    label=st.integers(),
    redraw_count=st.integers(min_value=0, max_value=4),
)
@settings(max_examples=150, deadline=None)
def test_winners_are_distinct_and_in_tier_order(
    count: int, tier_counts: list[int], label: int, redraw_count: int
) -> None:
    ts = tickets([n * 3 + 1 for n in range(count)])
    table = [{"tier": f"t{i}", "count": c, "kind": "fixed", "amount_cents": i} for i, c in enumerate(tier_counts)]
    beta = beta_of(label)
    if sum(tier_counts) > count:
        with pytest.raises(NotEnoughTickets):
            select(beta, ts, table, gross_sales_cents=0)
        return
    sel = select(beta, ts, table, gross_sales_cents=0)
    assert [w.position for w in sel.winners] == list(range(sum(tier_counts)))
    assert [w.tier for w in sel.winners] == [f"t{i}" for i, c in enumerate(tier_counts) for _ in range(c)]
    requests: list[RedrawRequest] = []
    for r in range(min(redraw_count, count - sum(tier_counts))):
        holder = sel.holders[r % len(sel.holders)]
        sel = redraw(
            beta,
            ts,
            table,
            gross_sales_cents=0,
            previous_redraws=requests,
            tier=holder.tier,
            replaced_ticket_number=holder.ticket.number,
            reason="declined",
        )
        requests.append(RedrawRequest(holder.tier, holder.ticket.number, "declined"))
    chosen = [w.ticket for w in sel.winners] + [r.ticket for r in sel.redraws]
    assert len(set(chosen)) == len(chosen)
    assert all(t in ts for t in chosen)
    assert len(set(h.ticket for h in sel.holders)) == len(sel.holders) == sum(tier_counts)


def test_drawing_every_ticket_is_a_permutation() -> None:
    drawer = Drawer(beta_of("perm"), 500)
    positions = [drawer.next_position() for _ in range(500)]
    assert sorted(positions) == list(range(500))
    with pytest.raises(NotEnoughTickets):
        drawer.next_position()


def test_fifty_fifty_is_floored_to_the_cent() -> None:
    ts = tickets(range(1, 11))
    table = [
        {"tier": "50/50", "count": 1, "kind": "percent_of_sales", "percent": 50},
        {"tier": "third", "count": 2, "kind": "percent_of_sales", "percent": 33},
        {"tier": "car", "count": 1, "kind": "fixed", "amount_cents": 0},
    ]
    sel = select(beta_of(1), ts, table, gross_sales_cents=12345)
    assert [w.amount_cents for w in sel.winners] == [6172, 4073, 4073, 0]  # 6172.5 and 4073.85 rounded down
    assert select(beta_of(1), ts, table, gross_sales_cents=0).winners[0].amount_cents == 0


@pytest.mark.parametrize(
    "table",
    [
        [],
        [{"tier": "a", "count": 0, "kind": "fixed", "amount_cents": 1}],
        [{"tier": "a", "count": True, "kind": "fixed", "amount_cents": 1}],
        [{"tier": "a", "count": 1, "kind": "fixed", "amount_cents": -1}],
        [{"tier": "a", "count": 1, "kind": "fixed", "amount_cents": 1.5}],
        [{"tier": "a", "count": 1, "kind": "fixed"}],
        [{"tier": "a", "count": 1, "kind": "fixed", "amount_cents": 1, "percent": 5}],
        [{"tier": "a", "count": 1, "kind": "percent_of_sales", "percent": 0}],
        [{"tier": "a", "count": 1, "kind": "percent_of_sales", "percent": 101}],
        [{"tier": "a", "count": 1, "kind": "jackpot", "amount_cents": 1}],
        [{"tier": "", "count": 1, "kind": "fixed", "amount_cents": 1}],
        [{"tier": "a", "count": 1, "kind": "fixed", "amount_cents": 1}] * 2,
        ["a"],
    ],
)
def test_bad_prize_tables_are_refused(table: list[Any]) -> None:
    with pytest.raises(DrawInputInvalid):
        parse_prize_table(table)


def test_prize_table_round_trips() -> None:
    table = [
        {"tier": "a", "count": 2, "kind": "fixed", "amount_cents": 7},
        {"tier": "b", "count": 1, "kind": "percent_of_sales", "percent": 50},
    ]
    assert [t.to_dict() for t in parse_prize_table(table)] == table
    assert parse_prize_table([Tier("x", 1, "fixed", amount_cents=1)])[0].tier == "x"


@pytest.mark.parametrize(
    "numbers",
    [[2, 1], [1, 1], [1, 2, 2, 3], [-1, 2], [1, 2**53], [1.0, 2]],
    ids=["desc", "dup", "dup2", "neg", "big", "float"],
)
def test_tickets_must_be_sorted_unique_numbers(numbers: list[Any]) -> None:
    ts = [DrawTicket(n, f"t{i}", "s") for i, n in enumerate(numbers)]
    with pytest.raises(DrawInputInvalid):
        select(beta_of(0), ts, ONE_PRIZE, gross_sales_cents=0)


def test_not_enough_tickets() -> None:
    with pytest.raises(NotEnoughTickets):
        select(beta_of(0), [], ONE_PRIZE, gross_sales_cents=0)
    table = [{"tier": "p", "count": 3, "kind": "fixed", "amount_cents": 1}]
    ts = tickets([1, 2, 3])
    sel = select(beta_of(0), ts, table, gross_sales_cents=0)
    with pytest.raises(NotEnoughTickets):
        redraw(
            beta_of(0),
            ts,
            table,
            gross_sales_cents=0,
            previous_redraws=[],
            tier="p",
            replaced_ticket_number=sel.winners[0].ticket.number,
            reason="declined",
        )


def test_bad_inputs() -> None:
    ts = tickets([1, 2, 3])
    with pytest.raises(DrawInputInvalid):
        select(b"short", ts, ONE_PRIZE, gross_sales_cents=0)
    with pytest.raises(DrawInputInvalid):
        select(beta_of(0), ts, ONE_PRIZE, gross_sales_cents=-1)
    with pytest.raises(DrawInputInvalid):
        RedrawRequest("prize", 1, "  ")


# --- redraws ----------------------------------------------------------------------------------


def test_a_redraw_continues_the_same_stream_after_the_original_draw() -> None:
    ts = tickets(range(1, 101))
    table = [
        {"tier": "grand", "count": 1, "kind": "fixed", "amount_cents": 1000},
        {"tier": "small", "count": 2, "kind": "fixed", "amount_cents": 10},
    ]
    beta = beta_of("redraw")
    original = select(beta, ts, table, gross_sales_cents=0)
    drawer = Drawer(beta, len(ts))
    sequence = [ts[drawer.next_position()] for _ in range(5)]
    assert [w.ticket for w in original.winners] == sequence[:3]

    declined = original.winners[1]
    one = redraw(
        beta,
        ts,
        table,
        gross_sales_cents=0,
        previous_redraws=[],
        tier="small",
        replaced_ticket_number=declined.ticket.number,
        reason="declined",
    )
    assert one.winners == original.winners  # redraws never change the original draw
    (r,) = one.redraws
    assert (r.index, r.position, r.replaced, r.ticket, r.reason, r.amount_cents) == (
        0,
        3,
        declined.ticket,
        sequence[3],
        "declined",
        10,
    )
    assert one.holders[1].ticket == sequence[3] and one.holders[1].position == 3
    assert one.stream_bytes >= original.stream_bytes

    # The redraw winner can be replaced in turn; the original winner cannot be replaced twice.
    previous = [RedrawRequest("small", declined.ticket.number, "declined")]
    two = redraw(
        beta,
        ts,
        table,
        gross_sales_cents=0,
        previous_redraws=previous,
        tier="small",
        replaced_ticket_number=sequence[3].number,
        reason="unclaimed",
    )
    assert two.redraws[1].ticket == sequence[4] and two.redraws[1].replaced == sequence[3]
    with pytest.raises(DrawInputInvalid, match="holds no prize"):
        redraw(
            beta,
            ts,
            table,
            gross_sales_cents=0,
            previous_redraws=previous,
            tier="small",
            replaced_ticket_number=declined.ticket.number,
            reason="again",
        )
    with pytest.raises(DrawInputInvalid, match="holds no prize"):  # right ticket, wrong tier
        redraw(
            beta,
            ts,
            table,
            gross_sales_cents=0,
            previous_redraws=[],
            tier="grand",
            replaced_ticket_number=declined.ticket.number,
            reason="declined",
        )


# --- no bias ----------------------------------------------------------------------------------

SIGNIFICANCE = 1e-4  # fixed betas make every p-value below a fixed number; this only flags real bias


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7, 10, 12, 100, 257])
def test_randbelow_is_uniform(n: int) -> None:
    stream = DrawStream(beta_of(f"uniform-{n}"))
    samples = 400 * n if n < 100 else 100 * n
    counts = Counter(randbelow(stream, n) for _ in range(samples))
    assert set(counts) == set(range(n))
    assert stats.chisquare([counts[v] for v in range(n)]).pvalue > SIGNIFICANCE


def test_the_chi_square_check_would_see_modulo_bias() -> None:
    stream = DrawStream(beta_of("modulo"))
    counts = Counter(stream.read(1)[0] % 100 for _ in range(40_000))  # what rejection sampling avoids
    assert stats.chisquare([counts[v] for v in range(100)]).pvalue < 1e-10


@pytest.mark.parametrize("n", [7, 10, 33])
def test_every_ticket_is_equally_likely_to_win_each_prize(n: int) -> None:
    draws = 1000 * n // 2
    first: Counter[int] = Counter()
    third: Counter[int] = Counter()
    for i in range(draws):
        drawer = Drawer(beta_of(f"fair-{n}-{i}"), n)
        first[drawer.next_position()] += 1
        drawer.next_position()
        third[drawer.next_position()] += 1
    for counts in (first, third):
        assert stats.chisquare([counts[p] for p in range(n)]).pvalue > SIGNIFICANCE


def test_every_order_of_four_tickets_is_equally_likely() -> None:
    orders: Counter[tuple[int, ...]] = Counter()
    for i in range(24 * 400):
        drawer = Drawer(beta_of(f"order-{i}"), 4)
        orders[tuple(drawer.next_position() for _ in range(4))] += 1
    assert len(orders) == 24
    assert stats.chisquare(list(orders.values())).pvalue > SIGNIFICANCE


def test_winners_through_select_are_uniform() -> None:
    ts = tickets([5, 9, 11, 20, 21, 22, 40, 41])
    table = [{"tier": "a", "count": 2, "kind": "fixed", "amount_cents": 1}]
    pairs: Counter[tuple[int, int]] = Counter()
    for i in range(56 * 150):
        sel = select(beta_of(f"select-{i}"), ts, table, gross_sales_cents=0)
        pairs[(sel.winners[0].ticket.number, sel.winners[1].ticket.number)] += 1
    assert len(pairs) == 56  # every ordered pair of distinct tickets
    assert stats.chisquare(list(pairs.values())).pvalue > SIGNIFICANCE


def test_the_draw_modules_never_use_python_random() -> None:
    for module in ("selection", "vrf", "proof", "verify"):
        path = Path(selection.__file__).with_name(f"{module}.py")
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names} | {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert "random" not in imported and "secrets" not in imported, module
