"""Online sales with Stripe: orders, PaymentIntents, webhooks, receipts (``docs/online-sales.md``).

- :mod:`.service` - the purchase and the webhook's state machine (the one path of each change);
- :mod:`.stripe_api` - the calls to Stripe through the ``stripe`` SDK (create, retrieve, refund);
- :mod:`.endpoints` - ``POST /raffles/{id}/purchase``, ``POST /stripe/webhook``,
  ``GET /users/{id}/tickets``;
- :mod:`.models` - the ``online_order`` and ``stripe_event`` tables (migration 0010);
- :mod:`.errors` - the codes of this part (``docs/errors.md``).
"""
