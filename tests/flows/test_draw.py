"""The draw end to end: sell, close, sync, initiate (gate + freeze), execute in the HSM, proof,
and an independent verification of the proof; exactly one draw under concurrency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from gli_core.draw.verify import verify_proof
from gli_core.errors import CoreError
from server.context import Tombola
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sell_and_close(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> RawDevice:
    device = RawDevice()
    device.enroll(client, seeded.code)
    for q in (1, 5, 30, 1, 5):
        device.sale(seeded.raffle_id, q)
    voided = device.sale(seeded.raffle_id, 5)
    device.void(voided)
    device.sync(client, 1)
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    return device


def test_draw_flow(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, tmp_path: Path) -> None:
    status = client.get(f"/core/draw/{seeded.raffle_id}/status", headers=ADMIN).json()
    assert status["state"] == "SALES_OPEN" and len(status["nonce_commitment"]) == 64
    device = sell_and_close(client, tombola, seeded, clock)
    # The device has not synced since sales closed: the gate names it.
    resp = client.post("/core/draw/initiate", json={"raffle_id": seeded.raffle_id}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (409, "reconciliation_blocked")
    assert resp.json()["devices"] == [device.device_id]
    clock.advance(1000)
    device.sync(client, device.seq + 1)  # the after-close sync
    resp = client.post("/core/draw/initiate", json={"raffle_id": seeded.raffle_id}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    frozen = resp.json()
    assert frozen["state"] == "RECONCILED" and frozen["ticket_count"] == 42  # 5 voided tickets left out
    resp = client.post("/core/draw/execute", json={"raffle_id": seeded.raffle_id}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    results = resp.json()
    (winner,) = results["winners"]
    assert winner["amount_cents"] == (500 + 1000 + 2000 + 500 + 1000) // 2
    again = client.post("/core/draw/execute", json={"raffle_id": seeded.raffle_id}, headers=ADMIN).json()
    assert again == results  # executing again yields the same draw
    proof = client.get(f"/core/draw/{seeded.raffle_id}/proof", headers=ADMIN).json()
    verified = verify_proof(json.loads(json.dumps(proof)))
    assert verified.ticket_count == 42 and verified.nonce_commitment == status["nonce_commitment"]
    assert verified.gross_sales_cents == 500 + 1000 + 2000 + 500 + 1000  # re-derived from the ticket amounts
    assert [w.ticket.number for w in verified.winners] == [winner["ticket_number"]]
    tampered = json.loads(json.dumps(proof))
    tampered["winners"][0]["ticket_number"] += 1
    with pytest.raises(CoreError):
        verify_proof(tampered)
    resp = client.post(f"/core/draw/{seeded.raffle_id}/cancel", json={"reason": "too late"}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (409, "invalid_draw_transition")
    assert client.get(f"/core/draw/{seeded.raffle_id}/status").json()["error"] == "unauthorized"


def test_lost_device_is_voided_then_draw_runs_once_under_concurrency(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    device = sell_and_close(client, tombola, seeded, clock)
    assert tombola.core.void_remainder(device.device_id, seeded.raffle_id, "device lost in the car park") == 1
    tombola.core.draw_initiate(seeded.raffle_id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: tombola.core.draw_execute(seeded.raffle_id), range(4)))
    assert all(o == outcomes[0] for o in outcomes)
    # The frozen set takes no more tickets.
    from gli_core.api import TicketSale

    with pytest.raises(CoreError) as exc:
        tombola.core.record([TicketSale("late", device.device_id, 99, seeded.raffle_id, (999,), "0" * 64, 500)])
    assert exc.value.code == "ticket_set_frozen"


def test_cli_draw_and_independent_verification(
    client: TestClient,
    tombola: Tombola,
    seeded: Seed,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from server.cli import _common as cli_module
    from server.cli import cli

    device = sell_and_close(client, tombola, seeded, clock)
    clock.advance(1000)
    device.sync(client, device.seq + 1)

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    monkeypatch.setattr(cli_module, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    runner = CliRunner()
    for verb in ("initiate", "execute"):
        result = runner.invoke(cli, ["draw", verb, seeded.raffle_id, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    proof_file = tmp_path / "proof.json"
    assert runner.invoke(cli, ["draw", "proof", seeded.raffle_id, "-o", str(proof_file)]).exit_code == 0
    ok = runner.invoke(cli, ["verify-draw", str(proof_file), "--json"], catch_exceptions=False)
    assert ok.exit_code == 0 and json.loads(ok.output)["valid"] is True
    assert json.loads(ok.output)["gross_sales_cents"] == 500 + 1000 + 2000 + 500 + 1000  # re-derived
    # The draw binds the first signed audit checkpoint after its RECONCILED transition, and the
    # verifier checks it against the log's published key when given one.
    keys = json.loads(runner.invoke(cli, ["audit", "keys", "--json"], catch_exceptions=False).output)["keys"]
    checkpoint = json.loads(proof_file.read_text())["audit_checkpoint"]
    assert checkpoint["key"] in keys and checkpoint["entry"]["type"] == "draw.committed"
    reconciled = [
        i
        for i, d in tombola.core.audit.entries(type_prefix="draw.state_changed", limit=1000)
        if json.loads(d)["payload"]["to"] == "RECONCILED"
    ]
    assert reconciled and reconciled[-1] < checkpoint["tree_size"]
    pinned = ["verify-draw", str(proof_file), "--json"] + [a for k in keys for a in ("--audit-key", k)]
    ok = runner.invoke(cli, pinned, catch_exceptions=False)
    assert ok.exit_code == 0 and json.loads(ok.output)["audit_checkpoint_size"] == checkpoint["tree_size"]
    from gli_core.audit.note import SoftwareNoteSigner, verifier_key

    stranger = verifier_key(SoftwareNoteSigner.generate(tombola.core.audit.origin))
    wrong = runner.invoke(cli, ["verify-draw", str(proof_file), "--audit-key", stranger])
    assert wrong.exit_code != 0
    assert runner.invoke(cli, ["audit", "verify", "--json"], catch_exceptions=False).exit_code == 0
    doc = json.loads(proof_file.read_text())
    doc["nonce"] = "00" * 32
    proof_file.write_text(json.dumps(doc))
    bad = runner.invoke(cli, ["verify-draw", str(proof_file)])
    assert bad.exit_code != 0


def test_crash_mid_draw_then_execute_again_gives_the_same_draw(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the process dies after the VRF ran but before DRAWN was committed."""
    device = sell_and_close(client, tombola, seeded, clock)
    clock.advance(1000)
    device.sync(client, device.seq + 1)
    tombola.core.draw_initiate(seeded.raffle_id)
    draws = tombola.core.draws
    assert draws is not None
    real_cas = draws._cas

    def crash(*args: object, **kwargs: object) -> bool:
        raise SystemExit("power cut")

    monkeypatch.setattr(draws, "_cas", crash)
    with pytest.raises(SystemExit):
        tombola.core.draw_execute(seeded.raffle_id)
    assert tombola.core.draw_status(seeded.raffle_id)["state"] == "RECONCILED"  # nothing half-written
    monkeypatch.setattr(draws, "_cas", real_cas)
    first = tombola.core.draw_execute(seeded.raffle_id)
    proof = tombola.core.draw_proof(seeded.raffle_id)
    # Re-deriving from the committed inputs gives exactly the stored winners.
    assert [w.ticket.number for w in verify_proof(proof).winners] == [w["ticket_number"] for w in first["winners"]]


