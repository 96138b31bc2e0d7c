"""Issue 9: a draw hashes each ticket leaf once; a prize unclaimed by its deadline is redrawn after
``publish`` (appended to the proof, logged); ``proof_sha256`` is the SHA-256 of the exported proof
file; ``tombola verify-draw`` checks the published commitment and key fingerprint, shows the current
prize holders, and exits 1 when the proof does not verify."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gli_core.draw import proof as proofs
from gli_core.draw.verify import verify_proof
from server.context import Tombola
from sync_protocol.canonical import canonical_bytes
from tests.flows.test_draw import sell_and_close
from tests.support.app import FakeClock, Seed

UNCLAIMED = "unclaimed by the deadline"


def drawn(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> dict[str, Any]:
    device = sell_and_close(client, tombola, seeded, clock)
    clock.advance(1000)
    device.sync(client, device.seq + 1)
    tombola.core.draw_initiate(seeded.raffle_id)
    return tombola.core.draw_execute(seeded.raffle_id)


def audit_payloads(tombola: Tombola, type_: str) -> list[dict[str, Any]]:
    return [json.loads(d)["payload"] for _, d in tombola.core.audit.entries(type_prefix=type_, limit=1000)]


def test_execute_encodes_and_hashes_each_leaf_once(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: execute hashed every leaf to check the stored hashes, then build_proof hashed them all
    again for the root (and the bench timed neither)."""
    encoded: list[int] = []
    real = proofs._encode

    def counting(tickets: object, template: bytes) -> list[bytes]:
        out = real(tickets, template)  # type: ignore[arg-type]
        encoded.append(len(out))
        return out

    monkeypatch.setattr(proofs, "_encode", counting)
    results = drawn(client, tombola, seeded, clock)
    assert results["ticket_count"] == 42
    assert sum(encoded) == 42  # initiate uses the stored hashes; execute encodes and hashes each leaf once
    assert verify_proof(tombola.core.draw_proof(seeded.raffle_id)).ticket_count == 42


