"""Every route of the app x every role x (own tenant, other tenant): who is let in.

The expected rules are one table, :data:`RULES`, keyed by ``(METHOD, path)`` as FastAPI lists the
route. The test walks the app's routes (so a new route without a row fails, named in the
message), and for each role logs in a person of that role (a fresh login per request, since some
calls end their login) and sends the request once with the ids of its own organisation's
resources and once with another organisation's. A body, when the route takes one, is ``{}``: the
role rule is judged before the body, so a role let in gets a 422 (or does the thing), never 401/403.

* let in: the answer is not 401 nor 403;
* kept out, own tenant: 401 or 403;
* kept out, other tenant: 403 or 404 (``not_found``: another tenant's resource is never revealed).

The principals: ``admin`` is the installation-wide system admin; ``business_admin``,
``venue_manager`` (of venue A), ``salesperson`` (of venue A) and ``auditor`` are bound to
organisation A; ``customer`` belongs to no organisation (it buys from any).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import insert

from server.accounts import service, tokens
from server.app import create_app
from server.auth import ROLES
from server.context import Tombola, new_id
from server.enrollment import service as enrollment
from server.models import Approval
from server.raffles import service as raffles
from server.sellers import service as sellers
from tests.server.accounts.helpers import bearer, organisation, user
from tests.simulators.device import RawDevice
from tests.support.app import Seed

ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})
MANAGERS = frozenset({"admin", "business_admin"})
FLOOR = frozenset({"admin", "business_admin", "venue_manager"})
REPORTS = frozenset({"admin", "business_admin", "auditor", "venue_manager"})
AUDIT = frozenset({"admin", "auditor"})


@dataclass(frozen=True)
class Rule:
    """Who is let in: ``roles`` on its own tenant's resources; of those, ``cross`` also on another
    tenant's (the installation-wide admin by default). ``public``: no token needed at all."""

    roles: frozenset[str] = ALL
    cross: frozenset[str] = ADMIN
    public: bool = False
    #: the ``user_id`` of the path is the caller itself (own) or a user of the other tenant
    user_is_self: bool = False
    #: a listing: on another tenant's resource it may also answer 200 showing nothing
    lists: bool = False
    #: the body to send (default ``{}``) where the route judges the tenant after the body
    body: dict[str, Any] | None = None
    why: str = field(default="", compare=False)


PUBLIC = Rule(public=True, cross=ALL)
ANY_PERSON = Rule(roles=ALL, cross=ALL)

