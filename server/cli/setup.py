"""``tombola init``, ``serve`` and ``demo``: set up an installation, serve it, seed demo data."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import click

from gli_core.api import init_hsm
from server.accounts.demo import logins_text, seed_demo_accounts
from server.cli._common import _emit, json_option, prices_text, with_app
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
        grant_key = _grant_key(app)
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
        "grant_key": grant_key,
        "admin_token_file": str(token_file.resolve()),
        "admin_token_from_env": bool(settings.admin_token),
        "hsm": hsm,
    }
    _emit(result, as_json, lambda: _init_text(result))


def _grant_key(app: Tombola) -> dict[str, str]:
    """The current grant key as enrollment responses list it: what a device pins out of band
    (``tombola-pos enroll CODE --server URL --server-key KEY``, docs/sync-protocol.md section 8)."""
    keys = [k.to_dict() for k in app.core.public_keys()]
    current = app.core.hsm.grant_signer().key_id if app.core.hsm is not None else keys[-1]["key_id"]
    return next((k for k in keys if k["key_id"] == current), keys[-1])


def _init_text(result: dict[str, Any]) -> str:
    hsm, key = result["hsm"], result["grant_key"]
    if result["admin_token_from_env"]:
        admin = f"TOMBOLA_ADMIN_TOKEN (from the environment; {result['admin_token_file']} is not used)"
    else:
        admin = f"in {result['admin_token_file']} (0600; `Authorization: Bearer <token>`)"
    pin = f"; its PIN is in {hsm['pin_file']}" if "pin_file" in hsm else ""
    return (
        f"Tombola is ready in {result['home']}.\n"
        f"  admin token (for /v1/admin/* and the core API): {admin}\n"
        f"  grant key (devices pin it: tombola-pos enroll CODE --server URL --server-key KEY):\n"
        f"    key id     {key['key_id']}\n"
        f"    public key {key['public_key']}\n"
        f"  HSM token: the PKCS#11 token labelled {hsm['token_label']!r} holds the grant, VRF and audit keys{pin}"
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
    logins = seed_demo_accounts(app, venue["id"])  # one person per role (docs/accounts.md)
    kept = _shown(app.settings.home / "demo-logins.json")
    url = app.settings.url()
    key = _grant_key(app)["key_id"]
    pos_db = app.settings.home / "pos-demo.db"
    enrolled_as = _enrolled_device(pos_db)
    result = {
        "venue_id": venue["id"],
        "raffle_id": raffle["id"],
        "code": code["code"],
        "server": url,
        "grant_key": key,
        "logins": logins,
        "pos_db": str(pos_db),
        "pos_db_device_id": enrolled_as,
    }
    db = _shown(pos_db)
    enroll = f"enroll {code['code']} --server {url} --server-key {key}"
    if enrolled_as is None:
        start = f"""Try it (in a second terminal, from this folder):
  .venv/bin/tombola-pos --db {db} {enroll}"""
        second = ""
    else:  # a second `make run`: the demo device is enrolled already; its code would be refused
        start = f"{db} is enrolled already (device {enrolled_as}); go on with it (in a second terminal, here):"
        second = f"""
A second device enrolls with a new file and this run's code:
  .venv/bin/tombola-pos --db {_shown(_free_db_name(pos_db))} {enroll}
"""
    walk = f"""
Demo data: venue {venue["id"]} "Demo Hall", raffle {raffle["id"]} "{raffle["name"]}" ({prices_text(raffle)}).

{start}
  .venv/bin/tombola-pos --db {db} sell --raffle {raffle["id"]} --quantity 5 --payment cash
  .venv/bin/tombola-pos --db {db} status
  .venv/bin/tombola-pos --db {db} sync
  .venv/bin/tombola tickets --raffle {raffle["id"]}
  .venv/bin/tombola report reconciliation --raffle {raffle["id"]}
The POS sells offline: stop the server, keep selling, start it again and sync.
The POS app (Kivy, a window on this desktop; it syncs in the background):
  .venv/bin/tombola-pos --db {db} app

The admin portal: {url}/admin (sign in with a login below; the admin and the auditor are asked
for a TOTP code: print it with the command beside them). The public pages (jackpots, results,
the ticket checker): {url}/

Logins, one per role (the portal, or POST {url}/auth/login with email, password and totp; kept in {kept}):
{logins_text(logins)}

Everything above is in the tamper-evident audit log (docs/audit-log.md):
  .venv/bin/tombola audit tail --limit 5
  .venv/bin/tombola audit checkpoint
  .venv/bin/tombola audit verify
{second}"""
    _emit(result, as_json, walk)


def _enrolled_device(pos_db: Path) -> str | None:
    """The device id of the POS database ``pos_db`` when it is enrolled, else ``None``.

    Read with ``sqlite3`` read-only (the server does not import ``pos_client``): the ``device``
    row of ``docs/pos-client.md``. A missing or unreadable file is not enrolled.
    """
    if not pos_db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{pos_db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT device_id FROM device WHERE id = 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row is not None and row[0] is not None else None


def _free_db_name(pos_db: Path) -> Path:
    """``pos-demo-2.db``, ``pos-demo-3.db``...: the first that does not exist."""
    n = 2
    while (candidate := pos_db.with_name(f"{pos_db.stem}-{n}{pos_db.suffix}")).exists():
        n += 1
    return candidate


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (as the walk-through runs there)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())
