"""Logins, access tokens, refresh rotation and reuse detection, logout, disabled users, lockout."""

from __future__ import annotations

import time

import jwt
import pytest
from fastapi.testclient import TestClient

from server.accounts import service, tokens
from server.context import Tombola
from tests.server.accounts.helpers import PASSWORD, bearer, events, login, organisation, user
from tests.support.app import FakeClock, Seed


def test_login_gives_an_access_token_the_api_accepts(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    org_id, venue_id = organisation(tombola, "North")
    made = user(tombola, "Manager@Example.org", "venue_manager", org_id, (venue_id,))
    answer = login(client, "manager@example.ORG")  # the address matches in any case
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["role"] == "venue_manager" and body["organisation_id"] == org_id and body["venue_ids"] == [venue_id]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == made["id"] and claims["role"] == "venue_manager" and claims["org"] == org_id
    assert claims["venues"] == [venue_id] and claims["exp"] - claims["iat"] == 3600
    assert {"jti", "sid", "typ"} <= set(claims)
    me = client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "id": f"user:{made['id']}",
        "role": "venue_manager",
        "organisation_id": org_id,
        "venue_ids": [venue_id],
        "via": "user",
    }
    logins = [e for e in events(tombola, "auth.login") if e["type"] == "auth.login"]
    assert logins[-1]["actor"] == f"user:{made['id']}"
    assert logins[-1]["payload"]["user_id"] == made["id"] and logins[-1]["payload"]["mfa"] is False


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient, tombola: Tombola) -> None:
    user(tombola, "cust@example.org", "customer")
    wrong = login(client, "cust@example.org", "Wrong-Password-1")
    unknown = login(client, "nobody@example.org")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "login_failed", "detail": "the email or the password is wrong"}
    failed = [e["payload"] for e in events(tombola, "auth.login_failed")]
    assert [f["reason"] for f in failed] == ["bad_password", "unknown_email"]
    assert "nobody" not in str(failed)  # an unknown address is kept as a hash prefix only


def test_unknown_email_costs_a_password_hash(client: TestClient, tombola: Tombola) -> None:
    user(tombola, "cust@example.org", "customer")
    login(client, "nobody@example.org")  # warm up
    started = time.perf_counter()
    login(client, "nobody@example.org")
    unknown = time.perf_counter() - started
    started = time.perf_counter()
    login(client, "cust@example.org", "Wrong-Password-1")
    known = time.perf_counter() - started
    assert unknown > 0.3 * known  # both spend one argon2id verification


def test_refresh_rotates_and_reuse_revokes_the_whole_login(client: TestClient, tombola: Tombola) -> None:
    made = user(tombola, "cust@example.org", "customer")
    first = login(client, "cust@example.org").json()
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert client.get("/auth/me", headers=bearer(second_body["access_token"])).status_code == 200
    # the first refresh token again: taken as stolen, the login ends
    again = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and again.json()["error"] == "refresh_invalid"
    assert "revoked" in again.json()["detail"]
    for access in (first["access_token"], second_body["access_token"]):
        refused = client.get("/auth/me", headers=bearer(access))
        assert refused.status_code == 401 and "ended" in refused.json()["detail"]
    later = client.post("/auth/refresh", json={"refresh_token": second_body["refresh_token"]})
    assert later.status_code == 401
    reused = [e for e in events(tombola, "auth.permission_changed") if e["payload"].get("action") == "refresh_reused"]
    assert len(reused) == 1 and reused[0]["actor"] == f"user:{made['id']}"
    # another login is unaffected
    assert login(client, "cust@example.org").status_code == 200