#: The access rule of every route. A new route needs a row here (the test names what is missing).
RULES: dict[tuple[str, str], Rule] = {
    # framework and public pages
    ("GET", "/openapi.json"): PUBLIC,
    ("*", "/static-offline-docs"): PUBLIC,
    ("*", "/static"): PUBLIC,  # the portal's and public pages' stylesheet and htmx
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/raffles"): PUBLIC,
    ("GET", "/jurisdictions"): PUBLIC,
    ("GET", "/v1/tickets/check"): PUBLIC,
    ("GET", "/tickets/check"): PUBLIC,
    ("GET", "/check"): PUBLIC,
    ("GET", "/draws"): PUBLIC,
    ("GET", "/draws/{raffle_id}"): PUBLIC,
    ("GET", "/draws/{raffle_id}/proof"): PUBLIC,
    # devices authenticate by their signature, Stripe by its webhook signature
    ("POST", "/v1/devices/enroll"): PUBLIC,
    ("POST", "/v1/sync"): PUBLIC,
    ("POST", "/stripe/webhook"): PUBLIC,
    # accounts
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("POST", "/auth/password/reset"): PUBLIC,
    ("POST", "/auth/password/reset/confirm"): PUBLIC,
    ("POST", "/auth/logout"): ANY_PERSON,
    ("POST", "/auth/password/change"): ANY_PERSON,
    ("GET", "/auth/me"): ANY_PERSON,
    ("POST", "/auth/mfa/setup"): ANY_PERSON,
    ("POST", "/auth/mfa/confirm"): ANY_PERSON,
    ("POST", "/v1/users"): Rule(MANAGERS),
    ("GET", "/v1/users"): Rule(MANAGERS),
    ("PUT", "/v1/users/{user_id}/role"): Rule(MANAGERS),
    ("POST", "/v1/users/{user_id}/disable"): Rule(MANAGERS),
    ("POST", "/v1/users/{user_id}/mfa-reset"): Rule(MANAGERS),
    ("POST", "/v1/break-glass"): Rule(MANAGERS),
    ("GET", "/v1/approvals"): Rule(ADMIN),
    ("POST", "/v1/approvals/{approval_id}/approve"): Rule(ADMIN),
    ("POST", "/v1/approvals/{approval_id}/deny"): Rule(ADMIN),
    ("PUT", "/v1/admin/venues/{venue_id}/extension-cap"): Rule(ADMIN),
    ("POST", "/v1/admin/devices/{device_id}/extension-requests"): Rule(ADMIN),
    # the installation's admin API (issue 4): system admins only
    ("POST", "/v1/ingest"): Rule(ADMIN),
    ("POST", "/v1/admin/venues"): Rule(ADMIN),
    ("POST", "/v1/admin/raffles"): Rule(ADMIN),
    ("GET", "/v1/admin/raffles"): Rule(ADMIN),
    ("POST", "/v1/admin/raffles/{raffle_id}/close"): Rule(ADMIN),
    ("GET", "/v1/admin/raffles/{raffle_id}/reconciliation"): Rule(ADMIN),
    ("POST", "/v1/admin/venues/{venue_id}/enrollment-codes"): Rule(ADMIN),
    ("GET", "/v1/admin/devices"): Rule(ADMIN),
    ("GET", "/v1/admin/devices/{device_id}/events"): Rule(ADMIN),
    ("POST", "/v1/admin/devices/{device_id}/revoke"): Rule(ADMIN),
    ("POST", "/v1/admin/devices/{device_id}/extend"): Rule(ADMIN),
    ("POST", "/v1/admin/raffles/{raffle_id}/cancel"): Rule(ADMIN),
    ("POST", "/v1/admin/devices/{device_id}/void-remainder"): Rule(ADMIN),
    ("POST", "/v1/admin/venues/{venue_id}/sellers"): Rule(ADMIN),
    ("GET", "/v1/admin/venues/{venue_id}/sellers"): Rule(ADMIN),
    ("POST", "/v1/admin/sellers/{seller_id}/disable"): Rule(ADMIN),
    ("POST", "/raffle/{raffle_id}/tickets/generate"): Rule(ADMIN),
    # raffle management (business API)
    ("POST", "/admin/raffles"): Rule(MANAGERS),
    ("GET", "/admin/raffles"): Rule(FLOOR, lists=True),
    ("GET", "/admin/raffles/{raffle_id}"): Rule(FLOOR),
    ("PATCH", "/admin/raffles/{raffle_id}"): Rule(MANAGERS),
    ("POST", "/admin/raffles/{raffle_id}/open"): Rule(FLOOR),
    ("POST", "/admin/raffles/{raffle_id}/close"): Rule(FLOOR),
    ("POST", "/admin/raffles/{raffle_id}/cancel"): Rule(MANAGERS, body={"reason": "access table"}),
    # online sales
    ("POST", "/raffles/{raffle_id}/purchase"): Rule(frozenset({"customer"}), cross=frozenset({"customer"})),
    ("GET", "/users/{user_id}/tickets"): Rule(
        frozenset({"customer", "admin", "business_admin"}), user_is_self=True, lists=True
    ),
    # reports
    ("GET", "/reports/sales"): Rule(REPORTS),
    ("GET", "/reports/drawing"): Rule(REPORTS),
    ("GET", "/reports/exceptions"): Rule(REPORTS),
    ("GET", "/reports/voided-numbers"): Rule(REPORTS),
    ("GET", "/reports/device-events"): Rule(REPORTS),
    # the core's own API (operators' systems) and its audit log
    ("POST", "/core/tickets/generate"): Rule(ADMIN),
    ("POST", "/core/tickets/batch-generate"): Rule(ADMIN),
    ("GET", "/core/tickets/{ticket_id}/validate"): Rule(ADMIN),
    ("GET", "/core/tickets/raffle/{raffle_id}"): Rule(ADMIN),
    ("PUT", "/core/tickets/{ticket_id}/status"): Rule(ADMIN),
    ("POST", "/core/draw/initiate"): Rule(ADMIN),
    ("POST", "/core/draw/execute"): Rule(ADMIN),
    ("GET", "/core/draw/{raffle_id}/status"): Rule(ADMIN),
    ("GET", "/core/draw/{raffle_id}/results"): Rule(ADMIN),
    ("GET", "/core/draw/{raffle_id}/proof"): Rule(ADMIN),
    ("POST", "/core/draw/{raffle_id}/cancel"): Rule(ADMIN),
    ("GET", "/core/audit/checkpoint"): Rule(AUDIT),
    ("POST", "/core/audit/checkpoint"): Rule(AUDIT),
    ("GET", "/core/audit/checkpoints"): Rule(AUDIT),
    ("GET", "/core/audit/entries"): Rule(AUDIT),
    ("GET", "/core/audit/entries/{index}"): Rule(AUDIT),
    ("GET", "/core/audit/proof/inclusion"): Rule(AUDIT),
    ("GET", "/core/audit/proof/consistency"): Rule(AUDIT),
}