def test_the_freeze_and_a_recording_never_interleave(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    """A recording holds the raffle's draw row (FOR SHARE; SQLite: the write lock) for its whole
    transaction, and the freeze reads the ticket set under FOR UPDATE on that row: a freeze that
    starts while tickets are being recorded waits for them, so they are in the frozen set."""
    import threading

    from gli_core.api import TicketSale
    from gli_core.registry.tickets import _hold_draws

    device = sell_and_close(client, tombola, seeded, clock)
    clock.advance(1000)
    device.sync(client, device.seq + 1)
    late = TicketSale("late-sale", device.device_id, 99, seeded.raffle_id, (999_999,), "0" * 64, 500)
    registry = tombola.core.registry
    before = tombola.core.count_tickets(seeded.raffle_id).get("sold", 0)
    conn = tombola.core.engine.connect()
    txn = conn.begin()
    _hold_draws(conn, [late], ())  # the recording has begun and holds the draw row
    done = threading.Event()
    worker = threading.Thread(target=lambda: (tombola.core.draw_initiate(seeded.raffle_id), done.set()))
    worker.start()
    assert not done.wait(1.0), "the freeze must wait for the recording in progress"

    # the recording writes its ticket and commits; the freeze then sees it
    from sqlalchemy import insert

    from gli_core.draw.proof import ticket_leaf_hash
    from gli_core.models import Ticket

    conn.execute(
        insert(Ticket.__table__).values(  # type: ignore[attr-defined]
            id="late-ticket",
            raffle_id=seeded.raffle_id,
            number=999_999,
            sale_id="late-sale",
            device_id=device.device_id,
            seq=99,
            record_hash="0" * 64,
            verification_code="LATE",
            amount_cents=500,
            status="sold",
            recorded_at_ms=clock(),
            leaf_hash=ticket_leaf_hash(999_999, "late-ticket", "late-sale", 500),
        )
    )
    txn.commit()
    conn.close()
    worker.join(30)
    assert done.is_set()
    status = tombola.core.draw_status(seeded.raffle_id)
    assert status["state"] == "RECONCILED" and status["ticket_count"] == before + 1
    tombola.core.draw_execute(seeded.raffle_id)  # the frozen root is the set's: the draw runs
    # once frozen, a recording is refused before writing anything
    with pytest.raises(CoreError) as exc:
        registry.record([late])
    assert exc.value.code == "ticket_set_frozen"
