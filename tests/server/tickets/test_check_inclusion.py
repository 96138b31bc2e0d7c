"""The ticket check at the spec's path and the player's proof of inclusion (SQLite and PostgreSQL):
a real draw on the SoftHSM2 token, the check's inclusion proof before and after the draw, the
prize once results are published, ``tombola verify-draw PROOF --ticket FILE`` accepting it and
refusing a tampered proof or a ticket not in the set; the coded 429 with ``Retry-After``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from gli_core.api import TicketInclusionInvalid, verify_ticket_inclusion
from server.context import Tombola
from server.raffles import service as raffles
from sync_protocol.errors import EXIT_OK, EXIT_REFUSED
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _sell_close_freeze(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> list[int]:
    """Sell 12 tickets (5 more voided), close, sync after close, freeze; the sold numbers."""
    device = RawDevice()
    device.enroll(client, seeded.code)
    sales = [device.sale(seeded.raffle_id, q) for q in (1, 5, 1, 5)]
    voided = device.sale(seeded.raffle_id, 5)
    device.void(voided)
    device.sync(client, 1)
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    clock.advance(1000)
    device.sync(client, device.seq + 1)
    resp = client.post("/core/draw/initiate", json={"raffle_id": seeded.raffle_id}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return sorted(n for s in sales for n in s.numbers)


def _code(tombola: Tombola, raffle_id: str, number: int) -> str:
    """The verification code the receipt of ``number`` prints."""
    return tombola.core.ticket_by_number(raffle_id, number).verification_code


def _check(client: TestClient, **params: object) -> dict[str, Any]:
    resp = client.get("/tickets/check", params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _cli(tombola: Tombola, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    from server.cli import _common as cli_module

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    monkeypatch.setattr(cli_module, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    return CliRunner()


def test_check_proves_inclusion_and_verify_draw_checks_it(
    client: TestClient,
    tombola: Tombola,
    seeded: Seed,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from server.cli import cli

    numbers = _sell_close_freeze(client, tombola, seeded, clock)
    assert len(numbers) == 12
    first = numbers[0]
    # Frozen, not drawn: the answer already carries the proof in the frozen root.
    answer = _check(client, number=first, code=_code(tombola, seeded.raffle_id, first))
    assert answer["result"] == "valid" and answer["raffle_id"] == seeded.raffle_id
    inclusion = answer["inclusion"]
    assert isinstance(inclusion, dict) and inclusion["tree_size"] == 12
    root = tombola.core.draw_status(seeded.raffle_id)["ticket_root"]
    assert inclusion["ticket_root"] == root and inclusion["ticket"][0] == first
    assert answer["prizes"] == []
    # The old path gives the same answer with the raffle named.
    old = client.get(
        "/v1/tickets/check",
        params={"raffle": seeded.raffle_id, "number": first, "code": _code(tombola, seeded.raffle_id, first)},
    )
    assert old.json() == answer
    # A wrong code: unknown, and no proof (nothing told about the number).
    wrong = _check(client, number=first, code="0000-0000")
    assert (wrong["result"], wrong["inclusion"], wrong["raffle_id"]) == ("unknown", None, None)

    resp = client.post("/core/draw/execute", json={"raffle_id": seeded.raffle_id}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    (winner,) = resp.json()["winners"]
    tombola.core.draw_publish(seeded.raffle_id)
    won = _check(client, number=winner["ticket_number"], code=_code(tombola, seeded.raffle_id, winner["ticket_number"]))
    assert won["prizes"] == [{"tier": winner["tier"], "amount_cents": winner["amount_cents"]}]
    assert won["raffle"]["state"] == "results_published"

    runner = _cli(tombola, monkeypatch)
    proof_file = tmp_path / "proof.json"
    assert runner.invoke(cli, ["draw", "proof", seeded.raffle_id, "-o", str(proof_file)]).exit_code == EXIT_OK
    ticket_file = tmp_path / "ticket.json"
    ticket_file.write_text(json.dumps(won))
    ok = runner.invoke(cli, ["verify-draw", str(proof_file), "--ticket", str(ticket_file), "--json"])
    assert ok.exit_code == EXIT_OK, ok.output
    out = json.loads(ok.output)
    assert out["ticket"]["in_ticket_set"] is True and out["ticket"]["number"] == winner["ticket_number"]
    assert [p["tier"] for p in out["ticket"]["prizes"]] == [winner["tier"]]
    # The bare inclusion document works too, and the text output says so.
    ticket_file.write_text(json.dumps(won["inclusion"]))
    text = runner.invoke(cli, ["verify-draw", str(proof_file), "--ticket", str(ticket_file)])
    assert text.exit_code == EXIT_OK and f"ticket #{winner['ticket_number']} is in the ticket set" in text.output

    # Refused (exit 1, ticket_inclusion_invalid): a changed amount, a ticket not in the set, a
    # path of another ticket, a void answer without a proof.
    def refused(doc: object) -> str:
        ticket_file.write_text(json.dumps(doc))
        res = runner.invoke(cli, ["verify-draw", str(proof_file), "--ticket", str(ticket_file), "--json"])
        assert res.exit_code == EXIT_REFUSED, res.output
        body = json.loads(res.output.splitlines()[0])
        assert body["valid"] is False and body["error"] == "ticket_inclusion_invalid"
        return str(body["field"])

    inc = dict(won["inclusion"])
    assert refused(inc | {"ticket": [*inc["ticket"][:3], inc["ticket"][3] + 1]}) == "inclusion_proof"
    outsider = max(numbers) + 1_000
    assert refused(inc | {"ticket": [outsider, *inc["ticket"][1:]]}) == "inclusion_proof"
    other = (inc["leaf_index"] + 1) % 12
    assert refused(inc | {"leaf_index": other}) == "inclusion_proof"
    assert refused(inc | {"tree_size": 13}) == "tree_size"
    assert refused({"result": "void", "inclusion": None}) == "inclusion"
    # A tampered draw proof is refused before the ticket is looked at.
    proof = json.loads(proof_file.read_bytes())
    proof["tickets"]["list"][0][3] += 1
    proof_file.write_text(json.dumps(proof))
    ticket_file.write_text(json.dumps(inc))
    bad = runner.invoke(cli, ["verify-draw", str(proof_file), "--ticket", str(ticket_file), "--json"])
    assert bad.exit_code == EXIT_REFUSED and json.loads(bad.output.splitlines()[0])["error"] == "draw_proof_invalid"


def test_every_ticket_of_the_frozen_set_verifies_and_a_voided_one_has_no_proof(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    numbers = _sell_close_freeze(client, tombola, seeded, clock)
    status = tombola.core.draw_status(seeded.raffle_id)
    for number in numbers:
        doc = tombola.core.ticket_inclusion(seeded.raffle_id, number)
        assert doc is not None
        verify_ticket_inclusion(
            doc, raffle_id=seeded.raffle_id, ticket_root=status["ticket_root"], ticket_count=status["ticket_count"]
        )
        with pytest.raises(TicketInclusionInvalid):
            verify_ticket_inclusion(doc, raffle_id="other", ticket_root=status["ticket_root"], ticket_count=12)
    voided = [t for t in tombola.core.tickets(seeded.raffle_id) if t.status != "sold"]
    assert len(voided) == 5
    answer = _check(client, number=voided[0].number, code=voided[0].verification_code)
    assert (answer["result"], answer["inclusion"]) == ("void", None)
    assert tombola.core.ticket_inclusion(seeded.raffle_id, voided[0].number) is None


def test_before_the_freeze_there_is_no_proof(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    resp = client.post("/core/tickets/generate", json={"raffle_id": seeded.raffle_id, "quantity": 1}, headers=ADMIN)
    (ticket,) = resp.json()["tickets"]
    answer = _check(client, number=ticket["number"], code=ticket["verification_code"])
    assert answer["result"] == "valid" and answer["inclusion"] is None and answer["prizes"] == []
    assert set(answer) == {"raffle_id", "number", "result", "raffle", "prizes", "inclusion"}


def test_the_check_is_rate_limited_with_a_coded_429_and_retry_after(client: TestClient, seeded: Seed) -> None:
    client.app.state.tombola.settings.ticket_check_rate = "3/minute"  # type: ignore[attr-defined]
    for _ in range(3):
        assert client.get("/tickets/check", params={"number": 1, "code": "AAAA-AAAA"}).status_code == 200
    resp = client.get("/tickets/check", params={"number": 1, "code": "AAAA-AAAA"})
    assert resp.status_code == 429
    body = resp.json()
    assert body["error"] == "rate_limited" and body["detail"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60 and body["retry_after_s"] == int(resp.headers["Retry-After"])
    # The old path and the page share the client's budget.
    assert (
        client.get("/v1/tickets/check", params={"raffle": seeded.raffle_id, "number": 1, "code": "A"}).status_code
        == 429
    )


def test_bounded_parameters_of_the_spec_path(client: TestClient) -> None:
    for params in ({"number": "1"}, {"number": "0", "code": "A"}, {"number": "x", "code": "A"}, {"code": "A"}):
        resp = client.get("/tickets/check", params=params)
        assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), params
