"""``tombola user`` (accounts) and ``tombola approval`` (two-person requests).

Each handler calls the one service function of its change (:mod:`server.accounts.service`,
:mod:`server.accounts.approvals`), attributed to the operating-system account that ran the
command, except where the two-person rule needs a *person*: ``approval`` commands that ask or
approve log the person in first (``--as EMAIL``, the password on stdin, ``--totp``), exactly as
``POST /auth/login`` does. A password is only ever read from stdin (``--password-stdin``), never
from an argument, so it stays out of shell history and process listings. See docs/accounts.md.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from gli_core.api import current_actor
from server.accounts import approvals, service, tokens
from server.auth import ROLES, Principal
from server.cli._common import _emit, _iso, json_option, with_app
from server.context import Tombola
from server.errors import InvalidRequest


def _password_from_stdin() -> str:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if not password:
        raise InvalidRequest("no password on stdin: pipe it in (printf '%s\\n' \"$PASSWORD\" | tombola ...)")
    return password


def _user_id(app: Tombola, who: str) -> str:
    """A user's id from its id or its email address."""
    return str(service.find_user(app, who)["id"] if "@" in who else service.get_user(app, who)["id"])


def _line(u: dict[str, Any]) -> str:
    scope = u["organisation_id"] or ("no organisation" if u["role"] == "customer" else "installation-wide")
    venues = f" venues {','.join(u['venue_ids'])}" if u["venue_ids"] else ""
    flags = " mfa" if u["mfa"] else ""
    flags += f" break-glass until {_iso(u['break_glass_until_ms'])}" if u["break_glass_until_ms"] else ""
    flags += f" seller {u['seller_id']}" if u["seller_id"] else ""
    return f"{u['id']}  {u['status']:<8}  {u['role'] or '-':<14}  {u['email']}  {scope}{venues}{flags}"


@click.group("user")
def user_group() -> None:
    """Accounts of people: create, list, change role, disable, reset TOTP, link a salesperson."""


