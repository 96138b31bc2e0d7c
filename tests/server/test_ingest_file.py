"""Nightly reconciliation: a device's NDJSON export reaches the server alone (dead device),
is verified before anything is written, and overlaps with what sync already delivered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.context import Tombola
from server.errors import IngestFileInvalid
from server.reconcile import service as reconcile
from sync_protocol.errors import BadSignature, BrokenChain
from sync_protocol.messages import ExportHeader, ExportTrailer
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed


def export(device: RawDevice, path: Path, *, signer: object = None) -> Path:
    lines = [
        ExportHeader(
            device_id=device.device_id, exported_at_ms=device.anchor_ms, record_count=len(device.records)
        ).to_dict()
    ]
    lines += [r.to_dict() | {"type": "record"} for r in device.records]
    trailer = ExportTrailer(
        device_id=device.device_id, first_seq=1, last_seq=device.seq, head_hash=device.head
    ).signed_by(signer or device.signer)  # type: ignore[arg-type]
    lines.append(trailer.to_dict())
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_dead_device_reaches_the_server_through_its_file(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, tmp_path: Path
) -> None:
    sales = [device.sale(seeded.raffle_id, q) for q in (1, 5, 30, 1)]
    device.sync(client, 1, last_seq=2)  # half synced before the device died
    device.void(sales[3])
    device.sale(seeded.raffle_id, numbers=[999_999])  # outside its grant: rejected, not lost
    result = reconcile.ingest_file(tombola, export(device, tmp_path / "dev.ndjson"), progress=False)
    assert (result["records"], result["duplicates"], result["applied"]) == (6, 2, 3)
    assert [(r["seq"], r["code"]) for r in result["rejected"]] == [(6, "outside_grant")]
    numbers = sorted(t.number for t in tombola.core.tickets(seeded.raffle_id) if t.status == "sold")
    assert numbers == sorted(sales[0].numbers + sales[1].numbers + sales[2].numbers)
    rep = reconcile.report(tombola, seeded.raffle_id)
    assert rep["devices"][0]["rejected"] == 1
    again = reconcile.ingest_file(tombola, tmp_path / "dev.ndjson", progress=False)
    assert (again["applied"], again["duplicates"]) == (0, 6)


def test_file_is_verified_before_anything_is_written(
    tombola: Tombola, seeded: Seed, device: RawDevice, tmp_path: Path
) -> None:
    from sync_protocol.signing import SoftwareSigner

    for _ in range(3):
        device.sale(seeded.raffle_id)
    with pytest.raises(BadSignature):
        reconcile.ingest_file(
            tombola, export(device, tmp_path / "forged.ndjson", signer=SoftwareSigner.generate()), progress=False
        )
    path = export(device, tmp_path / "tampered.ndjson")
    lines = path.read_text().splitlines()
    rec = json.loads(lines[3])
    rec["amount_cents"] = 1
    lines[3] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BrokenChain):
        reconcile.ingest_file(tombola, path, progress=False)
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IngestFileInvalid, match="truncated"):
        reconcile.ingest_file(tombola, path, progress=False)
    assert list(tombola.core.tickets(seeded.raffle_id)) == []


def test_http_upload(client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, tmp_path: Path) -> None:
    device.sale(seeded.raffle_id, 5)
    body = export(device, tmp_path / "d.ndjson").read_bytes()
    resp = client.post("/v1/ingest", content=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["applied"] == 1
    resp = client.post("/v1/ingest", content=b"garbage\n", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert (resp.status_code, resp.json()["error"]) == (422, "ingest_file_invalid")


def test_a_line_with_a_duplicate_member_is_refused_like_a_sync_body(
    tombola: Tombola, seeded: Seed, device: RawDevice, tmp_path: Path
) -> None:
    """I-JSON holds in export files too: a record line naming ``amount_cents`` twice is refused
    (before, the last member silently won) and nothing of the file is written."""
    device.sale(seeded.raffle_id, 5)
    path = export(device, tmp_path / "dup.ndjson")
    lines = path.read_text().splitlines()
    lines[1] = '{"amount_cents": 1, ' + lines[1][1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestFileInvalid) as refused:
        reconcile.ingest_file(tombola, path, progress=False)
    assert refused.value.extra == {"line": 2, "field": "amount_cents"}
    assert list(tombola.core.tickets(seeded.raffle_id)) == []
