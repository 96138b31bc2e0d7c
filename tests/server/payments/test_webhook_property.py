"""Property: no sequence of webhook deliveries (duplicates, reorderings, refunds in between) ever
puts more tickets on record than were paid for, or tickets of an order whose payment did not
succeed; each order is ticketed whole or not at all, and refunded at most once."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.payments.conftest import Shop

_run = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    quantities=st.lists(st.sampled_from([1, 2, 5]), min_size=1, max_size=3),
    paid=st.lists(st.booleans(), min_size=3, max_size=3),
    refunded=st.lists(st.booleans(), min_size=3, max_size=3),
    deliveries=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=14),
)
def test_no_delivery_sequence_allocates_more_than_paid(
    shop: Shop, quantities: list[int], paid: list[bool], refunded: list[bool], deliveries: list[int]
) -> None:
    shop.app.settings.online_purchase_limit = 100_000
    run = next(_run)
    orders = []
    for i, quantity in enumerate(quantities):
        body = shop.buy(quantity, f"prop-{run}-{i}").json()
        pi = body["payment_intent_id"]
        if paid[i]:
            shop.pay(pi)
            if refunded[i]:
                shop.stripe.refund({"payment_intent": pi})
        orders.append((body["order_id"], pi, quantity))
    ours = {pi for _, pi, _ in orders}
    events = [
        e
        for e in shop.stripe.events
        if ours & {e["data"]["object"].get("id"), e["data"]["object"].get("payment_intent")}
    ]
    for i in deliveries:
        answer = shop.deliver(events[i % len(events)])
        assert answer.status_code == 200, answer.text

    on_record: dict[str, int] = {}
    for _, sale_id, _ in shop.tickets():
        on_record[sale_id] = on_record.get(sale_id, 0) + 1
    for i, (order_id, pi, quantity) in enumerate(orders):
        tickets = on_record.get(order_id, 0)
        assert tickets in (0, quantity)  # whole or nothing, never more than paid
        if tickets:
            assert shop.stripe.intents[pi]["status"] == "succeeded"
        state = shop.order(order_id)["state"]
        assert (state in ("ticketed", "voided")) == (tickets == quantity)
        if not paid[i]:
            assert state == "pending" and tickets == 0
    refunds_per_intent: dict[str, int] = {}
    for refund in shop.stripe.refunds.values():
        refunds_per_intent[refund["payment_intent"]] = refunds_per_intent.get(refund["payment_intent"], 0) + 1
    assert all(n == 1 for n in refunds_per_intent.values())
