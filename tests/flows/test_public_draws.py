"""Published draw results are public (no token, no personal data) and only once published; the proof
downloaded from the public route is the one ``tombola verify-draw`` accepts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient

from server.context import Tombola
from tests.flows.test_draw_redraw import drawn, tombola_cli
from tests.support.app import FakeClock, Seed


def test_results_are_public_only_once_published(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, tmp_path: Path
) -> None:
    raffle = seeded.raffle_id
    assert client.get(f"/draws/{raffle}").json()["error"] == "not_found"  # not drawn
    first = drawn(client, tombola, seeded, clock)
    for path in (f"/draws/{raffle}", f"/draws/{raffle}/proof"):  # drawn, not yet published
        refused = client.get(path)
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    assert client.get("/draws").json() == {"draws": []}

    tombola.core.draw_publish(raffle)
    results = client.get(f"/draws/{raffle}")
    assert results.status_code == 200
    body = results.json()
    assert body["raffle_name"] == "Test 50/50" and body["venue_name"] == "Test Hall"
    assert body["ticket_count"] == first["ticket_count"]
    assert [w["ticket_number"] for w in body["winners"]] == [w["ticket_number"] for w in first["winners"]]
    assert body["proof_sha256"] == first["proof_sha256"]
    assert "ticket_id" not in str(body) and "sale_id" not in str(body)  # numbers only, nothing to trace a buyer
    assert results.headers["cache-control"] == "public, max-age=60"
    unchanged = client.get(f"/draws/{raffle}", headers={"If-None-Match": results.headers["etag"]})
    assert unchanged.status_code == 304

    proof = client.get(body["proof_url"])
    assert proof.status_code == 200
    assert hashlib.sha256(proof.content).hexdigest() == body["proof_sha256"]
    assert "attachment" in proof.headers["content-disposition"]
    (tmp_path / "proof.json").write_bytes(proof.content)
    verified = tombola_cli("verify-draw", str(tmp_path / "proof.json"))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    (listed,) = client.get("/draws").json()["draws"]
    assert listed["raffle_id"] == raffle and listed["proof_sha256"] == body["proof_sha256"]

    (winner,) = first["winners"]
    tombola.core.draw_redraw(raffle, winner["tier"], winner["ticket_number"], "unclaimed by the deadline")
    after = client.get(f"/draws/{raffle}", headers={"If-None-Match": results.headers["etag"]})
    assert after.status_code == 200  # a redraw changes the proof, so the old ETag no longer matches
    (redraw,) = after.json()["redraws"]
    assert redraw["replaced_ticket_number"] == winner["ticket_number"]
    assert after.json()["winners"][0]["ticket_number"] == redraw["ticket_number"]


def test_bad_raffle_ids_are_client_errors(client: TestClient) -> None:
    assert client.get("/draws/" + "x" * 65).status_code == 422
    assert client.get("/draws/a%20b").status_code == 422