def test_proof_sha256_is_the_sha256_of_the_exported_file(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    results = drawn(client, tombola, seeded, clock)
    exported = tombola.core.draw_proof_bytes(seeded.raffle_id)
    document = json.loads(exported)
    assert exported == canonical_bytes(document)  # RFC 8785: what any verifier re-derives
    assert results["proof_sha256"] == hashlib.sha256(exported).hexdigest() == proofs.proof_sha256(document)
    assert tombola.core.draw_results(seeded.raffle_id)["proof_sha256"] == results["proof_sha256"]
    (logged,) = audit_payloads(tombola, "draw.winners_determined")
    assert logged["proof_sha256"] == results["proof_sha256"]
    assert verify_proof(document).proof_sha256 == results["proof_sha256"]
    reformatted = json.loads(json.dumps(document, indent=2))
    assert verify_proof(reformatted).proof_sha256 == results["proof_sha256"]  # the formatting is not hashed


def test_an_unclaimed_prize_is_redrawn_after_publish(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    """Before: ``draw_not_ready`` once published, though claim deadlines run after publication."""
    first = drawn(client, tombola, seeded, clock)
    published = tombola.core.draw_publish(seeded.raffle_id)
    assert published["state"] == "PUBLISHED"
    (winner,) = first["winners"]
    again = tombola.core.draw_redraw(
        seeded.raffle_id, winner["tier"], winner["ticket_number"], "unclaimed by the deadline"
    )
    assert again["state"] == "PUBLISHED"
    assert again["winners"] == first["winners"]  # the original draw is unchanged: the redraw is appended
    (redraw,) = again["redraws"]
    assert redraw["replaced_ticket_number"] == winner["ticket_number"] != redraw["ticket_number"]
    assert [h["ticket_number"] for h in again["holders"]] == [redraw["ticket_number"]]
    proof = tombola.core.draw_proof(seeded.raffle_id)
    verified = verify_proof(proof)
    assert [h.ticket.number for h in verified.holders] == [redraw["ticket_number"]]
    assert verified.proof_sha256 == again["proof_sha256"] != first["proof_sha256"]
    (logged,) = audit_payloads(tombola, "draw.redrawn")
    assert logged["state"] == "PUBLISHED" and logged["proof_sha256"] == again["proof_sha256"]
    assert logged["replaced_ticket_number"] == winner["ticket_number"]
    assert logged["ticket_number"] == redraw["ticket_number"]
    # a second redraw replaces the redraw's winner, still after publication
    third = tombola.core.draw_redraw(seeded.raffle_id, winner["tier"], redraw["ticket_number"], "declined")
    assert len(third["redraws"]) == 2 and third["holders"][0]["ticket_number"] == third["redraws"][1]["ticket_number"]
    assert (
        verify_proof(tombola.core.draw_proof(seeded.raffle_id)).holders[0].ticket.number
        == (third["redraws"][1]["ticket_number"])
    )


def tombola_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``tombola`` entry point, as an auditor runs it (real exit codes)."""
    code = "import sys; from server.cli import main; sys.argv = ['tombola', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_verify_draw_checks_the_published_values_and_shows_the_holders(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, tmp_path: Path
) -> None:
    first = drawn(client, tombola, seeded, clock)
    (winner,) = first["winners"]
    tombola.core.draw_publish(seeded.raffle_id)
    later = tombola.core.draw_redraw(
        seeded.raffle_id, winner["tier"], winner["ticket_number"], "unclaimed by the deadline"
    )
    status = tombola.core.draw_status(seeded.raffle_id)
    commitment, fingerprint = status["nonce_commitment"], status["vrf"]["fingerprint"]
    proof_file = tmp_path / "proof.json"
    proof_file.write_bytes(tombola.core.draw_proof_bytes(seeded.raffle_id))

    ok = tombola_cli(
        "verify-draw", str(proof_file), "--nonce-commitment", commitment, "--vrf-fingerprint", fingerprint, "--json"
    )
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["valid"] is True and out["published_values_checked"] is True
    assert out["proof_sha256"] == later["proof_sha256"] == hashlib.sha256(proof_file.read_bytes()).hexdigest()
    assert [h["ticket_number"] for h in out["holders"]] == [later["redraws"][0]["ticket_number"]]
    assert out["winners"][0]["ticket_number"] == winner["ticket_number"]
    text = tombola_cli(
        "verify-draw", str(proof_file), "--nonce-commitment", commitment, "--vrf-fingerprint", fingerprint
    )
    assert text.returncode == 0 and f"holders: {winner['tier']} #{later['redraws'][0]['ticket_number']}" in text.stdout

    for option, value in (("--nonce-commitment", "ab" * 32), ("--vrf-fingerprint", "cd" * 32)):
        wrong = tombola_cli("verify-draw", str(proof_file), option, value)
        assert wrong.returncode == 1, (option, wrong.stdout, wrong.stderr)
        assert "draw_proof_invalid" in wrong.stderr and "published" in wrong.stderr
    unpinned = tombola_cli("verify-draw", str(proof_file))
    assert unpinned.returncode == 0 and "--nonce-commitment" in unpinned.stdout  # says what was not checked

    doc = json.loads(proof_file.read_text())
    doc["redraws"][0]["ticket_number"] += 1
    proof_file.write_text(json.dumps(doc))
    bad = tombola_cli("verify-draw", str(proof_file), "--json")
    assert bad.returncode == 1 and "redraws[0].ticket_number" in bad.stderr
    failure = json.loads(bad.stdout)
    assert (failure["valid"], failure["error"], failure["field"]) == (
        False,
        "draw_proof_invalid",
        "redraws[0].ticket_number",
    )
    usage = tombola_cli("verify-draw", str(proof_file), "--vrf-fingerprint")
    assert usage.returncode == 2


def test_raffle_create_prints_what_to_publish(tombola: Tombola, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values verify-draw checks are printed when the raffle is created, before any sale."""
    from click.testing import CliRunner

    from server.cli import _common, cli

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    monkeypatch.setattr(_common, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    runner = CliRunner()
    venue = json.loads(runner.invoke(cli, ["venue", "create", "Hall", "--json"], catch_exceptions=False).output)
    args = ["raffle", "create", "--venue", venue["id"], "--name", "Spring", "--price-cents", "500"]
    args += ["--numbers", "1000", "--closes-at", "2099-01-01T00:00:00Z"]
    created = json.loads(runner.invoke(cli, [*args, "--json"], catch_exceptions=False).output)
    status = tombola.core.draw_status(created["id"])
    assert created["draw"] == {
        "nonce_commitment": status["nonce_commitment"],
        "vrf_fingerprint": status["vrf"]["fingerprint"],
        "vrf_key_id": status["vrf"]["key_id"],
    }
    text = runner.invoke(cli, args, catch_exceptions=False).output
    again = json.loads(runner.invoke(cli, ["raffle", "list", "--json"], catch_exceptions=False).output)
    second = tombola.core.draw_status(next(r["id"] for r in again if r["id"] != created["id"]))
    assert f"--nonce-commitment {second['nonce_commitment']} --vrf-fingerprint {second['vrf']['fingerprint']}" in text
