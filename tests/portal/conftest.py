"""Browser tests of the portal and the public pages: a real ``tombola serve`` process and Debian's
Chromium driven by Playwright (the browser download of Playwright is blocked here).

Fixtures (docs/portal.md, "Browser tests"):

``portal`` (session)
    A :class:`Portal`: ``url`` of a ``tombola serve`` over SQLite files seeded with an
    organisation, two venues (``venue_id``, ``other_venue_id``), an open 50/50 raffle
    (``raffle_id``) and an enrolled device (``device_id``) of the first venue, and one person per
    role in ``users`` (``admin``, ``auditor`` with TOTP as their roles need; ``business_admin``;
    ``venue_manager`` of the first venue with TOTP on; ``venue_manager_other`` of the second).
    ``portal.code(role)`` is a TOTP code the server has not seen yet; ``portal.app()`` opens the
    installation's services in the test process (to seed more, e.g. ``create_user``).
``browser`` (session), ``browser_page``
    Chromium, and a fresh page (1280x800, its own cookies) whose console is recorded.
``login``
    ``login(page, role)`` signs the page in as ``portal.users[role]`` (password, then the code).
``shot``
    ``shot(page, name)`` saves ``tests/artifacts/portal/<name>-1280x800.png`` and ``-768x1024.png``
    (whole page).
``check_page``
    ``check_page(page)``: axe-core finds no serious or critical violation, and the console shows
    no Content-Security-Policy violation (nor a page error).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import running_server, server_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "portal"
SIZES = ((1280, 800), (768, 1024))
PASSWORD = "Portal-test-1"
#: console lines of each page (by id), for check_page
_CONSOLE: dict[int, list[str]] = {}


@dataclass
class Person:
    role: str
    email: str
    password: str
    user_id: str
    totp_secret: str | None = None


@dataclass
class Portal:
    url: str
    home: Path
    core_url: str
    business_url: str
    organisation_id: str
    venue_id: str
    other_venue_id: str
    raffle_id: str
    device_id: str
    #: a raffle of the venue whose draw is published (12 tickets sold by the device)
    drawn_raffle_id: str = ""
    users: dict[str, Person] = field(default_factory=dict)
    _last_step: dict[str, int] = field(default_factory=dict)

    def app(self) -> Any:
        """The installation's services, opened in the test process (close it after use)."""
        from tests.support.app import open_tombola
        from tests.support.postgres import DbUrls

        return open_tombola(self.home, DbUrls(self.core_url, self.business_url, "sqlite"))

    def code(self, role_or_email: str) -> str:
        """A TOTP code of the person the server will take: of a time step later than any used."""
        import pyotp

        person = self.users.get(role_or_email) or next(p for p in self.users.values() if p.email == role_or_email)
        assert person.totp_secret, f"{person.email} has no TOTP"
        while True:
            step_now = int(time.time()) // 30
            last = self._last_step.get(person.email, 0)
            for step in (step_now - 1, step_now, step_now + 1):
                if step > last:
                    self._last_step[person.email] = step
                    return pyotp.TOTP(person.totp_secret).at(step * 30)
            time.sleep(1)


def _add_person(
    app: Any, portal: Portal, key: str, role: str, *, org: str = "", venues: tuple[str, ...] = (), mfa: bool
) -> Person:
    from server.accounts import mfa as mfa_mod
    from server.accounts import service

    email = f"{key.replace('_', '-')}@portal.test"
    made = service.create_user(
        app,
        email=email,
        password=PASSWORD,
        role=role,
        organisation_id=org,
        venue_ids=venues,
        created_by="service:portal-tests",
    )
    person = Person(role=role, email=email, password=PASSWORD, user_id=made["id"])
    if mfa:
        secret = service.mfa_setup(app, made["id"])["secret"]
        step = app.now_ms() // 30_000 - 1  # confirmed with the previous step's code: the next ones stay usable
        service.mfa_confirm(app, made["id"], mfa_mod.code_at(secret, step * 30_000), start_session=False)
        person.totp_secret = secret
        portal._last_step[email] = step
    portal.users[key] = person
    return person


