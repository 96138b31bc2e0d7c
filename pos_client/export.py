"""Export: the whole chain as an NDJSON file a server can ingest for a dead device.

Format (:mod:`sync_protocol.messages.export`): line 1 an ``ExportHeader``; then every record
in ``seq`` order, its wire dict with ``"type": "record"`` added (a reader drops ``type`` before
parsing, since it is not part of the hashed record); last an ``ExportTrailer`` over
``(device_id, first_seq, last_seq, head_hash)`` signed with the device key.

The file is streamed from one read snapshot of the database, written to ``<path>.tmp``,
fsynced and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from pos_client import ledger
from pos_client.clock import Clock
from pos_client.errors import ExportFailed
from pos_client.store import Store
from sync_protocol.messages import ExportHeader, ExportTrailer
from sync_protocol.signing import Signer


@dataclass(frozen=True)
class ExportResult:
    path: Path
    record_count: int
    first_seq: int
    last_seq: int
    head_hash: str


def export(store: Store, clock: Clock, signer: Signer, path: str | Path) -> ExportResult:
    """Write the export file to ``path``.

    Raises:
        NotEnrolled: the device has no identity (and so no records).
        ExportFailed: the file could not be written.
    """
    target = Path(path)
    device = store.enrolled_device()
    tmp = target.with_name(target.name + ".tmp")
    try:
        with store.read() as conn, tmp.open("wb") as out:
            record_count = ledger.count(conn)
            chain = ledger.head(conn)
            header = ExportHeader(device_id=device.device_id, exported_at_ms=clock.wall_ms(), record_count=record_count)
            out.write(orjson.dumps(header.to_dict()) + b"\n")
            written = 0
            for body in ledger.iter_bodies(conn):
                out.write(orjson.dumps({"type": "record", **body}) + b"\n")
                written += 1
            if written != record_count:  # pragma: no cover - the snapshot guarantees it
                raise ExportFailed(f"wrote {written} records, expected {record_count}")
            trailer = ExportTrailer(
                device_id=device.device_id, first_seq=1, last_seq=chain.seq, head_hash=chain.hash
            ).signed_by(signer)
            out.write(orjson.dumps(trailer.to_dict()) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(target)
        _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportFailed(f"cannot write {target}: {exc}") from exc
    return ExportResult(path=target, record_count=record_count, first_seq=1, last_seq=chain.seq, head_hash=chain.hash)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
