"""Online orders in the reports (SQLite and PostgreSQL): the sales report counts what the 50/50
jackpot counts (a hypothesis property over random POS sales, voids and orders in random states:
the report's valid gross is the public list's jackpot base), and a purchase through the real
``stripe`` SDK against the local stand-in shows up as device and payment method ``online``, its
refund's numbers in the voided-numbers report with their verification codes."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from server.auth import INSTALLATION_ADMIN
from server.context import Tombola
from server.payments.models import ORDER_STATES
from server.raffles import service as raffles
from server.reports import service
from tests.server.payments.conftest import Shop
from tests.server.payments.conftest import shop as shop  # the fixture
from tests.server.payments.conftest import stripe_standin as stripe_standin  # the fixture
from tests.server.reports.test_reports import METHODS, _insert, _raffle, _sale
from tests.support.app import ADMIN_TOKEN, HOUR_MS, Seed

ORDER = service.ORDER
BASE = 1_767_225_600_000  # 2026-01-01T00:00Z


def _order(raffle_id: str, tenant: str, qty: int, amount: int, state: str, kept: bool, at: int) -> dict[str, object]:
    """An order row as the online-sales service leaves it in ``state``: tickets once it made some
    (ticketed, voided; refunded after close with its tickets kept when ``kept``)."""
    made = state in ("ticketed", "voided") or (state == "refunded" and kept)
    tickets = [{"number": 900_000 + i, "code": f"C{i:05d}"} for i in range(qty)] if made else []
    return {
        "id": uuid.uuid4().hex[:32],
        "customer": "user:buyer",
        "request_id": uuid.uuid4().hex,
        "raffle_id": raffle_id,
        "tenant": tenant,
        "quantity": qty,
        "amount_cents": amount,
        "currency": "USD",
        "state": state,
        "tickets": json.dumps(tickets),
        "created_at_ms": at,
        "updated_at_ms": at + 60_000,
    }


def _jackpot_base(app: Tombola, raffle_id: str) -> int:
    """The public list's jackpot of a 50/50 raffle, which is half its valid gross (exact for even sums)."""
    (row,) = [r for r in raffles.public_raffles(app) if r["id"] == raffle_id]
    assert row["share_percent"] == 50
    return int(row["jackpot_cents"]) * 2


pos_sales = st.lists(
    st.tuples(
        st.integers(1, 30),
        st.integers(0, 25_000).map(lambda c: c * 2),
        st.sampled_from(METHODS),
        st.booleans(),
        st.sampled_from(["accepted", "accepted", "rejected"]),
    ),
    max_size=15,
)
orders = st.lists(
    st.tuples(
        st.integers(1, 30), st.integers(0, 25_000).map(lambda c: c * 2), st.sampled_from(ORDER_STATES), st.booleans()
    ),
    max_size=15,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=pos_sales, online=orders, group_by=st.sampled_from(service.GROUP_BY))
