"""``tombola init``, ``serve`` and ``demo``: set up an installation, serve it, seed demo data."""

from __future__ import annotations

import os
import secrets

import click

from gli_core.api import init_hsm
from server.cli._common import _emit, json_option, with_app
from server.config import Settings
from server.context import Tombola
from server.enrollment import service as enrollment
from server.raffles import service as raffles


@click.command()
@json_option
def init(as_json: bool) -> None:
    """Create var/, the HSM token (embedded SoftHSM2: var/hsm/, PIN in var/hsm/pin) and its keys,
    migrate both databases and create the admin token (idempotent)."""
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    hsm_config = settings.hsm_config()
    token = init_hsm(hsm_config)
    try:
        hsm = token.token_info() | {"keys": [k.to_dict() for k in token.public_keys()]}
    finally:
        token.close()
    pin_file = hsm_config.pin_file or hsm_config.embedded_pin_file
    if not hsm_config.pin and pin_file is not None and pin_file.exists():
        hsm["pin_file"] = str(pin_file.resolve())
    app = Tombola.open(settings)
    try:
        org_id = raffles.ensure_organisation(app)
        keys = [k.to_dict() for k in app.core.public_keys()]
    finally:
        app.close()
    token_file = settings.admin_token_file
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    result = {
        "home": str(settings.home.resolve()),
        "organisation_id": org_id,
        "server_keys": keys,
        "admin_token_file": str(token_file.resolve()),
        "hsm": hsm,
    }
    _emit(
        result,
        as_json,
        f"Tombola is ready in {result['home']} (token {hsm['token_label']!r}, grant key {keys[-1]['key_id']}).",
    )


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=1, type=int, help="Server processes (PostgreSQL only for more than one).")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API (devices, admin, core tickets)."""
    import uvicorn

    settings = Settings()
    Tombola.open(settings).close()  # migrate once before the workers start
    uvicorn.run(
        "server.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@click.command()
@json_option
@with_app
def demo(app: Tombola, as_json: bool) -> None:
    """Seed a demo venue and 50/50 raffle and print a fresh enrollment code with a walk-through."""
    venue = next((v for v in raffles.list_venues(app) if v["name"] == "Demo Hall"), None)
    venue = venue or raffles.create_venue(app, "Demo Hall")
    raffle = next((r for r in raffles.list_raffles(app, venue["id"]) if r["status"] == "open"), None)
    if raffle is None:
        raffle = raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=venue["id"],
                name="Demo 50/50",
                price_cents=500,
                number_space=1_000_000,
                sales_close_at_ms=app.now_ms() + 12 * 3600 * 1000,
                bundles=((5, 1000), (30, 2000)),
            ),
        )
    code = enrollment.create_enrollment_code(app, venue["id"])
    url = app.settings.url()
    result = {"venue_id": venue["id"], "raffle_id": raffle["id"], "code": code["code"], "server": url}
    walk = f"""
Demo data: venue {venue["id"]} "Demo Hall", raffle {raffle["id"]} "{raffle["name"]}" (1 for $5, 5 for $10, 30 for $20).

Try it (in a second terminal, from this folder):
  .venv/bin/tombola-pos --db var/pos-demo.db enroll {code["code"]} --server {url}
  .venv/bin/tombola-pos --db var/pos-demo.db sell --raffle {raffle["id"]} --quantity 5 --payment cash
  .venv/bin/tombola-pos --db var/pos-demo.db status
  .venv/bin/tombola-pos --db var/pos-demo.db sync
  .venv/bin/tombola tickets --raffle {raffle["id"]}
  .venv/bin/tombola report reconciliation --raffle {raffle["id"]}
The POS sells offline: stop the server, keep selling, start it again and sync.

Everything above is in the tamper-evident audit log (docs/audit-log.md):
  .venv/bin/tombola audit tail --limit 5
  .venv/bin/tombola audit checkpoint
  .venv/bin/tombola audit verify
"""
    _emit(result, as_json, walk)

