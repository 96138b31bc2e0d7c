"""``tombola access``: API tokens (roles, organisation scope) and break-glass access.

A token is printed once, when it is created; the database keeps only its SHA-256. Creating and
revoking tokens logs ``auth.permission_changed``, break-glass logs ``auth.break_glass``, each in
the transaction of the change, attributed to the operating-system account that ran the command.
See "Access and roles" in ``docs/operations.md``.
"""

from __future__ import annotations

import click

from gli_core.api import current_actor
from server import auth
from server.cli._common import _emit, _iso, json_option, with_app
from server.context import Tombola


@click.group("access")
def access_group() -> None:
    """API tokens, roles and break-glass access."""


@access_group.group("token")
def token_group() -> None:
    """API tokens: each has one role, installation-wide or for one organisation."""


def _scope(tenant: str) -> str:
    return f"organisation {tenant}" if tenant else "installation-wide"


def _expiry(ms: int | None) -> str:
    return "never" if ms is None else _iso(ms)


@token_group.command("create")
@click.option("--name", required=True, help="Who or what uses the token (shown in listings and the audit log).")
@click.option("--role", required=True, type=click.Choice(sorted(auth.ROLES)), help="The token's role.")
@click.option("--tenant", default="", help="Bind the token to this organisation id (default: installation-wide).")
@click.option("--expires-days", type=click.IntRange(min=1), default=None, help="Expire after D days (default: never).")
@json_option
@with_app
def token_create(app: Tombola, name: str, role: str, tenant: str, expires_days: int | None, as_json: bool) -> None:
    """Create a token and print it, once: it cannot be shown again."""
    expires = app.now_ms() + expires_days * 86_400_000 if expires_days is not None else None
    t = auth.create_token(
        app, name=name, role=role, tenant=tenant.strip(), expires_at_ms=expires, created_by=current_actor()
    )
    _emit(
        t,
        as_json,
        lambda: (
            f"token {t['id']} {t['name']!r}: {t['role']}, {_scope(t['tenant'])}, "
            f"expires {_expiry(t['expires_at_ms'])}\n"
            "Store it now; it is not shown again:\n"
            f"{t['token']}"
        ),
    )


@token_group.command("list")
@json_option
@with_app
def token_list(app: Tombola, as_json: bool) -> None:
    """List tokens (never the tokens themselves): role, scope, status, last use."""
    tokens = auth.list_tokens(app)
    _emit(
        tokens,
        as_json,
        lambda: (
            "\n".join(
                f"{t['id']}  {t['status']:<7}  {t['role']:<8}  {_scope(t['tenant'])}  {t['name']!r}  "
                f"expires {_expiry(t['expires_at_ms'])}  last used {_iso(t['last_used_at_ms'])}"
                for t in tokens
            )
            or "no tokens"
        ),
    )


@token_group.command("revoke")
@click.argument("token_id")
@click.option("--reason", required=True, help="Why (kept with the token and in the audit log).")
@json_option
@with_app
def token_revoke(app: Tombola, token_id: str, reason: str, as_json: bool) -> None:
    """Revoke a token: every server process refuses it from its next request on."""
    t = auth.revoke_token(app, token_id, reason=reason, revoked_by=current_actor())
    _emit(t, as_json, f"token {t['id']} revoked at {_iso(t['revoked_at_ms'])}")


@access_group.command("break-glass")
@click.option("--reason", required=True, help="The emergency (required; logged as auth.break_glass).")
@click.option(
    "--minutes",
    type=click.IntRange(1, auth.BREAK_GLASS_MAX_MINUTES),
    default=60,
    show_default=True,
    help="How long the token lasts.",
)
@json_option
@with_app
def break_glass(app: Tombola, reason: str, minutes: int, as_json: bool) -> None:
    """Create a short-lived installation-wide admin token for an emergency, and print it once."""
    t = auth.break_glass(app, reason=reason, minutes=minutes, created_by=current_actor())
    _emit(
        t,
        as_json,
        lambda: (
            f"break-glass token {t['id']}: admin, installation-wide, expires {_expiry(t['expires_at_ms'])}\n"
            "Every use is logged; revoke it when done (tombola access token revoke ID --reason ...):\n"
            f"{t['token']}"
        ),
    )