def test_refresh_token_expires_thirty_days_after_login(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    assert body["refresh_expires_at_ms"] == clock.now + 30 * 86_400_000
    clock.advance(30 * 86_400_000)
    refused = client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refused.status_code == 401 and refused.json()["error"] == "refresh_invalid"
    assert client.post("/auth/refresh", json={"refresh_token": "tmr_nothing"}).status_code == 401


def test_logout_ends_access_and_refresh(client: TestClient, tombola: Tombola) -> None:
    user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    other = login(client, "cust@example.org").json()
    assert client.post("/auth/logout", headers=bearer(body["access_token"])).json() == {"status": "logged_out"}
    assert client.get("/auth/me", headers=bearer(body["access_token"])).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 401
    assert client.get("/auth/me", headers=bearer(other["access_token"])).status_code == 200


def test_an_access_token_lasts_one_hour(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    clock.advance(3599_000)
    assert client.get("/auth/me", headers=bearer(body["access_token"])).status_code == 200
    clock.advance(1000)
    expired = client.get("/auth/me", headers=bearer(body["access_token"]))
    assert expired.status_code == 401 and expired.json()["detail"] == "the token has expired"
    fresh = client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]}).json()
    assert client.get("/auth/me", headers=bearer(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda c, k: jwt.encode(c, "another key of thirty-two bytes!!", algorithm="HS256"), id="other-key"
        ),
        pytest.param(lambda c, k: jwt.encode(c, "", algorithm="none"), id="alg-none"),
        pytest.param(lambda c, k: jwt.encode(c, k, algorithm="HS512"), id="other-alg"),
        pytest.param(lambda c, k: jwt.encode(c | {"typ": "mfa_setup"}, k, algorithm="HS256"), id="setup-token"),
        pytest.param(
            lambda c, k: jwt.encode({x: v for x, v in c.items() if x != "exp"}, k, algorithm="HS256"), id="no-exp"
        ),
        pytest.param(lambda c, k: jwt.encode(c | {"exp": c["iat"] - 1}, k, algorithm="HS256"), id="expired"),
        pytest.param(
            lambda c, k: jwt.encode(c | {"sid": "ses-NOSUCHSESSION00"}, k, algorithm="HS256"), id="no-session"
        ),
    ],
)
def test_forged_tokens_are_refused(client: TestClient, tombola: Tombola, forge: object) -> None:
    user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    forged = forge(claims, tokens.signing_key(tombola))  # type: ignore[operator]
    refused = client.get("/auth/me", headers=bearer(forged))
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    # a role claimed in the token is not believed: the server reads the grants
    lifted = jwt.encode(claims | {"role": "admin", "org": None}, tokens.signing_key(tombola), algorithm="HS256")
    assert client.get("/auth/me", headers=bearer(lifted)).json()["role"] == "customer"


def test_a_disabled_user_is_refused_at_the_next_request(client: TestClient, tombola: Tombola) -> None:
    made = user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    service.disable_user(tombola, made["id"], reason="left the club", by="user:admin")
    refused = client.get("/auth/me", headers=bearer(body["access_token"]))
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    assert client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 401
    disabled = login(client, "cust@example.org")
    assert disabled.status_code == 403 and disabled.json()["error"] == "account_disabled"
    assert login(client, "cust@example.org", "Wrong-Password-1").json()["error"] == "login_failed"
    service.enable_user(tombola, made["id"], by="user:admin")
    assert login(client, "cust@example.org").status_code == 200
    actions = [e["payload"]["action"] for e in events(tombola, "auth.permission_changed")]
    assert actions == ["user_created", "user_disabled", "user_enabled"]


def test_api_tokens_and_the_admin_token_still_work(client: TestClient, tombola: Tombola) -> None:
    from server.auth import create_token
    from tests.support.app import ADMIN_TOKEN

    api = create_token(tombola, name="script", role="auditor", created_by="user:admin")["token"]
    assert client.get("/auth/me", headers=bearer(api)).json()["via"] == "api_token"
    assert client.get("/auth/me", headers=bearer(ADMIN_TOKEN)).json()["via"] == "admin_token"


