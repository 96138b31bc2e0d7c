"""Online sales with Stripe, end to end: the real ``stripe`` SDK against the local stand-in, and
webhooks signed with Stripe's scheme (both backends)."""

from __future__ import annotations

import json
import time

from server.mail import read_outbox
from server.raffles import service as raffles
from tests.server.payments.conftest import Shop, customer_token


def _bought(shop: Shop, quantity: int = 5, request_id: str = "req-0001", email: str = "") -> dict[str, object]:
    answer = shop.buy(quantity, request_id, email=email)
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_purchase_pays_and_tickets_once_with_receipt_and_mail(shop: Shop) -> None:
    body = _bought(shop, 5, email="pat@example.org")
    assert body["state"] == "pending" and body["amount_cents"] == 1000  # the 5-for-10.00 price point
    assert str(body["client_secret"]).startswith(str(body["payment_intent_id"]))
    pi_id = str(body["payment_intent_id"])
    assert shop.stripe.intents[pi_id]["metadata"]["order_id"] == body["order_id"]
    assert shop.tickets() == []  # nothing before the payment

    # a retried request (same request id) is the same order and the same intent
    again = _bought(shop, 5, email="pat@example.org")
    assert again["order_id"] == body["order_id"] and again["payment_intent_id"] == pi_id
    assert len(shop.stripe.intents) == 1

    shop.pay(pi_id)
    created = shop.stripe.event_for("payment_intent.created", pi_id)
    succeeded = shop.stripe.event_for("payment_intent.succeeded", pi_id)
    assert shop.deliver(created).json()["outcome"] == "noted"
    answer = shop.deliver(succeeded)
    assert answer.status_code == 200 and answer.json()["outcome"] == "ticketed"
    assert shop.deliver(succeeded).json()["outcome"] == "duplicate"

    tickets = shop.tickets()
    assert len(tickets) == 5 and {t[1] for t in tickets} == {body["order_id"]}
    order = shop.order(str(body["order_id"]))
    assert order["state"] == "ticketed" and order["mailed_at_ms"] is not None
    receipt = json.loads(order["receipt"])
    raffle = raffles.get_raffle(shop.app, shop.raffle_id)
    assert receipt["raffle_name"] == raffle["name"] and receipt["draw_at_ms"] == raffle["sales_close_at_ms"]
    assert receipt["licence_number"]  # the organisation's licence
    # the same verification codes as the core's, the same scheme as POS tickets
    core_codes = {t.number: t.verification_code for t in shop.app.core.tickets(shop.raffle_id)}
    assert {t["number"]: t["code"] for t in receipt["tickets"]} == core_codes

    mails = read_outbox(shop.app.settings.outbox_dir)
    assert len(mails) == 1 and mails[0]["To"] == "pat@example.org"
    text = mails[0].get_content()
    assert all(t["code"] in text for t in receipt["tickets"]) and raffle["name"] in text

    listed = shop.client.get(f"/users/{shop.customer.removeprefix('user:')}/tickets", headers=shop.headers())
    assert listed.status_code == 200
    orders = listed.json()["orders"]
    assert [o["order_id"] for o in orders] == [body["order_id"]]
    assert sorted(t["number"] for t in orders[0]["tickets"]) == sorted(core_codes)
    assert {t["status"] for t in orders[0]["tickets"]} == {"sold"}

    entries = shop.app.core.audit.entries(type_prefix="order.", after=-1, limit=100)
    types = [json.loads(e[1])["type"] for e in entries]
    assert types == ["order.created", "order.state_changed"]


def test_succeeded_before_created_and_refund_before_success(shop: Shop) -> None:
    """Out of order: success first, then the creation event (changes nothing); and a refund that
    reaches the server before the success: never ticketed."""
    one = _bought(shop, 1, "req-in-order")
    shop.pay(str(one["payment_intent_id"]))
    pi = str(one["payment_intent_id"])
    assert shop.deliver(shop.stripe.event_for("payment_intent.succeeded", pi)).json()["outcome"] == "ticketed"
    assert shop.deliver(shop.stripe.event_for("payment_intent.created", pi)).json()["outcome"] == "noted"
    assert shop.order(str(one["order_id"]))["state"] == "ticketed"

    two = _bought(shop, 1, "req-refund-first")
    pi2 = str(two["payment_intent_id"])
    shop.pay(pi2)
    shop.stripe.refund({"payment_intent": pi2})  # refunded in Stripe's dashboard
    assert shop.deliver(shop.stripe.event_for("charge.refunded", pi2)).json()["outcome"] == "refunded"
    assert shop.deliver(shop.stripe.event_for("payment_intent.succeeded", pi2)).json()["outcome"] == "already_refunded"
    assert [t for t in shop.tickets() if t[1] == two["order_id"]] == []


def test_bad_signature_is_400_coded_and_changes_nothing(shop: Shop) -> None:
    body = _bought(shop, 1)
    shop.pay(str(body["payment_intent_id"]))
    event = shop.stripe.event_for("payment_intent.succeeded", str(body["payment_intent_id"]))
    wrong = shop.deliver(event, secret="whsec_someone_else")
    assert wrong.status_code == 400 and wrong.json()["error"] == "webhook_signature_invalid"
    unsigned = shop.client.post("/stripe/webhook", content=json.dumps(event))
    assert unsigned.status_code == 400 and unsigned.json()["error"] == "webhook_signature_invalid"
    payload = json.dumps(event)
    from tests.support.stripe_standin import signed_headers

    stale = shop.client.post("/stripe/webhook", content=payload, headers=signed_headers(payload, timestamp=1))
    assert stale.status_code == 400 and stale.json()["error"] == "webhook_signature_invalid"
    garbage = "not json"
    bad = shop.client.post("/stripe/webhook", content=garbage, headers=signed_headers(garbage))
    assert bad.status_code == 400 and bad.json()["error"] == "webhook_payload_invalid"
    assert shop.tickets() == [] and shop.order(str(body["order_id"]))["state"] == "pending"
    refused = shop.app.core.audit.entries(type_prefix="payment.webhook_refused", after=-1, limit=100)
    assert len(refused) == 4


