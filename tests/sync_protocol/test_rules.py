"""The shared rules (sync_protocol.rules) and money (sync_protocol.money) on plain values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol import rules
from sync_protocol.money import MINOR_UNITS, format_money, is_currency
from sync_protocol.rules import RaffleTerms

TERMS = RaffleTerms("rf-1", "USD", {1: 500, 5: 2000, 30: 5000}, 1000, 2000, "open")


@pytest.mark.parametrize(
    ("quantity", "bundles_only", "amount"),
    [
        *[(1, False, 500), (3, False, 1500), (5, False, 2000), (6, False, 3000), (30, False, 5000), (0, False, None)],
        *[(1, True, 500), (3, True, None), (5, True, 2000), (6, True, None)],
    ],
)
def test_sale_amount_is_a_price_point_or_singles(quantity: int, bundles_only: bool, amount: int | None) -> None:
    terms = RaffleTerms("rf-1", "USD", {1: 500, 5: 2000, 30: 5000}, 0, 1, "open", bundles_only=bundles_only)
    assert rules.sale_amount(terms, quantity) == amount


def test_no_single_price_sells_only_the_price_points() -> None:
    terms = RaffleTerms("rf-1", "USD", {5: 2000}, 0, 1, "open")
    assert (rules.sale_amount(terms, 5), rules.sale_amount(terms, 1), rules.sale_amount(terms, 10)) == (
        2000,
        None,
        None,
    )
    refusal = rules.check_price(terms, 1, None, "USD")
    assert refusal is not None and refusal.code == "amount_mismatch" and "no single-ticket price" in refusal.detail


def test_check_price_names_the_amounts_in_money() -> None:
    refusal = rules.check_price(TERMS, 3, 777, "USD")
    assert refusal is not None and refusal.code == "amount_mismatch"
    assert refusal.detail == "3 ticket(s) of raffle rf-1 cost 15.00 USD, not 7.77 USD"
    assert rules.check_price(TERMS, 3, 1500, "usd") is None
    assert rules.check_price(TERMS, 3, 1500, "EUR") is not None


@pytest.mark.parametrize(
    ("at", "status", "code"),
    [
        *[(999, "open", "sale_before_open"), (1000, "scheduled", None), (1999, "closed", None)],
        *[(2000, "open", "sale_after_close"), (1500, "cancelled", "sale_after_close")],
    ],
)
def test_the_sales_window_is_open_inclusive_close_exclusive(at: int, status: str, code: str | None) -> None:
    """A raffle's ``closed`` status is not consulted: a server closes by moving the close time."""
    terms = RaffleTerms("rf-1", "USD", {1: 500}, 1000, 2000, status)
    verdict = rules.check_window(terms, at)
    assert (verdict.code if verdict else None) == code


def test_a_void_is_refused_at_and_after_close_only() -> None:
    assert rules.check_void_terms(TERMS, at_ms=1999, elapsed_ms=0, lease_s=1) is None
    late = rules.check_void_terms(TERMS, at_ms=2000, elapsed_ms=0, lease_s=1)
    assert late is not None and late.code == "sale_after_close" and "stays in the draw" in late.detail
    lease = rules.check_void_terms(TERMS, at_ms=1500, elapsed_ms=1001, lease_s=1)
    assert lease is not None and lease.code == "lease_expired"


def test_lease_and_grant_edges() -> None:
    assert rules.check_lease(8 * 3_600_000, 8 * 3600) is None
    assert rules.check_lease(8 * 3_600_000 + 1, 8 * 3600) is not None
    assert rules.check_grant([1, 10, 20], [(1, 10), (20, 20)]) is None
    outside = rules.check_grant([1, 11], [(1, 10)])
    assert outside is not None and outside.code == "outside_grant" and outside.extra == {"number": 11}


def test_terms_of_a_raffle_info_without_bundles_only() -> None:
    from sync_protocol.messages import PricePoint, RaffleInfo

    info = RaffleInfo(
        raffle_id="r",
        name="n",
        currency="EUR",
        price_points=[PricePoint(quantity=1, amount_cents=500)],
        sales_open_at_ms=0,
        sales_close_at_ms=1,
        status="open",
    )
    assert RaffleTerms.of(info) == RaffleTerms("r", "EUR", {1: 500}, 0, 1, "open", bundles_only=False)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        *[(1500, "USD", "15.00 USD"), (5, "EUR", "0.05 EUR"), (-1, "USD", "-0.01 USD"), (1500, "JPY", "1500 JPY")],
        *[(1500, "KWD", "1.500 KWD"), (7, "XYZ", "7 minor units of XYZ")],
    ],
)
def test_format_money(amount: int, currency: str, text: str) -> None:
    assert format_money(amount, currency) == text


def test_iso_4217_codes() -> None:
    assert all(is_currency(c) for c in ("USD", "EUR", "CAD", "JPY", "GBP"))
    assert not any(is_currency(c) for c in ("EURO", "usd", "XYZ", "XAU", "", "US"))
    assert MINOR_UNITS["USD"] == 2 and MINOR_UNITS["JPY"] == 0


@given(amount=st.integers(-(10**12), 10**12), currency=st.sampled_from(sorted(MINOR_UNITS)))
def test_money_text_gives_the_amount_back(amount: int, currency: str) -> None:
    number, code = format_money(amount, currency).split(" ")
    assert code == currency
    assert int(number.replace(".", "").replace("-", "")) == abs(amount)
