"""A person changes their own password: the current one proves it is them, the policy holds, the
other logins end and this one stays, a wrong current password counts toward the lockout, and the
change is in the audit log (both backends)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.accounts import service
from server.context import Tombola
from tests.server.accounts.helpers import PASSWORD, bearer, events, login, organisation, user

NEW = "Battery-Staple-42!"


def test_change_keeps_this_login_and_ends_the_others(client: TestClient, tombola: Tombola) -> None:
    org, venue = organisation(tombola, "Lions")
    person = user(tombola, "pat@lions.example", "venue_manager", org, (venue,))
    here = login(client, "pat@lions.example").json()
    elsewhere = login(client, "pat@lions.example").json()  # e.g. a forgotten tablet

    changed = client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=bearer(here["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"status": "password_changed", "sessions_ended": 1}
    assert client.get("/auth/me", headers=bearer(here["access_token"])).status_code == 200
    assert client.get("/auth/me", headers=bearer(elsewhere["access_token"])).status_code == 401
    assert login(client, "pat@lions.example").status_code == 401  # the old password is gone
    assert login(client, "pat@lions.example", NEW).status_code == 200
    (logged,) = [e for e in events(tombola, "auth.permission_changed") if e["payload"]["action"] == "password_changed"]
    assert logged["actor"] == f"user:{person['id']}" and logged["payload"]["sessions_ended"] == 1


def test_refusals_change_nothing(client: TestClient, tombola: Tombola) -> None:
    org, venue = organisation(tombola, "Elks")
    user(tombola, "sam@elks.example", "venue_manager", org, (venue,))
    token = login(client, "sam@elks.example").json()["access_token"]

    def change(current: str, new: str) -> tuple[int, str]:
        answer = client.post(
            "/auth/password/change", json={"current_password": current, "new_password": new}, headers=bearer(token)
        )
        return answer.status_code, answer.json().get("error", "")

    assert change(PASSWORD, "short") == (422, "weak_password")
    assert change(PASSWORD, PASSWORD) == (422, "password_unchanged")
    assert change("Wrong-Password-1", NEW) == (401, "login_failed")
    assert client.post("/auth/password/change", json={}, headers=bearer(token)).status_code == 422
    assert login(client, "sam@elks.example").status_code == 200  # still the old password


def test_wrong_current_passwords_lock_the_account(client: TestClient, tombola: Tombola) -> None:
    org, _venue = organisation(tombola, "Moose")
    user(tombola, "kim@moose.example", "business_admin", org)
    session = login(client, "kim@moose.example").json()
    statuses = [
        client.post(
            "/auth/password/change",
            json={"current_password": f"Wrong-Password-{i}", "new_password": NEW},
            headers=bearer(session["access_token"]),
        ).json()["error"]
        for i in range(service.LOCK_AFTER + 1)
    ]
    assert statuses[: service.LOCK_AFTER - 1] == ["login_failed"] * (service.LOCK_AFTER - 1)
    assert statuses[-2:] == ["account_locked", "account_locked"]
    assert login(client, "kim@moose.example").json()["error"] == "account_locked"


def test_an_api_token_cannot_change_a_password(client: TestClient) -> None:
    answer = client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=bearer("test-admin-token"),
    )
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