@user_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(sorted(ROLES)), help="The account's role.")
@click.option(
    "--org", "organisation_id", default="", help="Its organisation (required but for admin, auditor, customer)."
)
@click.option("--venue", "venue_ids", multiple=True, help="A venue of a venue manager or salesperson (repeatable).")
@click.option("--seller", "seller_id", default="", help="A salesperson's seller of the POS roster (its PIN).")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from the first line of stdin.")
@json_option
@with_app
def user_create(
    app: Tombola,
    email: str,
    role: str,
    organisation_id: str,
    venue_ids: tuple[str, ...],
    seller_id: str,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create an account (the password must meet the policy: 8+ characters, upper, lower, digit, symbol)."""
    made = service.create_user(
        app,
        email=email,
        password=_password_from_stdin(),
        role=role,
        organisation_id=organisation_id,
        venue_ids=venue_ids,
        seller_id=seller_id,
        created_by=current_actor(),
    )
    note = "\nIt sets up TOTP at its first login (mfa_setup_required)." if role in ("admin", "auditor") else ""
    _emit(made, as_json, lambda: f"created {_line(made)}{note}")


@user_group.command("list")
@click.option("--org", "organisation_id", default=None, help="Only the accounts of this organisation.")
@json_option
@with_app
def user_list(app: Tombola, organisation_id: str | None, as_json: bool) -> None:
    """List accounts (never a password hash nor a TOTP secret)."""
    users = service.list_users(app, organisation_id=organisation_id)
    _emit(users, as_json, lambda: "\n".join(_line(u) for u in users) or "no accounts")


@user_group.command("role")
@click.argument("user")
@click.option("--role", required=True, type=click.Choice(sorted(ROLES)))
@click.option("--org", "organisation_id", default="")
@click.option("--venue", "venue_ids", multiple=True)
@json_option
@with_app
def user_role(
    app: Tombola, user: str, role: str, organisation_id: str, venue_ids: tuple[str, ...], as_json: bool
) -> None:
    """Replace the account's role (USER: id or email); it applies from its next request."""
    changed = service.set_role(
        app, _user_id(app, user), role=role, organisation_id=organisation_id, venue_ids=venue_ids, by=current_actor()
    )
    _emit(changed, as_json, lambda: f"changed {_line(changed)}")


@user_group.command("disable")
@click.argument("user")
@click.option("--reason", required=True, help="Why (kept and logged).")
@json_option
@with_app
def user_disable(app: Tombola, user: str, reason: str, as_json: bool) -> None:
    """Disable an account: its logins end and its tokens stop at their next request."""
    done = service.disable_user(app, _user_id(app, user), reason=reason, by=current_actor())
    _emit(done, as_json, lambda: f"disabled {_line(done)}")


@user_group.command("enable")
@click.argument("user")
@json_option
@with_app
def user_enable(app: Tombola, user: str, as_json: bool) -> None:
    """Enable a disabled account again."""
    done = service.enable_user(app, _user_id(app, user), by=current_actor())
    _emit(done, as_json, lambda: f"enabled {_line(done)}")


@user_group.command("mfa-reset")
@click.argument("user")
@json_option
@with_app
def user_mfa_reset(app: Tombola, user: str, as_json: bool) -> None:
    """Remove the account's TOTP (a lost phone) and end its logins; it sets TOTP up again."""
    done = service.mfa_reset(app, _user_id(app, user), by=current_actor())
    _emit(done, as_json, lambda: f"TOTP removed: {_line(done)}")


@user_group.command("link-seller")
@click.argument("user")
@click.argument("seller_id")
@json_option
@with_app
def user_link_seller(app: Tombola, user: str, seller_id: str, as_json: bool) -> None:
    """Link a salesperson's account to its seller of the venue's POS roster (the PIN stays apart)."""
    done = service.link_seller(app, _user_id(app, user), seller_id, by=current_actor())
    _emit(done, as_json, lambda: f"linked {_line(done)}")


@user_group.command("totp")
@click.argument("email")
@with_app
def user_totp(app: Tombola, email: str) -> None:
    """Print the current TOTP code of a demo account (``tombola demo`` made it); refused for others."""
    click.echo(service.demo_totp_code(app, email))


# --- two-person requests -------------------------------------------------------------------------


def _person(app: Tombola, email: str, totp: str | None) -> Principal:
    """Log ``email`` in (password on stdin) as ``POST /auth/login`` does, and return the person."""
    answer = service.login(app, email, _password_from_stdin(), totp=totp, client="cli")
    return tokens.principal_of(app, answer["access_token"])


def _approval_line(a: dict[str, Any]) -> str:
    return (
        f"{a['id']}  {a['status']:<8}  {a['kind']:<11}  asked by {a['requested_by']} at {_iso(a['requested_at_ms'])}: "
        f"{a['reason']!r} {a['subject']}" + (f"  decided by {a['decided_by']} {a['result']}" if a["decided_by"] else "")
    )


as_option = click.option("--as", "email", required=True, help="Your account (password on stdin).")
totp_option = click.option("--totp", default=None, help="Your current TOTP code.")


@click.group("approval")
def approval_group() -> None:
    """Two-person requests: break-glass access and extensions above a venue's cap."""


@approval_group.command("list")
@click.option("--pending", is_flag=True, help="Only requests waiting for a decision.")
@json_option
@with_app
def approval_list(app: Tombola, pending: bool, as_json: bool) -> None:
    """List two-person requests, newest first."""
    found = approvals.list_approvals(app, pending_only=pending)
    _emit(found, as_json, lambda: "\n".join(_approval_line(a) for a in found) or "no requests")


@approval_group.command("break-glass")
@as_option
@totp_option
@click.option("--reason", required=True)
@click.option("--minutes", type=click.IntRange(1, 240), default=60, show_default=True)
@json_option
@with_app
def approval_break_glass(app: Tombola, email: str, totp: str | None, reason: str, minutes: int, as_json: bool) -> None:
    """Ask for the GLI-admin role for up to four hours; another admin approves it."""
    asked = approvals.request_break_glass(app, _person(app, email, totp), reason=reason, minutes=minutes)
    _emit(asked, as_json, lambda: f"asked: {_approval_line(asked)}\nA second system admin approves it.")


@approval_group.command("extension")
@click.argument("device_id")
@click.option("--raffle", "raffle_id", required=True)
@click.option("--numbers", type=click.IntRange(1, 100_000), required=True)
@click.option("--reason", required=True)
@as_option
@totp_option
@json_option
@with_app
def approval_extension(
    app: Tombola, device_id: str, raffle_id: str, numbers: int, reason: str, email: str, totp: str | None, as_json: bool
) -> None:
    """An emergency extension: issued at once up to the venue's cap, else asked of a second admin."""
    done = approvals.request_extension(app, _person(app, email, totp), device_id, raffle_id, numbers, reason)
    _emit(
        done,
        as_json,
        lambda: (
            f"granted {done['grant']['first_number']}-{done['grant']['last_number']}"
            if done["status"] == "granted"
            else f"above the venue's cap: {_approval_line(done['approval'])}"
        ),
    )


@approval_group.command("approve")
@click.argument("approval_id")
@as_option
@totp_option
@json_option
@with_app
def approval_approve(app: Tombola, approval_id: str, email: str, totp: str | None, as_json: bool) -> None:
    """Approve another person's request, as a system admin."""
    done = approvals.approve(app, approval_id, _person(app, email, totp))
    _emit(done, as_json, lambda: _approval_line(done))


@approval_group.command("deny")
@click.argument("approval_id")
@click.option("--reason", required=True)
@as_option
@totp_option
@json_option
@with_app
def approval_deny(app: Tombola, approval_id: str, reason: str, email: str, totp: str | None, as_json: bool) -> None:
    """Deny another person's request, as a system admin."""
    done = approvals.deny(app, approval_id, _person(app, email, totp), reason=reason)
    _emit(done, as_json, lambda: _approval_line(done))


@approval_group.command("cap")
@click.argument("venue_id")
@click.option("--cap", type=click.IntRange(0, 10_000_000), default=None, help="Numbers; leave out to lift the cap.")
@json_option
@with_app
def approval_cap(app: Tombola, venue_id: str, cap: int | None, as_json: bool) -> None:
    """Set the venue's extension cap: a bigger extension needs a second admin."""
    done = approvals.set_extension_cap(app, venue_id, cap, by=current_actor())
    _emit(done, as_json, lambda: f"venue {venue_id}: cap {done['cap'] if done['cap'] is not None else 'none'}")
