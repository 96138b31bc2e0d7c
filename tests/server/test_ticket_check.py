"""The public ticket check ``GET /v1/tickets/check`` (SQLite and PostgreSQL, ``db_backend``):
no token, valid / void / unknown, a wrong code is unknown, the raffle's public state, bounded
parameters with codes, the per-client rate limit, nothing personal in the answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sync_protocol.codes import parse_ticket_check_url, ticket_check_url
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sold(client: TestClient, raffle_id: str, quantity: int = 2) -> list[dict[str, object]]:
    resp = client.post("/core/tickets/generate", json={"raffle_id": raffle_id, "quantity": quantity}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["tickets"])


def check(client: TestClient, raffle: str, number: object, code: str) -> dict[str, object]:
    resp = client.get("/v1/tickets/check", params={"raffle": raffle, "number": number, "code": code})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_valid_void_and_unknown_without_a_token(client: TestClient, seeded: Seed) -> None:
    first, second = sold(client, seeded.raffle_id)
    answer = check(client, seeded.raffle_id, first["number"], str(first["verification_code"]))
    assert answer["result"] == "valid" and answer["number"] == first["number"]
    raffle = answer["raffle"]
    assert isinstance(raffle, dict) and set(raffle) == {"name", "state", "sales_close_at_ms"}
    assert (raffle["name"], raffle["state"]) == ("Test 50/50", "selling")
    # As people type it: lower case, no dash.
    typed = str(first["verification_code"]).lower().replace("-", "")
    assert check(client, seeded.raffle_id, first["number"], typed)["result"] == "valid"
    # Nothing personal or internal: no sale, device, seller, ticket id or code in the answer.
    assert set(answer) == {"raffle_id", "number", "result", "raffle", "prizes", "inclusion"}
    # A voided ticket with its right code is void; with a wrong code it is unknown.
    resp = client.put(f"/core/tickets/{second['id']}/status", json={"status": "voided", "reason": "x"}, headers=ADMIN)
    assert resp.status_code == 200
    assert check(client, seeded.raffle_id, second["number"], str(second["verification_code"]))["result"] == "void"
    assert check(client, seeded.raffle_id, second["number"], "0000-0000")["result"] == "unknown"


def test_a_tampered_code_is_unknown_like_an_unsold_number(client: TestClient, seeded: Seed) -> None:
    (ticket,) = sold(client, seeded.raffle_id, 1)
    code = str(ticket["verification_code"])
    tampered = ("1" if code[0] != "1" else "2") + code[1:]
    assert check(client, seeded.raffle_id, ticket["number"], tampered)["result"] == "unknown"
    assert check(client, seeded.raffle_id, 999_999, code)["result"] == "unknown"
    unknown_raffle = check(client, "rf-none", 1, code)
    assert unknown_raffle["result"] == "unknown" and unknown_raffle["raffle"] is None


def test_the_receipts_url_parses_into_the_three_values_the_endpoint_takes(client: TestClient, seeded: Seed) -> None:
    (ticket,) = sold(client, seeded.raffle_id, 1)
    number, code = int(str(ticket["number"])), str(ticket["verification_code"])
    url = ticket_check_url("https://tombola.example/check", seeded.raffle_id, number, code)
    ref = parse_ticket_check_url(url)
    assert check(client, ref.raffle_id, ref.number, ref.code)["result"] == "valid"


def test_raffle_state_follows_the_clock_and_the_draw(client: TestClient, seeded: Seed, clock: FakeClock) -> None:
    (ticket,) = sold(client, seeded.raffle_id, 1)
    clock.advance(13 * HOUR_MS)  # seeded raffles close 12 hours on
    answer = check(client, seeded.raffle_id, ticket["number"], str(ticket["verification_code"]))
    assert answer["result"] == "valid" and answer["raffle"]["state"] == "sales_closed"  # type: ignore[index]
    resp = client.post(f"/core/draw/{seeded.raffle_id}/cancel", json={"reason": "hall flooded"}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    answer = check(client, seeded.raffle_id, ticket["number"], str(ticket["verification_code"]))
    assert answer["raffle"]["state"] == "cancelled"  # type: ignore[index]


def test_bounded_parameters_answer_with_codes(client: TestClient, seeded: Seed) -> None:
    cases = [
        {"raffle": seeded.raffle_id, "number": "1"},  # no code
        {"raffle": seeded.raffle_id, "number": "x", "code": "AAAA-AAAA"},
        {"raffle": seeded.raffle_id, "number": "0", "code": "AAAA-AAAA"},
        {"raffle": seeded.raffle_id, "number": str(2**31), "code": "AAAA-AAAA"},
        {"raffle": seeded.raffle_id, "number": str(2**70), "code": "AAAA-AAAA"},
        {"raffle": "r" * 65, "number": "1", "code": "AAAA-AAAA"},
        {"raffle": seeded.raffle_id, "number": "1", "code": "A" * 33},
        {"raffle": "a\x00b", "number": "1", "code": "AAAA-AAAA"},
        {"raffle": seeded.raffle_id, "number": "1", "code": ""},
    ]
    for params in cases:
        resp = client.get("/v1/tickets/check", params=params)
        assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), (params, resp.text)
        assert resp.json()["detail"]
    # Non-ASCII codes are an answer, not an error: they match nothing.
    assert check(client, seeded.raffle_id, 1, "ÄÖÜ-ß")["result"] == "unknown"
    resp = client.post("/v1/tickets/check", params={"raffle": seeded.raffle_id, "number": 1, "code": "A"})
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")


def test_rate_limited_per_client(client: TestClient, seeded: Seed) -> None:

    client.app.state.tombola.settings.ticket_check_rate = "3/minute"  # type: ignore[attr-defined]
    params = {"raffle": seeded.raffle_id, "number": 1, "code": "AAAA-AAAA"}
    codes = [client.get("/v1/tickets/check", params=params).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert client.get("/v1/tickets/check", params=params).json()["error"] == "rate_limited"


def test_the_page_a_receipts_qr_code_opens_answers_as_html(client: TestClient, seeded: Seed) -> None:
    """Seen: receipts print a QR code for ``{server}/check?raffle=R&number=N&code=C`` and nothing
    served it (404). The page answers as the endpoint does, with no script, no style and a strict
    policy (the public pages' stylesheet only), and a form for typing the three values."""
    (ticket,) = sold(client, seeded.raffle_id, 1)
    url = ticket_check_url(
        str(client.base_url) + "/check", seeded.raffle_id, int(str(ticket["number"])), str(ticket["verification_code"])
    )
    page = client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "VALID: this ticket is in the draw." in page.text and "Test 50/50 (on sale)" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text and "<style" not in page.text and "style=" not in page.text
    assert "style-src 'self'" in page.headers["content-security-policy"]  # the public pages' stylesheet only
    wrong = client.get("/check", params={"raffle": seeded.raffle_id, "number": ticket["number"], "code": "0000-0000"})
    assert wrong.status_code == 200 and "NOT FOUND" in wrong.text and "VALID" not in wrong.text
    form = client.get("/check")
    assert form.status_code == 200 and '<form method="get" action="/check">' in form.text
    odd = client.get("/check", params={"raffle": "<b>x</b>", "number": "twelve", "code": "c"})
    assert odd.status_code == 400 and "<b>x</b>" not in odd.text
    named = client.get("/check", params={"raffle": "<b>x</b>", "number": "1", "code": "<i>"})
    assert named.status_code == 200 and "<i>" not in named.text and "&lt;I&gt;" in named.text
