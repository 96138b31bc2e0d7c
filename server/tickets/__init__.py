"""The public ticket check (``GET /v1/tickets/check``): anyone holding a receipt asks whether its ticket counts."""