def _short_raffle(shop: Shop, close_in_ms: int) -> str:
    """A raffle of the seeded venue whose sales close ``close_in_ms`` from now (server and core)."""
    venue = raffles.get_raffle(shop.app, shop.raffle_id)["venue_id"]
    made = raffles.create_raffle(
        shop.app,
        raffles.RaffleCreate(
            venue_id=venue,
            name="Quick draw",
            price_cents=200,
            number_space=1000,
            sales_close_at_ms=shop.app.now_ms() + close_in_ms,
        ),
    )
    return str(made["id"])


def test_payment_after_close_is_refunded_not_ticketed(shop: Shop) -> None:
    shop.raffle_id = _short_raffle(shop, 1500)
    body = _bought(shop, 5)
    pi = str(body["payment_intent_id"])
    shop.pay(pi)
    time.sleep(1.6)  # the core keeps real time: sales are closed for it too
    shop.app.clock.advance(3000)  # type: ignore[attr-defined]
    answer = shop.deliver(shop.stripe.event_for("payment_intent.succeeded", pi))
    assert answer.json()["outcome"] == "refunded"
    assert shop.tickets() == []
    order = shop.order(str(body["order_id"]))
    assert order["state"] == "refunded" and order["refund_id"] in shop.stripe.refunds
    assert shop.stripe.charges[shop.stripe.intents[pi]["latest_charge"]]["refunded"]
    # Stripe's charge.refunded that follows, and a redelivery, change nothing
    assert shop.deliver(shop.stripe.event_for("charge.refunded", pi)).json()["outcome"] == "already_refunded"
    assert shop.deliver(shop.stripe.event_for("payment_intent.succeeded", pi)).json()["outcome"] == "duplicate"
    assert len(shop.stripe.refunds) == 1
    # and no new purchase after close
    late = shop.buy(1, "req-after-close")
    assert late.status_code == 422 and late.json()["error"] == "sale_after_close"


def _jackpot(shop: Shop) -> int:
    return {r["id"]: r["jackpot_cents"] for r in raffles.public_raffles(shop.app)}[shop.raffle_id]


def test_refund_before_close_voids_the_tickets(shop: Shop) -> None:
    before = _jackpot(shop)
    body = _bought(shop, 5)
    pi = str(body["payment_intent_id"])
    assert _jackpot(shop) == before  # an unpaid order is not in the jackpot
    shop.pay(pi)
    shop.deliver(shop.stripe.event_for("payment_intent.succeeded", pi))
    assert {t[2] for t in shop.tickets()} == {"sold"}
    assert _jackpot(shop) == before + 1000 * 50 // 100  # a ticketed order counts like a POS sale
    shop.stripe.refund({"payment_intent": pi})
    refunded = shop.stripe.event_for("charge.refunded", pi)
    assert shop.deliver(refunded).json()["outcome"] == "voided"
    assert shop.deliver(refunded).json()["outcome"] == "duplicate"
    assert {t[2] for t in shop.tickets()} == {"voided"} and len(shop.tickets()) == 5
    assert shop.order(str(body["order_id"]))["state"] == "voided"
    assert _jackpot(shop) == before  # refunded and voided: out of the jackpot again


def test_purchase_limit_price_rule_and_roles(shop: Shop) -> None:
    shop.app.settings.online_purchase_limit = 6
    _bought(shop, 5, "req-limit-1")
    over = shop.buy(5, "req-limit-2")
    assert over.status_code == 409 and over.json()["error"] == "purchase_limit_reached"
    assert over.json()["limit"] == 6 and over.json()["bought"] == 5
    assert shop.buy(1, "req-limit-3").status_code == 201
    # another customer has a limit of their own
    other, _ = customer_token(shop.app, "someone else")
    assert shop.buy(5, "req-limit-1", token=other).status_code == 201
    # the same request id for another purchase
    reused = shop.buy(2, "req-limit-1")
    assert reused.status_code == 409 and reused.json()["error"] == "purchase_request_reused"
    # the one price rule: 7 singles at 5.00 (no bundle of 7) is 35.00; a bundles-only raffle refuses
    shop.app.settings.online_purchase_limit = 100
    assert _bought(shop, 7, "req-price-7")["amount_cents"] == 3500
    # roles: an admin token is not a customer; the tickets of another user are not found
    admin = shop.client.post(
        f"/raffles/{shop.raffle_id}/purchase",
        json={"quantity": 1, "request_id": "req-admin-1"},
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert admin.status_code == 403 and admin.json()["error"] == "forbidden"
    peek = shop.client.get(f"/users/{shop.customer.removeprefix('user:')}/tickets", headers=shop.headers(other))
    assert peek.status_code == 404 and peek.json()["error"] == "not_found"
    unknown = shop.client.post(
        "/raffles/rf-NOSUCHRAFFLE/purchase", json={"quantity": 1, "request_id": "req-nosuch"}, headers=shop.headers()
    )
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_unconfigured_installation_answers_coded_503(shop: Shop) -> None:
    shop.app.settings.stripe_secret_key = ""
    answer = shop.buy(1, "req-unconfigured")
    assert answer.status_code == 503 and answer.json()["error"] == "online_sales_unconfigured"
