"""TOTP (required for system admins and auditors), password reset through the outbox, the password policy."""

from __future__ import annotations

import re

import pyotp
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from server.accounts import mfa, passwords, service
from server.accounts.errors import WeakPassword
from server.context import Tombola
from server.errors import InvalidRequest
from server.mail import read_outbox, send_mail
from tests.server.accounts.helpers import PASSWORD, bearer, events, login, user, with_mfa
from tests.support.app import FakeClock


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_first_login_of_an_mfa_role_sets_totp_up(
    client: TestClient, tombola: Tombola, clock: FakeClock, role: str
) -> None:
    made = user(tombola, "boss@example.org", role)
    refused = login(client, "boss@example.org")
    assert refused.status_code == 401 and refused.json()["error"] == "mfa_setup_required"
    setup_token = refused.json()["mfa_setup_token"]
    # the set-up token opens nothing else
    assert client.get("/auth/me", headers=bearer(setup_token)).status_code == 401
    setup = client.post("/auth/mfa/setup", headers=bearer(setup_token))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    uri = setup.json()["provisioning_uri"]
    assert uri.startswith("otpauth://totp/Tombola:boss%40example.org?") and f"secret={secret}" in uri
    assert pyotp.parse_uri(uri).secret == secret
    wrong = client.post("/auth/mfa/confirm", json={"code": "000000"}, headers=bearer(setup_token))
    assert wrong.status_code == 401 and wrong.json()["error"] == "mfa_invalid"
    confirmed = client.post(
        "/auth/mfa/confirm", json={"code": mfa.code_at(secret, clock.now)}, headers=bearer(setup_token)
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["role"] == role and confirmed.json()["mfa"] is True
    assert client.get("/auth/me", headers=bearer(confirmed.json()["access_token"])).status_code == 200
    # from now on the login needs the code; the same code twice is refused
    assert login(client, "boss@example.org").json()["error"] == "mfa_required"
    assert login(client, "boss@example.org", totp=mfa.code_at(secret, clock.now)).json()["error"] == "mfa_invalid"
    clock.advance(30_000)
    ok = login(client, "boss@example.org", totp=mfa.code_at(secret, clock.now))
    assert ok.status_code == 200
    # a set-up again is refused until an administrator resets the factor
    again = client.post("/auth/mfa/setup", headers=bearer(ok.json()["access_token"]))
    assert again.status_code == 409 and again.json()["error"] == "mfa_already_enabled"
    service.mfa_reset(tombola, made["id"], by="user:admin")
    assert client.get("/auth/me", headers=bearer(ok.json()["access_token"])).status_code == 401  # its logins ended
    assert login(client, "boss@example.org").json()["error"] == "mfa_setup_required"
    actions = [e["payload"]["action"] for e in events(tombola, "auth.permission_changed")]
    assert actions == ["user_created", "mfa_enabled", "mfa_reset"]
    assert secret not in str(events(tombola, "auth"))


def test_other_roles_may_turn_totp_on(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    user(tombola, "cust@example.org", "customer")
    access = login(client, "cust@example.org").json()["access_token"]
    secret = client.post("/auth/mfa/setup", headers=bearer(access)).json()["secret"]
    done = client.post("/auth/mfa/confirm", json={"code": mfa.code_at(secret, clock.now)}, headers=bearer(access))
    assert done.json() == {"mfa": True}
    assert login(client, "cust@example.org").json()["error"] == "mfa_required"
    clock.advance(30_000)
    assert login(client, "cust@example.org", totp=mfa.code_at(secret, clock.now)).status_code == 200


def test_wrong_codes_count_toward_the_lockout(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    made = user(tombola, "boss@example.org", "admin")
    with_mfa(tombola, made["id"])
    for _ in range(4):
        assert login(client, "boss@example.org", totp="123456").json()["error"] in ("mfa_invalid",)
    assert login(client, "boss@example.org", totp="123456").json()["error"] == "account_locked"


def test_codes_of_the_step_before_and_after_are_accepted(clock: FakeClock) -> None:
    secret = mfa.new_secret()
    now = clock.now
    for drift in (-30_000, 0, 30_000):
        assert mfa.accepted_step(secret, mfa.code_at(secret, now + drift), now, 0) is not None
    assert mfa.accepted_step(secret, mfa.code_at(secret, now - 90_000), now, 0) is None
    step = mfa.accepted_step(secret, mfa.code_at(secret, now), now, 0)
    assert step is not None and mfa.accepted_step(secret, mfa.code_at(secret, now), now, step) is None


def _reset_token(tombola: Tombola) -> str:
    messages = read_outbox(tombola.settings.outbox_dir)
    body = messages[-1].get_content()
    found = re.search(r"Reset token: (tmw_[A-Za-z0-9_-]+)", body)
    assert found is not None
    return found.group(1)


def test_password_reset_through_the_outbox(client: TestClient, tombola: Tombola, clock: FakeClock) -> None:
    made = user(tombola, "cust@example.org", "customer")
    old = login(client, "cust@example.org").json()
    for _ in range(5):
        login(client, "cust@example.org", "Wrong-Password-1")  # locked meanwhile
    for email in ("cust@example.org", "nobody@example.org"):
        answer = client.post("/auth/password/reset", json={"email": email})
        assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    messages = read_outbox(tombola.settings.outbox_dir)
    assert len(messages) == 1  # nothing is sent to an address without an account
    assert messages[0]["To"] == "cust@example.org" and messages[0]["Subject"] == "Reset your Tombola password"
    token = _reset_token(tombola)
    weak = client.post("/auth/password/reset/confirm", json={"token": token, "new_password": "short"})
    assert weak.status_code == 422 and weak.json()["error"] == "weak_password"
    new = "Another-Secret-7"
    done = client.post("/auth/password/reset/confirm", json={"token": token, "new_password": new})
    assert done.status_code == 200 and done.json() == {"status": "password_set"}
    again = client.post("/auth/password/reset/confirm", json={"token": token, "new_password": new})
    assert again.status_code == 400 and again.json()["error"] == "reset_token_invalid"
    assert client.get("/auth/me", headers=bearer(old["access_token"])).status_code == 401  # logins ended
    assert login(client, "cust@example.org").json()["error"] == "login_failed"
    assert login(client, "cust@example.org", new).status_code == 200  # and the lock is lifted
    actions = [e["payload"]["action"] for e in events(tombola, "auth.permission_changed")]
    assert actions[-2:] == ["password_reset_requested", "password_reset"]
    assert token not in str(events(tombola, "auth")) and made["id"]


def test_a_reset_token_expires_and_a_new_one_voids_the_old(
    client: TestClient, tombola: Tombola, clock: FakeClock
) -> None:
    user(tombola, "cust@example.org", "customer")
    client.post("/auth/password/reset", json={"email": "cust@example.org"})
    first = _reset_token(tombola)
    clock.advance(1000)
    client.post("/auth/password/reset", json={"email": "cust@example.org"})
    second = _reset_token(tombola)
    assert first != second
    refused = client.post("/auth/password/reset/confirm", json={"token": first, "new_password": "Another-Secret-7"})
    assert refused.json()["error"] == "reset_token_invalid"
    clock.advance(30 * 60_000)
    late = client.post("/auth/password/reset/confirm", json={"token": second, "new_password": "Another-Secret-7"})
    assert late.json()["error"] == "reset_token_invalid"


def test_mail_refuses_header_injection(tombola: Tombola) -> None:
    with pytest.raises(InvalidRequest):
        send_mail(tombola, "a@example.org\nBcc: b@example.org", "hi", "body")
    with pytest.raises(InvalidRequest):
        send_mail(tombola, "a@example.org", "hi\r\nBcc: b@example.org", "body")
    send_mail(tombola, "a@example.org", "Grüße", "Zeile 1\nZeile 2 — €")
    (message,) = read_outbox(tombola.settings.outbox_dir)
    assert message["Subject"] == "Grüße" and message.get_content() == "Zeile 1\nZeile 2 — €\n"
    path = next(tombola.settings.outbox_dir.glob("*.eml"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    raw = path.read_bytes()
    assert b"Content-Transfer-Encoding: 8bit" in raw and "Zeile 2 — €".encode() in raw  # readable as it is


# --- the policy ----------------------------------------------------------------------------------

CLASSES = {
    "upper": st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZÄÉ"),
    "lower": st.sampled_from("abcdefghijklmnopqrstuvwxyzäé"),
    "digit": st.sampled_from("0123456789"),
    "symbol": st.sampled_from("!@#$%^&*()-_=+[]{};:'\",.<>/?\\|`~€"),
}


@given(
    present=st.sets(st.sampled_from(sorted(CLASSES))),
    length=st.integers(min_value=0, max_value=20),
    data=st.data(),
)
def test_the_policy_names_exactly_what_is_missing(present: set[str], length: int, data: st.DataObject) -> None:
    """A password built from some character classes lacks exactly the others (and length under 8)."""
    chars = [data.draw(CLASSES[c]) for c in sorted(present)]
    if present:
        pool = st.one_of(*(CLASSES[c] for c in sorted(present)))
        chars += data.draw(st.lists(pool, min_size=max(0, length - len(chars)), max_size=max(0, length - len(chars))))
    password = "".join(data.draw(st.permutations(chars)))
    expected = ["length"] if len(password) < passwords.MIN_LENGTH else []
    expected += [rule for rule in ("upper", "lower", "digit", "symbol") if rule not in present]
    assert passwords.missing(password) == expected
    if expected:
        with pytest.raises(WeakPassword) as caught:
            passwords.check_policy(password)
        assert caught.value.extra["missing"] == expected
    else:
        passwords.check_policy(password)


@given(st.text(max_size=40))
def test_any_text_either_passes_or_is_told_what_it_lacks(password: str) -> None:
    try:
        passwords.check_policy(password)
    except WeakPassword as exc:
        assert exc.extra["missing"] and exc.detail.startswith(("the password needs", "a password"))
    else:
        assert len(password) >= 8 and passwords.missing(password) == []


def test_a_weak_password_is_refused_when_the_account_is_made(client: TestClient, tombola: Tombola) -> None:
    from tests.support.app import ADMIN_TOKEN

    answer = client.post(
        "/v1/users",
        json={"email": "x@example.org", "password": "alllowercase", "role": "customer"},
        headers=bearer(ADMIN_TOKEN),
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "weak_password" and answer.json()["missing"] == ["upper", "digit", "symbol"]
    assert "an upper-case letter, a digit, a symbol" in answer.json()["detail"]
    ok = client.post(
        "/v1/users",
        json={"email": "x@example.org", "password": PASSWORD, "role": "customer"},
        headers=bearer(ADMIN_TOKEN),
    )
    assert ok.status_code == 201 and "password" not in str(ok.json())
