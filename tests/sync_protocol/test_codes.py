"""Ticket verification codes: XXXX-XXXX in Crockford base32, and what people type."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.codes import normalise_code, ticket_code, ticket_codes
from tests.sync_protocol.strategies import hex64, ids, relaxed

CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
numbers = st.integers(min_value=1, max_value=10**9)


@relaxed
@given(ids, numbers, hex64)
def test_format(raffle_id: str, number: int, record_hash: str) -> None:
    code = ticket_code(raffle_id, number, record_hash)
    assert CODE.fullmatch(code), code
    assert ticket_code(raffle_id, number, record_hash) == code


@relaxed
@given(ids, numbers, hex64)
def test_depends_on_every_input(raffle_id: str, number: int, record_hash: str) -> None:
    code = ticket_code(raffle_id, number, record_hash)
    other_hash = ("1" if record_hash[0] != "1" else "2") + record_hash[1:]
    assert ticket_code(raffle_id, number + 1, record_hash) != code
    assert ticket_code(raffle_id + "x", number, record_hash) != code
    assert ticket_code(raffle_id, number, other_hash) != code


@relaxed
@given(ids, numbers, hex64, st.data())
def test_normalise_accepts_what_people_type(raffle_id: str, number: int, record_hash: str, data: st.DataObject) -> None:
    code = ticket_code(raffle_id, number, record_hash)
    assert normalise_code(code) == code
    assert normalise_code(code.lower()) == code
    assert normalise_code(code.replace("-", "")) == code
    assert normalise_code(code.lower().replace("-", "")) == code
    assert normalise_code(f" {code[:2]} {code[2:]} ") == code
    look_alikes = {"0": ["O", "o"], "1": ["I", "i", "L", "l"]}
    typed = "".join(data.draw(st.sampled_from([ch, ch.lower(), *look_alikes.get(ch, [])])) for ch in code)
    assert normalise_code(typed) == code


@relaxed
@given(st.text(max_size=12))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise_code(text)
    assert normalise_code(once) == once


def test_normalise_leaves_wrong_lengths_alone() -> None:
    assert normalise_code("abc") == "abc"
    assert normalise_code("ABCD-EFGH-J") == "ABCD-EFGH-J"


@relaxed
@given(
    ids | st.text(max_size=12),
    st.lists(numbers | st.integers(-(2**60), 2**60) | st.booleans(), max_size=6),
    hex64 | st.text(max_size=12),
)
def test_codes_of_a_sale_are_each_ticket_code(raffle_id: str, nums: list[int], record_hash: str) -> None:
    """The batch form (canonical bytes from a template) gives exactly :func:`ticket_code` each."""
    try:
        expected = [ticket_code(raffle_id, n, record_hash) for n in nums]
    except Exception as exc:
        with pytest.raises(type(exc)):
            ticket_codes(raffle_id, nums, record_hash)
        return
    assert ticket_codes(raffle_id, nums, record_hash) == expected