#: path and query parameters that name a resource of a tenant
TENANT_PARAMS = {"raffle_id", "venue_id", "device_id", "seller_id", "user_id", "raffle", "device"}


def app_routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route the app serves (``*`` for a mount)."""
    found = []
    for context in iter_route_contexts(app.routes):
        endpoint = getattr(context.original_route, "endpoint", None)
        if getattr(endpoint, "__module__", "").startswith("admin."):
            continue  # HTML pages of the portal (cookie sessions): their table is tests/portal/test_access.py
        methods = sorted(context.methods or []) or ["*"]
        if "GET" in methods and "HEAD" in methods:
            methods.remove("HEAD")
        for method in methods:
            found.append((method, str(context.path), context.original_route))
    return found


def test_every_route_has_a_rule(tombola: Tombola) -> None:
    served = {(m, p) for m, p, _ in app_routes(create_app(tombola=tombola))}
    missing = sorted(served - set(RULES))
    assert not missing, (
        "routes without an access rule in tests/server/accounts/test_route_access.py RULES "
        "(add a row: who may call it, and whether another tenant's resource is seen):\n"
        + "\n".join(f'    ("{m}", "{p}"): Rule(...),' for m, p in missing)
    )
    stale = sorted(set(RULES) - served)
    assert not stale, f"rules of routes the app no longer serves (remove them): {stale}"


@dataclass
class World:
    own: dict[str, str]
    other: dict[str, str]
    users: dict[str, str]  # role -> user id


def world(app: Tombola, client: TestClient, seeded: Seed) -> World:
    org_a = raffles.get_venue(app, seeded.venue_id)["organisation_id"]
    org_b, venue_b = organisation(app, "Other")
    raffle_b = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=venue_b,
            name="Other 50/50",
            price_cents=500,
            number_space=10_000,
            sales_close_at_ms=app.now_ms() + 3_600_000,
        ),
    )["id"]
    device_a, device_b = RawDevice(), RawDevice()
    device_a.enroll(client, seeded.code)
    device_b.enroll(client, enrollment.create_enrollment_code(app, venue_b)["code"])
    seller_a = sellers.add_seller(app, seeded.venue_id, "Ann", "1234")["id"]
    seller_b = sellers.add_seller(app, venue_b, "Bob", "1234")["id"]
    users = {
        "admin": user(app, "admin@a.example", "admin")["id"],
        "business_admin": user(app, "biz@a.example", "business_admin", org_a)["id"],
        "venue_manager": user(app, "vm@a.example", "venue_manager", org_a, (seeded.venue_id,))["id"],
        "salesperson": user(app, "sp@a.example", "salesperson", org_a, (seeded.venue_id,), seller_id=seller_a)["id"],
        "customer": user(app, "cust@example.org", "customer")["id"],
        "auditor": user(app, "audit@a.example", "auditor", org_a)["id"],
    }
    target_a = user(app, "target@a.example", "venue_manager", org_a, (seeded.venue_id,))["id"]
    target_b = user(app, "target@b.example", "business_admin", org_b)["id"]
    approval = new_id("ap")
    with app.engine.begin() as conn:
        conn.execute(
            insert(Approval.__table__).values(  # type: ignore[attr-defined]
                id=approval,
                kind="break_glass",
                status="pending",
                organisation_id=org_a,
                requested_by=f"user:{target_a}",  # approved by the admin's case: a grant to nobody of the table
                requested_at_ms=app.now_ms(),
                reason="table test",
                subject=json.dumps({"user_id": target_a, "minutes": 10}),
                expires_at_ms=app.now_ms() + 3_600_000,
                decided_by="",
                decided_at_ms=None,
                result="{}",
            )
        )
    common = {"approval_id": approval, "ticket_id": "tk-none", "index": "0"}
    own = common | {
        "raffle_id": seeded.raffle_id,
        "raffle": seeded.raffle_id,
        "venue_id": seeded.venue_id,
        "device_id": device_a.device_id,
        "device": device_a.device_id,
        "seller_id": seller_a,
        "user_id": target_a,
    }
    other = common | {
        "raffle_id": raffle_b,
        "raffle": raffle_b,
        "venue_id": venue_b,
        "device_id": device_b.device_id,
        "device": device_b.device_id,
        "seller_id": seller_b,
        "user_id": target_b,
    }
    return World(own=own, other=other, users=users)


def fresh_login(app: Tombola, user_id: str) -> dict[str, str]:
    """A new login of the user (as /auth/login makes, without the password hashing): its headers."""
    with app.engine.begin() as conn:
        session_id, _, _ = service._start_session(conn, app, user_id, with_mfa=True)
        access = tokens.access_of(service._grants(conn, user_id), app.now_ms())
    assert access is not None
    return bearer(tokens.issue_access_token(app, user_id, session_id, access)[0])


def request_of(route: Any, path: str, ids: dict[str, str]) -> tuple[str, dict[str, str]]:
    url = path
    for name, value in ids.items():
        url = url.replace("{" + name + "}", value)
    query: dict[str, str] = {}
    if isinstance(route, APIRoute):
        for param in route.dependant.query_params:
            if param.name in ids:
                query[param.name] = ids[param.name]
            elif param.alias in ids:
                query[param.alias] = ids[param.alias]
    return url, query


def tenant_bearing(route: Any, path: str) -> bool:
    names = {p.strip("{}") for p in path.split("/") if p.startswith("{")}
    if isinstance(route, APIRoute):
        names |= {p.name for p in route.dependant.query_params}
    return bool(names & TENANT_PARAMS)


def shows_nothing(data: Any) -> bool:
    """A listing with nothing in it: ``[]``, or an object whose lists are all empty."""
    if isinstance(data, list):
        return not data
    lists = [v for v in data.values() if isinstance(v, list)] if isinstance(data, dict) else []
    return bool(lists) and not any(lists)


def test_every_route_x_role_x_tenant(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    w = world(tombola, client, seeded)
    wrong = []
    cases = 0
    for method, path, route in app_routes(client.app):
        rule = RULES.get((method, path))
        if rule is None:
            continue  # test_every_route_has_a_rule names it
        for role in sorted(ROLES):
            for tenant in ("own", "other"):
                ids = dict(w.own if tenant == "own" else w.other)
                if rule.user_is_self and tenant == "own":
                    ids["user_id"] = w.users[role]
                url, query = request_of(route, path, ids)
                verb = "GET" if method == "*" else method
                body = (rule.body or {}) if verb in ("POST", "PUT", "PATCH") else None
                answer = client.request(verb, url, params=query, json=body, headers=fresh_login(tombola, w.users[role]))
                cases += 1
                status = answer.status_code
                in_own = rule.public or role in rule.roles
                crossing = tenant == "other" and tenant_bearing(route, path) and not rule.public
                if crossing:
                    let_in = in_own and role in rule.cross
                    ok = status not in (401, 403) if let_in else status in (403, 404)
                    ok = ok or (not let_in and rule.lists and status == 200 and shows_nothing(answer.json()))
                else:
                    let_in = in_own
                    ok = status not in (401, 403) if let_in else status in (401, 403)
                if not ok:
                    expected = "let in" if let_in else "kept out"
                    seen = f"{status}, expected {expected}: {answer.text[:160]}"
                    wrong.append(f"{method} {url} as {role} ({tenant} tenant): {seen}")
    assert cases > 500
    assert not wrong, f"{len(wrong)} of {cases} cases break the access table:\n" + "\n".join(wrong)
