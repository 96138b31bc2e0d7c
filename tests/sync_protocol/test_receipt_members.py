"""RaffleInfo's receipt members (docs/sync-protocol.md section 7) are optional, bounded and kept
as received; the ticket-check URL is built one way for device and server."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.codes import ticket_check_url
from sync_protocol.errors import Malformed
from sync_protocol.messages import RaffleInfo

WIRE: dict[str, Any] = {
    "raffle_id": "rf_1",
    "name": "Friday 50/50",
    "currency": "USD",
    "price_points": [{"quantity": 1, "amount_cents": 500}],
    "sales_open_at_ms": 0,
    "sales_close_at_ms": 1,
    "status": "open",
}
MEMBERS: dict[str, Any] = {
    "organisation": "Lions Club",
    "licence_number": "RAF-1",
    "results_url": "https://c.example/r",
    "claim_by_ms": 2,
    "check_url": "https://t.example/check",
}


def test_an_answer_without_the_members_still_parses_and_stays_without_them() -> None:
    info = RaffleInfo.from_dict(WIRE)
    assert (info.organisation, info.licence_number, info.results_url, info.claim_by_ms, info.check_url) == (None,) * 5
    assert info.to_dict() == WIRE


def test_the_members_round_trip() -> None:
    assert RaffleInfo.from_dict(WIRE | MEMBERS).to_dict() == WIRE | MEMBERS


@pytest.mark.parametrize(
    "bad",
    [
        {"organisation": "o" * 201},
        {"licence_number": "l" * 65},
        {"results_url": "h" * 501},
        {"check_url": "https://t.example/\x00"},
        {"claim_by_ms": -1},
        {"claim_by_ms": 2**53},
    ],
)
def test_members_out_of_bounds_are_malformed(bad: dict[str, Any]) -> None:
    with pytest.raises(Malformed) as info:
        RaffleInfo.from_dict(WIRE | bad)
    assert info.value.extra["field"] == next(iter(bad))


def test_the_check_url_example_of_the_docs() -> None:
    assert (
        ticket_check_url("https://t.example/check", "rf_1", 42, "7K3M-Q9TX")
        == "https://t.example/check?raffle=rf_1&number=42&code=7K3M-Q9TX"
    )
    assert ticket_check_url("https://t.example/c?lang=fr", "r", 1, "C").startswith(
        "https://t.example/c?lang=fr&raffle="
    )


@given(raffle_id=st.text(min_size=1, max_size=64), number=st.integers(1, 2**31 - 1))
def test_the_check_url_carries_the_ticket_back(raffle_id: str, number: int) -> None:
    query = parse_qs(
        urlsplit(ticket_check_url("https://t.example/check", raffle_id, number, "7K3M-Q9TX")).query,
        keep_blank_values=True,
    )
    assert query == {"raffle": [raffle_id], "number": [str(number)], "code": ["7K3M-Q9TX"]}
