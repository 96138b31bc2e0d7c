"""Export: the NDJSON file parses back into a verified chain with a device-signed trailer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pos_client import ExportFailed, PosClient, ledger
from sync_protocol.chain import verify_chain
from sync_protocol.errors import BadSignature
from sync_protocol.messages import GENESIS_HASH, ExportHeader, ExportTrailer, parse_record
from sync_protocol.signing import SoftwareSigner
from tests.pos_client.fake_server import FakeServer


def _read(path: Path) -> tuple[ExportHeader, list[dict[str, Any]], ExportTrailer]:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "trailer"
    assert all(line["type"] == "record" for line in lines[1:-1])
    return ExportHeader.from_dict(lines[0]), lines[1:-1], ExportTrailer.from_dict(lines[-1])


def test_export_round_trip(enrolled: PosClient, server: FakeServer, tmp_path: Path) -> None:
    sales = [enrolled.sell("R1", q) for q in (1, 3, 5)]
    enrolled.void(sales[1].sale_id, "refund")
    enrolled.sync()  # synced or not, everything is exported
    enrolled.sell("R1", 1)
    path = tmp_path / "out" / "pos.ndjson"
    path.parent.mkdir()

    result = enrolled.export(path)

    header, lines, trailer = _read(path)
    device_id = enrolled.device_id or ""
    assert (header.device_id, header.record_count, header.protocol_version) == (device_id, 5, "1.0")
    records = [parse_record({k: v for k, v in line.items() if k != "type"}) for line in lines]
    head = verify_chain(records, device_id=device_id, prev_seq=0, prev_hash=GENESIS_HASH)
    assert [r.to_dict() for r in records] == [r.to_dict() for r in enrolled.records()]
    assert (trailer.device_id, trailer.first_seq, trailer.last_seq, trailer.head_hash) == (device_id, 1, 5, head)
    trailer.verify(enrolled.public_key)
    assert server.devices[device_id].public_key == enrolled.public_key
    assert (result.record_count, result.last_seq, result.head_hash, result.path) == (5, 5, head, path)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_trailer_signature_is_the_device_keys(enrolled: PosClient, tmp_path: Path) -> None:
    enrolled.sell("R1", 1)
    enrolled.export(tmp_path / "a.ndjson")
    _, _, trailer = _read(tmp_path / "a.ndjson")
    with pytest.raises(BadSignature):
        trailer.verify(SoftwareSigner.generate().public_key)
    with pytest.raises(BadSignature):
        trailer.model_copy(update={"last_seq": 2}).verify(enrolled.public_key)


def test_export_of_an_empty_chain(enrolled: PosClient, tmp_path: Path) -> None:
    enrolled.export(tmp_path / "empty.ndjson")
    header, lines, trailer = _read(tmp_path / "empty.ndjson")
    assert (header.record_count, lines) == (0, [])
    assert (trailer.first_seq, trailer.last_seq, trailer.head_hash) == (1, 0, GENESIS_HASH)
    trailer.verify(enrolled.public_key)


def test_export_streams_many_records_in_order(enrolled: PosClient, tmp_path: Path) -> None:
    for _ in range(3):
        enrolled.sell("R1", 1)
    chunks = list(ledger.iter_bodies(enrolled.store.conn, chunk=2))
    assert [c["seq"] for c in chunks] == [1, 2, 3]


def test_export_to_an_unwritable_place(enrolled: PosClient, tmp_path: Path) -> None:
    with pytest.raises(ExportFailed) as info:
        enrolled.export(tmp_path / "missing-dir" / "x.ndjson")
    assert info.value.code == "export_failed"