def test_lockout_backs_off_and_holds_across_processes(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    made = user(tombola, "cust@example.org", "customer")
    for _ in range(4):
        assert login(client, "cust@example.org", "Wrong-Password-1").json()["error"] == "login_failed"
    locked = login(client, "cust@example.org", "Wrong-Password-1")
    assert locked.status_code == 429 and locked.json()["error"] == "account_locked"
    assert locked.json()["retry_after_s"] == 60 and locked.headers["Retry-After"] == "60"
    # the right password does not open a locked account
    still = login(client, "cust@example.org")
    assert still.json()["error"] == "account_locked" and still.json()["retry_after_s"] == 60
    # another process (another app on the same database) sees the lock
    from server.app import create_app

    with TestClient(create_app(tombola=tombola)) as other:
        assert login(other, "cust@example.org").json()["error"] == "account_locked"
    clock.advance(60_000)
    for _ in range(4):
        login(client, "cust@example.org", "Wrong-Password-1")
    second = login(client, "cust@example.org", "Wrong-Password-1")
    assert second.json()["retry_after_s"] == 120  # the second lock lasts twice as long
    clock.advance(120_000)
    assert login(client, "cust@example.org").status_code == 200  # success clears the back-off
    for _ in range(5):
        login(client, "cust@example.org", "Wrong-Password-1")
    assert login(client, "cust@example.org").json()["retry_after_s"] == 60
    failed = [e for e in events(tombola, "auth.login_failed") if e["payload"].get("locked_for_s")]
    assert [e["payload"]["locked_for_s"] for e in failed] == [60, 120, 60]
    assert all(e["actor"] == f"user:{made['id']}" for e in failed)


def test_lock_seconds_double_up_to_an_hour() -> None:
    assert [service.lock_seconds(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert service.lock_seconds(10_000) == 3600


def test_emails_are_unique_in_any_case(tombola: Tombola) -> None:
    from server.accounts.errors import EmailTaken

    user(tombola, "Ann@Example.org", "customer")
    with pytest.raises(EmailTaken):
        user(tombola, "ann@example.ORG", "customer")


def test_password_is_kept_as_argon2id(tombola: Tombola) -> None:
    from sqlalchemy import select

    from server.accounts.models import UserAccount

    made = user(tombola, "cust@example.org", "customer")
    table = UserAccount.__table__  # type: ignore[attr-defined]
    with tombola.engine.connect() as conn:
        stored = conn.execute(select(table.c.password_hash).where(table.c.id == made["id"])).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_two_refreshes_at_once_with_one_token_end_the_login(client: TestClient, tombola: Tombola) -> None:
    """A race of two holders of one refresh token: one wins, the other is a reuse, the login ends."""
    import threading

    from server.accounts.errors import RefreshInvalid

    user(tombola, "cust@example.org", "customer")
    body = login(client, "cust@example.org").json()
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def refresh() -> None:
        barrier.wait()
        try:
            outcomes.append(service.refresh(tombola, body["refresh_token"]))
        except RefreshInvalid as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if isinstance(o, dict)]
    assert len(won) == 1 and len(outcomes) == 2
    assert client.get("/auth/me", headers=bearer(won[0]["access_token"])).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": won[0]["refresh_token"]}).status_code == 401


def test_logins_per_client_are_limited(db_backend: object, tmp_path: object) -> None:
    """Password spraying across accounts from one address slows down: 429 past TOMBOLA_LOGIN_RATE."""
    from pathlib import Path

    from server.app import create_app
    from tests.support.app import open_tombola

    app = open_tombola(Path(str(tmp_path)) / "var2", db_backend, login_rate="3/minute")  # type: ignore[arg-type]
    try:
        with TestClient(create_app(tombola=app)) as limited:
            answers = [login(limited, f"nobody{i}@example.org").status_code for i in range(4)]
            assert answers == [401, 401, 401, 429]
            refused = login(limited, "nobody@example.org")
            assert refused.json()["error"] == "rate_limited" and "Retry-After" in refused.headers
            reset = limited.post("/auth/password/reset", json={"email": "a@example.org"})
            assert reset.status_code == 202  # counted apart from logins
    finally:
        app.close()