def test_report_gross_is_the_jackpot_base(
    tombola: Tombola,
    seeded: Seed,
    pos: list[tuple[int, int, str, bool, str]],
    online: list[tuple[int, int, str, bool]],
    group_by: str,
) -> None:
    raffle_id = _raffle(tombola, seeded.venue_id)
    tenant = raffles.get_venue(tombola, seeded.venue_id)["organisation_id"]
    sales = [
        _sale(raffle_id, f"d-{raffle_id}", i + 1, q, a, method=m, at=BASE + i, voided=v and s == "accepted", status=s)
        for i, (q, a, m, v, s) in enumerate(pos)
    ]
    if sales:
        _insert(tombola, sales)
    rows = [_order(raffle_id, tenant, q, a, st_, k, BASE + i * HOUR_MS) for i, (q, a, st_, k) in enumerate(online)]
    if rows:
        with tombola.engine.begin() as conn:
            conn.execute(insert(ORDER), rows)

    accepted = [s for s in sales if s["status"] == "accepted"]
    made = [o for o in rows if o["tickets"] != "[]"]
    valid = sum(int(s["amount_cents"]) for s in accepted if not s["voided"])  # type: ignore[call-overload]
    valid += sum(int(o["amount_cents"]) for o in made if o["state"] == "ticketed")  # type: ignore[call-overload]
    gross = sum(int(r["amount_cents"]) for r in accepted + made)  # type: ignore[call-overload]

    rep = service.sales(tombola, INSTALLATION_ADMIN, group_by=group_by, raffle=raffle_id)
    totals = rep["totals"]
    assert (totals["gross_cents"], totals["net_cents"]) == (gross, valid)
    assert totals["sales"] == len(accepted) + len(made)
    assert totals["tickets"] == sum(int(r["quantity"]) for r in accepted + made)  # type: ignore[call-overload]
    assert totals["refunded_sales"] == sum(1 for o in made if o["state"] == "refunded")
    assert totals["net_cents"] == _jackpot_base(tombola, raffle_id)  # the report and the jackpot agree
    if group_by == "device" and made:
        (online_row,) = [r for r in rep["rows"] if r["group"] == service.ONLINE]
        assert online_row["sales"] == len(made)


def test_a_stripe_purchase_and_refund_in_the_reports(shop: Shop, tombola: Tombola, seeded: Seed) -> None:
    _insert(tombola, [_sale(shop.raffle_id, "d1", 1, 5, 1000, seller="s1")])
    kept = shop.buy(5, "req-kept").json()
    refunded = shop.buy(1, "req-refunded").json()
    for order in (kept, refunded):
        shop.pay(order["payment_intent_id"])
        shop.deliver(shop.stripe.event_for("payment_intent.succeeded", order["payment_intent_id"]))
    shop.stripe.refund({"payment_intent": refunded["payment_intent_id"]})
    answer = shop.deliver(shop.stripe.event_for("charge.refunded", refunded["payment_intent_id"]))
    assert answer.json()["outcome"] == "voided"

    by_method = service.sales(tombola, INSTALLATION_ADMIN, group_by="payment_method", raffle=shop.raffle_id)
    online = {r["group"]: r for r in by_method["rows"]}[service.ONLINE]
    assert (online["sales"], online["tickets"], online["gross_cents"]) == (2, 6, 1000 + 500)
    assert (online["voided_sales"], online["voided_tickets"], online["voided_cents"]) == (1, 1, 500)
    assert online["net_cents"] == 1000
    assert by_method["totals"]["net_cents"] == 2000 == _jackpot_base(tombola, shop.raffle_id)
    by_seller = service.sales(tombola, INSTALLATION_ADMIN, group_by="seller", raffle=shop.raffle_id)
    assert [(r["group"], r["sales"]) for r in by_seller["rows"]] == [("s1", 1), (None, 2)]  # no seller online
    by_device = service.sales(tombola, INSTALLATION_ADMIN, group_by="device", raffle=shop.raffle_id)
    assert {r["group"] for r in by_device["rows"]} == {"d1", service.ONLINE}
    by_hour = service.sales(tombola, INSTALLATION_ADMIN, group_by="hour", raffle=shop.raffle_id)
    assert sum(r["sales"] for r in by_hour["rows"]) == 3

    voided = service.voided_numbers(tombola, INSTALLATION_ADMIN, raffle=shop.raffle_id)
    order = shop.order(refunded["order_id"])
    assert [(r["number"], r["verification_code"]) for r in voided["rows"]] == [
        (t["number"], t["code"]) for t in json.loads(order["tickets"])
    ]
    (row,) = voided["rows"]
    assert row["status"] == "voided" and row["sale_id"] == refunded["order_id"]
    assert (row["device_id"], row["voided_by"]) == (service.ONLINE, service.ORDER_ACTOR)
    assert row["reason"] == order["reason"] and row["voided_at"]
    # the HTTP API answers the same, also as CSV
    http = shop.client.get(
        "/reports/voided-numbers", params={"raffle": shop.raffle_id}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert http.status_code == 200 and http.json() == voided
