"""The portal's foundation without a browser: where it is mounted, what every portal page
demands (a session), CSRF, cookies, error pages, and that no page shadows a JSON route."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from server.accounts import service
from server.context import Tombola
from server.raffles import service as raffles

PASSWORD = "Portal-test-1"
#: portal pages a signed-out browser may open
OPEN_PAGES = {
    "/admin",
    "/admin/login",
    "/admin/login/code",
    "/admin/login/setup",
    "/admin/password/reset",
    "/admin/password/reset/confirm",
}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _manager(app: Tombola) -> str:
    org = raffles.ensure_organisation(app)
    venue = raffles.create_venue(app, "Hall")["id"]
    email = "manager@portal.test"
    service.create_user(
        app,
        email=email,
        password=PASSWORD,
        role="venue_manager",
        organisation_id=org,
        venue_ids=[venue],
        created_by="service:portal-tests",
    )
    return email


def _sign_in(client: TestClient, email: str) -> None:
    token = _csrf(client.get("/admin/login").text)
    r = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/admin/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/", r.text[:500]


def test_no_portal_page_shadows_a_json_route(client: TestClient) -> None:
    seen: dict[tuple[str, str], str] = {}
    for context in iter_route_contexts(client.app.routes):
        endpoint = getattr(context.original_route, "endpoint", None)
        module = getattr(endpoint, "__module__", "")
        for method in context.methods or []:
            key = (method, str(context.path))
            assert key not in seen, f"{key} is served by {seen[key]} and by {module}"
            seen[key] = module


def test_every_portal_page_needs_a_session(client: TestClient) -> None:
    for context in iter_route_contexts(client.app.routes):
        path = str(context.path)
        if not path.startswith("/admin") or "GET" not in (context.methods or []):
            continue
        if getattr(getattr(context.original_route, "endpoint", None), "__module__", "").startswith("admin.") is False:
            continue
        if path in OPEN_PAGES:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x-1", path)
        r = client.get(concrete, follow_redirects=False)
        assert r.status_code == 303, f"GET {path} without a session answered {r.status_code}"
        assert r.headers["location"].startswith("/admin/login?next="), path


def test_sign_in_sets_a_strict_http_only_cookie_and_csrf_is_enforced(client: TestClient, tombola: Tombola) -> None:
    email = _manager(tombola)
    r = client.get("/admin/login")
    assert r.headers["cache-control"] == "no-store"
    token = _csrf(r.text)
    refused = client.post("/admin/login", data={"csrf_token": "forged", "email": email, "password": PASSWORD})
    assert refused.status_code == 403 and "csrf_failed" in refused.text
    cross = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    r = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/admin/"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("tombola_portal="))
    for part in ("HttpOnly", "SameSite=Strict", "Path=/admin"):
        assert part in cookie
    assert email not in cookie and "eyJ" not in cookie  # sealed: neither the tokens nor the email readable
    page = client.get("/admin/")
    assert page.status_code == 200 and "Dashboard" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    signed_in_token = _csrf(page.text)
    assert client.post("/admin/logout", data={"csrf_token": "nope"}).status_code == 403
    out = client.post("/admin/logout", data={"csrf_token": signed_in_token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_a_stolen_cookie_stops_working_at_logout(client: TestClient, tombola: Tombola) -> None:
    email = _manager(tombola)
    _sign_in(client, email)
    stolen = dict(client.cookies)
    token = _csrf(client.get("/admin/").text)
    client.post("/admin/logout", data={"csrf_token": token})
    client.cookies.clear()
    for name, value in stolen.items():
        client.cookies.set(name, value, path="/admin")
    assert client.get("/admin/", follow_redirects=False).status_code == 303  # the accounts session ended


def test_wrong_password_and_lockout_messages(client: TestClient, tombola: Tombola) -> None:
    email = _manager(tombola)
    token = _csrf(client.get("/admin/login").text)
    for attempt in range(5):
        r = client.post("/admin/login", data={"csrf_token": token, "email": email, "password": "Wrong-pass-1"})
        if attempt < 4:
            assert r.status_code == 401 and "The email or the password is wrong." in r.text
    assert r.status_code == 429 and "locked" in r.text


def test_error_pages_are_html_for_pages_and_json_for_the_api(client: TestClient) -> None:
    page = client.get("/admin/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    public = client.get("/results/no-such-raffle")
    assert public.status_code == 404 and "Not found" in public.text
    api = client.get("/draws/no-such-raffle")
    assert api.status_code == 404 and api.json()["error"] == "not_found"


def test_public_pages_are_cacheable_and_set_no_cookie(client: TestClient) -> None:
    for path in ("/", "/verify"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["cache-control"].startswith("public, max-age=")
        assert "set-cookie" not in r.headers
        assert "<script" not in r.text
    css = client.get("/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
