"""``parse_ticket_check_url`` is the inverse of ``ticket_check_url`` (hypothesis), refuses what is
not one ticket's URL with ``bad_check_url``; ``codes_match`` accepts what people type only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.codes import BadCheckUrl, codes_match, parse_ticket_check_url, ticket_check_url, ticket_code

raffle_ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=64).filter(
    lambda s: s.strip() == s and s.strip()
)
pages = st.sampled_from(
    ["https://t.example/check", "https://t.example/check?lang=en", "http://10.0.0.5:8000/check", "/check"]
)


hashes = st.text("0123456789abcdef", min_size=64, max_size=64)


@given(page=pages, raffle_id=raffle_ids, number=st.integers(0, 2**53 - 1), hash_=hashes)
def test_the_url_comes_back_as_its_three_values(page: str, raffle_id: str, number: int, hash_: str) -> None:
    code = ticket_code(raffle_id, number, hash_)
    ref = parse_ticket_check_url("  " + ticket_check_url(page, raffle_id, number, code) + "\n")
    assert (ref.raffle_id, ref.number, ref.code) == (raffle_id, number, code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "https://t.example/check",
        "https://t.example/check?raffle=r&number=1",
        "https://t.example/check?raffle=r&number=1&code=",
        "https://t.example/check?raffle=r&number=-1&code=AAAA-AAAA",
        "https://t.example/check?raffle=r&number=1.5&code=AAAA-AAAA",
        "https://t.example/check?raffle=r&number=%D9%A1&code=AAAA-AAAA",  # an Arabic-Indic digit
        f"https://t.example/check?raffle=r&number={2**53}&code=AAAA-AAAA",
        "https://t.example/check?raffle=r&raffle=s&number=1&code=AAAA-AAAA",
        "https://t.example/check?raffle=" + "r" * 65 + "&number=1&code=AAAA-AAAA",
        "https://t.example/check?raffle=r&number=1&code=" + "A" * 33,
        "https://t.example/check?" + "x" * 3000,
        "7K3M-Q9TX",
    ],
)
def test_what_is_not_one_tickets_url_is_refused_with_a_code(text: str) -> None:
    with pytest.raises(BadCheckUrl) as info:
        parse_ticket_check_url(text)
    assert info.value.code == "bad_check_url" and info.value.detail


def test_codes_match_as_typed_and_nothing_else() -> None:
    code = "7K3M-Q9TX"
    assert codes_match(code, code) and codes_match("7k3mq9tx", code) and codes_match(" 7K3M Q9TX", code)
    assert codes_match("7K3M-Q9TX".replace("0", "O"), code)
    assert not codes_match("7K3M-Q9TY", code) and not codes_match("", code) and not codes_match("7K3M-Q9T", code)
    assert not codes_match("7K3M-Q9TXÄ", code) and not codes_match("\uff17K3M-Q9TX", code)  # a full-width 7