def _sell_and_draw(app: Any, portal: Portal) -> str:
    """Enroll a device, sell tickets of both raffles, sync; close, freeze, draw and publish the
    second (through the HTTP API and the core, as the operator does). The device's id."""
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.enrollment import service as enrollment
    from server.raffles import service as raffles
    from tests.simulators.device import RawDevice
    from tests.support.app import ADMIN_TOKEN

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(create_app(tombola=app)) as client:
        device = RawDevice()
        device.enroll(client, enrollment.create_enrollment_code(app, portal.venue_id)["code"])
        for quantity in (1, 5, 1, 5):
            device.sale(portal.drawn_raffle_id, quantity)
        for quantity in (5, 1, 1):
            device.sale(portal.raffle_id, quantity)
        device.sync(client, 1)
        time.sleep(0.05)
        raffles.close_raffle(app, portal.drawn_raffle_id)
        time.sleep(0.05)
        device.sync(client, device.seq + 1)
        for step in ("initiate", "execute"):
            resp = client.post(f"/core/draw/{step}", json={"raffle_id": portal.drawn_raffle_id}, headers=admin)
            assert resp.status_code == 200, resp.text
        app.core.draw_publish(portal.drawn_raffle_id)
        return str(device.device_id)


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory, hsm_token: Any) -> Iterator[Portal]:
    from server.raffles import service as raffles
    from tests.support.app import HOUR_MS

    root = tmp_path_factory.mktemp("portal")
    core_url, business_url = f"sqlite:///{root}/core.db", f"sqlite:///{root}/business.db"
    portal = Portal("", root / "var", core_url, business_url, "", "", "", "", "")
    app = portal.app()
    try:
        portal.organisation_id = raffles.ensure_organisation(app)
        portal.venue_id = raffles.create_venue(app, "Riverside Hall")["id"]
        portal.other_venue_id = raffles.create_venue(app, "Hilltop Club")["id"]
        raffle = raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=portal.venue_id,
                name="Friday 50/50",
                price_cents=500,
                number_space=1_000_000,
                sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
                bundles=((5, 1000),),
            ),
        )
        portal.raffle_id = raffle["id"]
        drawn = raffles.create_raffle(
            app,
            raffles.RaffleCreate(
                venue_id=portal.venue_id,
                name="Spring 50/50",
                price_cents=500,
                number_space=100_000,
                sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
                bundles=((5, 1000),),
            ),
        )
        portal.drawn_raffle_id = drawn["id"]
        portal.device_id = _sell_and_draw(app, portal)
        org = portal.organisation_id
        _add_person(app, portal, "admin", "admin", mfa=True)
        _add_person(app, portal, "auditor", "auditor", mfa=True)
        _add_person(app, portal, "business_admin", "business_admin", org=org, mfa=False)
        _add_person(app, portal, "venue_manager", "venue_manager", org=org, venues=(portal.venue_id,), mfa=True)
        _add_person(
            app, portal, "venue_manager_other", "venue_manager", org=org, venues=(portal.other_venue_id,), mfa=False
        )
    finally:
        app.close()
    env = server_env(portal.home, core_url, business_url)
    with running_server(env) as url:
        portal.url = url
        yield portal


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser: Any, portal: Portal) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=portal.url, accept_downloads=True)
    page = context.new_page()
    lines: list[str] = []
    _CONSOLE[id(page)] = lines
    page.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: lines.append(f"pageerror: {err}"))
    page.set_default_timeout(15_000)
    yield page
    _CONSOLE.pop(id(page), None)
    context.close()


#: the portal cookies of each person's last real sign-in (role -> cookies): a later sign-in of the
#: same person reuses them while the session lives, instead of waiting up to 30 s for a TOTP step
#: the server has not seen (a code is accepted once)
_SIGNED_IN: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture
def login(portal: Portal) -> Callable[..., None]:
    def sign_in(page: Any, role: str, *, fresh: bool = False) -> None:
        """Sign ``role``'s person in: through the login pages (always with ``fresh``, and the first
        time), else by the cookies of their last sign-in when that session still lives."""
        person = portal.users[role]
        kept = _SIGNED_IN.get(person.email)
        if kept and not fresh:
            page.context.add_cookies(kept)
            page.goto("/admin/")
            if "/admin/login" not in page.url:
                return
        page.goto("/admin/login")
        page.get_by_label("Email").fill(person.email)
        page.get_by_label("Password").fill(person.password)
        page.get_by_role("button", name="Sign in").click()
        if person.totp_secret:
            page.wait_for_url("**/admin/login/code")
            page.get_by_label("Code").fill(portal.code(role))
            page.get_by_role("button", name="Verify").click()
        page.wait_for_url("**/admin/**")
        assert "/admin/login" not in page.url, f"sign-in of {role} failed: {page.content()[:2000]}"
        _SIGNED_IN[person.email] = [c for c in page.context.cookies() if c["name"].endswith("tombola_portal")]

    return sign_in


def _shot(page: Any, name: str) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        path = ARTIFACTS / f"{name}-{width}x{height}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(original)
    return paths


@pytest.fixture
def shot() -> Callable[[Any, str], list[Path]]:
    return _shot


def csp_violations(page: Any) -> list[str]:
    """Console lines of ``page`` that report a Content-Security-Policy violation or a page error."""
    lines = _CONSOLE.get(id(page), [])
    return [line for line in lines if "Content Security Policy" in line or line.startswith("pageerror")]


def _check_page(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    described = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in bad]
    assert not bad, f"axe on {page.url}:\n" + "\n".join(described)
    violations = csp_violations(page)
    assert not violations, f"console of {page.url}:\n" + "\n".join(violations)


@pytest.fixture
def check_page() -> Callable[[Any], None]:
    return _check_page
