"""The ticket leaf inputs: the packed encoder for tickets whose ids share one length gives exactly
the bytes of the per-ticket encoder (the leaf layout of ``docs/draw-proof.md``), and tickets it
does not handle fall back to the per-ticket encoder and its refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core import merkle
from gli_core.draw import proof as proofs
from gli_core.draw.selection import MAX_JSON_INT, DrawInputInvalid, DrawTicket, TicketList

PER_TICKET = b"\x00%b%c%b%c%b%b"


def per_ticket(tickets: list[DrawTicket]) -> list[bytes]:
    """The leaf inputs formatted one ticket at a time (the reference encoder)."""
    return proofs._format(TicketList(tickets), PER_TICKET)


def uniform_tickets(draw: st.DrawFn) -> list[DrawTicket]:
    id_len = draw(st.integers(1, 255))
    sale_len = draw(st.integers(1, 255))
    count = draw(st.integers(1, 30))
    numbers = sorted(draw(st.sets(st.integers(0, MAX_JSON_INT), min_size=count, max_size=count)))
    ids = draw(st.lists(st.binary(min_size=id_len, max_size=id_len), min_size=count, max_size=count))
    sales = draw(st.lists(st.binary(min_size=sale_len, max_size=sale_len), min_size=count, max_size=count))
    amounts = draw(st.lists(st.integers(0, MAX_JSON_INT), min_size=count, max_size=count))
    # latin-1 keeps each byte a character; bytes >= 0x80 become two UTF-8 bytes, so the lengths
    # may differ again (then the per-ticket path runs): both paths are exercised
    return [
        DrawTicket(n, i.decode("latin-1"), s.decode("latin-1"), a)
        for n, i, s, a in zip(numbers, ids, sales, amounts, strict=True)
    ]


@settings(max_examples=300, deadline=None)
@given(st.composite(uniform_tickets)())
def test_packed_leaf_inputs_are_the_per_ticket_bytes(tickets: list[DrawTicket]) -> None:
    try:
        expected = per_ticket(tickets)
    except DrawInputInvalid as exc:  # an id over 255 UTF-8 bytes: refused alike
        with pytest.raises(DrawInputInvalid) as refused:
            proofs.ticket_leaf_inputs(tickets)
        assert refused.value.detail == exc.detail
        return
    assert proofs.ticket_leaf_inputs(tickets) == expected
    assert proofs.ticket_leaves(tickets) == [leaf[1:] for leaf in expected]
    assert proofs.ticket_root(tickets) == merkle.root(list(map(merkle.leaf_hash, proofs.ticket_leaves(tickets))))


def test_the_packed_path_runs_for_uuid_shaped_ids() -> None:
    tickets = TicketList(
        DrawTicket(n, f"{n:08x}-0000-7000-8000-{n:012x}", f"{n // 2:08x}-aaaa-7000-8000-000000000000", 499 + n % 2)
        for n in range(1, 200)
    )
    packed = proofs._pack_uniform(tickets, ">x")
    assert packed is not None and packed == per_ticket(list(tickets))
    assert packed[0][:1] == b"\x00" and packed[0][9] == 36 and len(packed[0]) == 1 + 8 + 37 + 37 + 8


@pytest.mark.parametrize(
    "tickets",
    [
        [DrawTicket(1, "a", "s", 1), DrawTicket(2, "bb", "s", 1)],  # two id lengths
        [DrawTicket(1, "a", "s", 1), DrawTicket(2, "b", "ss", 1)],  # two sale id lengths
        [DrawTicket(1, "\u00e9" * 128, "s", 1)],  # 256 UTF-8 bytes: not packed, refused
        [DrawTicket(1, "\ud800", "s", 1)],  # not encodable: not packed, refused
    ],
)
def test_other_tickets_take_the_per_ticket_path(tickets: list[DrawTicket]) -> None:
    assert proofs._pack_uniform(TicketList(tickets), ">x") is None
    try:
        expected = per_ticket(tickets)
    except DrawInputInvalid as exc:
        with pytest.raises(DrawInputInvalid) as refused:
            proofs.ticket_leaf_inputs(tickets)
        assert refused.value.detail == exc.detail
    else:
        assert proofs.ticket_leaf_inputs(tickets) == expected
