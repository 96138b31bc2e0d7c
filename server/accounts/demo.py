"""Demo accounts of ``tombola demo`` (``make run``): one person per role, their logins printed.

Passwords are random per installation and kept in ``var/demo-logins.json`` (0600), so a second
``make run`` prints the same logins. The system admin and the auditor have TOTP on (their role
needs it); ``tombola user totp EMAIL`` prints their current code (demo accounts only). The
salesperson is linked to a seller of the demo venue's POS roster, whose PIN is printed too.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from server.accounts import mfa, service
from server.context import Tombola
from server.errors import NotFound
from server.raffles import service as raffles
from server.sellers import service as sellers

DOMAIN = "demo.tombola.local"
#: (role, email's local part)
PEOPLE = (
    ("admin", "admin"),
    ("auditor", "auditor"),
    ("business_admin", "business"),
    ("venue_manager", "manager"),
    ("salesperson", "seller"),
    ("customer", "customer"),
)


def _password() -> str:
    """A random password that meets the policy (upper, lower, digit, symbol; 20 characters)."""
    return "Tmb-" + secrets.token_urlsafe(12) + "7a"


def seed_demo_accounts(app: Tombola, venue_id: str) -> list[dict[str, Any]]:
    """Create the demo accounts that are missing; every demo login (role, email, password, totp)."""
    path = app.settings.home / "demo-logins.json"
    known: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    org_id = raffles.ensure_organisation(app)
    logins = []
    for role, local in PEOPLE:
        email = f"{local}@{DOMAIN}"
        try:
            existing = service.find_user(app, email)
        except NotFound:
            existing = None
        if existing is None:
            entry: dict[str, Any] = {"role": role, "email": email, "password": _password()}
            org = "" if role in ("admin", "auditor", "customer") else org_id
            venues = (venue_id,) if role in ("venue_manager", "salesperson") else ()
            seller_id = ""
            if role == "salesperson":
                entry["pin"] = f"{secrets.randbelow(10_000):04d}"
                seller_id = sellers.add_seller(app, venue_id, "Demo Seller", entry["pin"])["id"]
                entry["seller_id"] = seller_id
            made = service.create_user(
                app,
                email=email,
                password=entry["password"],
                role=role,
                organisation_id=org,
                venue_ids=venues,
                seller_id=seller_id,
                created_by=service.DEMO_ACTOR,
            )
            if role in mfa.MFA_ROLES:
                secret = service.mfa_setup(app, made["id"])["secret"]
                # confirmed with the previous step's code, so the code shown now still logs in
                previous = mfa.code_at(secret, app.now_ms() - mfa.STEP_S * 1000)
                service.mfa_confirm(app, made["id"], previous, start_session=False)
                entry["totp_secret"] = secret
            known[email] = entry
        logins.append(known.get(email, {"role": role, "email": email, "password": "(set before; not known here)"}))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(known, fh, indent=2)
    return logins


def logins_text(logins: list[dict[str, Any]]) -> str:
    """The logins as ``tombola demo`` prints them."""
    lines = []
    for entry in logins:
        extra = ""
        if "totp_secret" in entry:
            extra = f"  TOTP: .venv/bin/tombola user totp {entry['email']}"
        if "pin" in entry:
            extra = f"  POS PIN {entry['pin']} (seller {entry['seller_id']})"
        lines.append(f"  {entry['role']:<15} {entry['email']:<28} {entry['password']}{extra}")
    return "\n".join(lines)
