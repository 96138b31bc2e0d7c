"""Nightly reconciliation: ingest device export files and write reconciliation reports.

:func:`ingest_file` reads a device's NDJSON export twice, streaming (constant memory): the
first pass checks the whole chain and the trailer's device signature before anything is
written; the second applies it in batches through the same validation as a sync, recording
records that break a business rule as rejected with their reason (a dead device cannot
re-send). :func:`report` gives the regulator's event summary per raffle and per device.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from tqdm import tqdm

from server.context import Tombola
from server.enrollment.service import DEVICE
from server.errors import IngestFileInvalid, NotFound
from server.raffles.service import ORG, VENUE, get_raffle
from server.sync.service import SALE, apply_batch
from sync_protocol.chain import verify_chain
from sync_protocol.errors import Malformed, ProtocolError
from sync_protocol.messages import GENESIS_HASH, ExportHeader, ExportTrailer, SyncBatch, parse_record
from sync_protocol.signing import b64u_decode
from sync_protocol.strict_json import loads_strict

CHUNK = 500


def _lines(fh: IO[bytes], bar: tqdm | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in enumerate(fh, start=1):
        if bar is not None:
            bar.update(len(line))
        if not line.strip():
            continue
        try:
            obj = loads_strict(line.rstrip(b"\r\n"), f"line {lineno}")
        except Malformed as exc:  # not JSON, or two members of one name (I-JSON, as on the wire)
            raise IngestFileInvalid(exc.detail, line=lineno, **exc.extra) from exc
        if not isinstance(obj, dict):
            raise IngestFileInvalid(f"line {lineno} is not a JSON object", line=lineno)
        yield lineno, obj


def _chunks(path: Path, bar: tqdm | None) -> Iterator[tuple[ExportHeader | ExportTrailer | None, list[Any]]]:
    """Yield (header, []), then (None, records) chunks, then (trailer, [])."""
    with path.open("rb") as fh:
        lines = _lines(fh, bar)
        first = next(lines, None)
        if first is None or first[1].get("type") != "header":
            raise IngestFileInvalid(f"{path.name} does not start with an export header")
        yield ExportHeader.from_dict(first[1]), []
        chunk: list[Any] = []
        for lineno, obj in lines:
            kind = obj.pop("type", None)
            if kind == "record":
                try:
                    chunk.append(parse_record(obj))
                except ProtocolError as exc:
                    raise IngestFileInvalid(f"line {lineno}: {exc.detail}", line=lineno) from exc
                if len(chunk) == CHUNK:
                    yield None, chunk
                    chunk = []
            elif kind == "trailer":
                if chunk:
                    yield None, chunk
                yield ExportTrailer.from_dict(obj), []
                return
            else:
                raise IngestFileInvalid(f"line {lineno} has unknown type {kind!r}", line=lineno)
        raise IngestFileInvalid(f"{path.name} ends without its signed trailer: it is truncated")


def ingest_file(app: Tombola, path: Path, *, progress: bool = True) -> dict[str, Any]:
    """Verify then apply one export file; returns what was applied, duplicated and rejected."""
    size = path.stat().st_size
    # Pass 1: the whole chain and the trailer signature, nothing written.
    header: ExportHeader | None = None
    seq, head, first_seq, count = 0, GENESIS_HASH, 1, 0
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"verify {path.name}", disable=not progress) as bar:
        for marker, records in _chunks(path, bar):
            if isinstance(marker, ExportHeader):
                header = marker
            elif isinstance(marker, ExportTrailer):
                trailer = marker
            else:
                assert header is not None
                if count == 0:
                    first_seq = records[0].seq
                    seq, head = first_seq - 1, records[0].prev_hash
                head = verify_chain(records, device_id=header.device_id, prev_seq=seq, prev_hash=head)
                seq += len(records)
                count += len(records)
    assert header is not None
    with app.engine.connect() as conn:
        device = conn.execute(select(DEVICE).where(DEVICE.c.id == header.device_id)).first()
    if device is None:
        raise NotFound(f"the file is from device {header.device_id}, not enrolled here")
    if trailer.device_id != header.device_id or (count and (trailer.head_hash != head or trailer.last_seq != seq)):
        raise IngestFileInvalid("the trailer does not match the records of the file")
    trailer.verify(b64u_decode(device.public_key))
    # Pass 2: apply, batch by batch, with the sync's validation.
    applied = duplicates = 0
    rejected: list[dict[str, Any]] = []
    prev_hash = GENESIS_HASH
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"ingest {path.name}", disable=not progress) as bar:
        for marker, records in _chunks(path, bar):
            if marker is not None or not records:
                continue
            prev_hash = records[0].prev_hash
            batch = SyncBatch(
                device_id=header.device_id,
                first_seq=records[0].seq,
                last_seq=records[-1].seq,
                prev_hash=prev_hash,
                head_hash=records[-1].hash,
                sent_at_ms=header.exported_at_ms,
                records=records,
            )
            outcome = apply_batch(
                app, batch, source="file", verify_signature=False, accept_rejections=True, allow_revoked=True
            )
            applied += outcome.applied
            duplicates += outcome.duplicates
            rejected.extend(r.to_dict() for r in outcome.rejected)
    return {
        "file": path.name,
        "device_id": header.device_id,
        "records": count,
        "applied": applied,
        "duplicates": duplicates,
        "rejected": rejected,
        "last_seq": seq,
    }


def _ranges(numbers: list[int]) -> list[list[int]]:
    """[1,2,3,7] -> [[1,3],[7,7]]."""
    out: list[list[int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def report(app: Tombola, raffle_id: str) -> dict[str, Any]:
    """The reconciliation report of a raffle: per device and per raffle (the event summary a
    regulator asks for, after North Dakota Admin. Code 99-01.3-16-09.5)."""
    raffle = get_raffle(app, raffle_id)
    with app.engine.connect() as conn:
        venue = conn.execute(select(VENUE).where(VENUE.c.id == raffle["venue_id"])).one()
        org = conn.execute(select(ORG).where(ORG.c.id == venue.organisation_id)).one()
        devices = {r.id: r for r in conn.execute(select(DEVICE).where(DEVICE.c.venue_id == raffle["venue_id"]))}
        sales = conn.execute(
            select(
                SALE.c.device_id,
                SALE.c.kind,
                SALE.c.status,
                SALE.c.voided,
                SALE.c.quantity,
                SALE.c.amount_cents,
                SALE.c.payment_method,
                SALE.c.seq,
                SALE.c.reject_code,
            ).where(SALE.c.raffle_id == raffle_id)
        ).all()
        first_sale = conn.execute(select(func.min(SALE.c.device_time_ms)).where(SALE.c.raffle_id == raffle_id)).scalar()
    grants = app.core.grants(raffle_id=raffle_id, status=None)
    per_device: dict[str, dict[str, Any]] = {}

    def entry(device_id: str) -> dict[str, Any]:
        if device_id not in per_device:
            dev = devices.get(device_id)
            acked = dev.acked_seq if dev is not None else 0
            last_seen = dev.last_seen_seq if dev is not None else 0
            per_device[device_id] = {
                "device_id": device_id,
                "device_name": dev.name if dev is not None else device_id,
                "status": dev.status if dev is not None else "online",
                "ranges": [],
                "granted": 0,
                "sold": 0,
                "voided": 0,
                "unused": 0,
                "rejected": 0,
                "cash_expected_cents": 0,
                "card_cents": 0,
                "acked_seq": acked,
                "missing_sequences": [[acked + 1, last_seen]] if last_seen > acked else [],
                "last_sync_ms": dev.last_sync_ms if dev is not None else None,
            }
        return per_device[device_id]

    for view in grants:
        g = view.grant
        e = entry(g.device_id)
        e["ranges"].append(
            {
                "grant_id": g.grant_id,
                "first": g.first_number,
                "last": g.last_number,
                "count": g.size,
                "kind": view.kind,
                "status": view.status,
                "reason": view.reason,
            }
        )
        e["granted"] += g.size
    price_points: Counter[tuple[int, int]] = Counter()
    gross = 0
    for s in sales:
        e = entry(s.device_id)
        if s.status == "rejected":  # every rejected record, a void as well as a sale
            e["rejected"] += 1
            continue
        if s.kind != "sale":
            continue
        if s.voided:
            e["voided"] += s.quantity
            continue
        e["sold"] += s.quantity
        gross += s.amount_cents
        price_points[(s.quantity, s.amount_cents)] += 1
        if s.payment_method == "cash":
            e["cash_expected_cents"] += s.amount_cents
        else:
            e["card_cents"] += s.amount_cents
    counts = app.core.count_tickets(raffle_id)
    for e in per_device.values():
        e["unused"] = max(0, e["granted"] - e["sold"] - e["voided"])
    when = datetime.fromtimestamp((first_sale or raffle["sales_open_at_ms"]) / 1000, tz=UTC)
    return {
        "organisation": org.name,
        "licence_number": org.licence_number,
        "venue": venue.name,
        "venue_id": venue.id,
        "raffle_id": raffle_id,
        "raffle": raffle["name"],
        "event_number": raffle["event_number"],
        "date": when.date().isoformat(),
        "status": raffle["status"],
        "currency": raffle["currency"],
        "ranges": [r | {"device_id": d["device_id"]} for d in per_device.values() for r in d["ranges"]],
        "numbers_granted": sum(d["granted"] for d in per_device.values()),
        "tickets_on_record": counts,
        "sales_by_price_point": [
            {"quantity": q, "amount_cents": a, "sales": n, "tickets": q * n, "total_cents": a * n}
            for (q, a), n in sorted(price_points.items())
        ],
        "tickets_sold": sum(d["sold"] for d in per_device.values()),
        "gross_sales_cents": gross,
        "devices": sorted(per_device.values(), key=lambda d: d["device_id"]),
    }


def render_text(rep: dict[str, Any]) -> str:
    """The report as plain text for people and printers."""
    cur = rep["currency"]

    def money(cents: int) -> str:
        return f"{cents / 100:,.2f} {cur}"

    lines = [
        f"RAFFLE RECONCILIATION - {rep['organisation']} (licence {rep['licence_number']})",
        f"Venue: {rep['venue']}   Raffle: {rep['raffle']} ({rep['raffle_id']})   Event #{rep['event_number']}",
        f"Date: {rep['date']}   Status: {rep['status']}",
        "",
        "Ranges sent to devices:",
    ]
    lines += [
        f"  {r['device_id']:<16} {r['first']:>8} - {r['last']:<8} count {r['count']:>6}  {r['kind']} {r['status']}"
        + (f" ({r['reason']})" if r["reason"] else "")
        for r in rep["ranges"]
    ]
    lines += ["", "Tickets sold per price point:"]
    lines += [
        f"  {p['quantity']:>3} for {money(p['amount_cents']):>12}: {p['sales']:>6} sales, {p['tickets']:>7} tickets, "
        f"{money(p['total_cents'])}"
        for p in rep["sales_by_price_point"]
    ]
    lines += ["", f"Tickets sold: {rep['tickets_sold']}   Gross sales: {money(rep['gross_sales_cents'])}", ""]
    lines += ["Per device: granted / sold / voided / unused / rejected / cash expected / missing sequences"]
    for d in rep["devices"]:
        missing = ", ".join(f"{a}-{b}" for a, b in d["missing_sequences"]) or "none"
        lines.append(
            f"  {d['device_id']:<16} {d['granted']:>7} {d['sold']:>7} {d['voided']:>6} {d['unused']:>7} "
            f"{d['rejected']:>5}  {money(d['cash_expected_cents'])}  missing: {missing}"
        )
    return "\n".join(lines) + "\n"


def write_reports(app: Tombola, raffle_ids: list[str]) -> list[Path]:
    """Write ``reports/reconciliation-<raffle>.json`` and ``.txt``; return the paths."""
    out = app.settings.report_dir
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for raffle_id in raffle_ids:
        rep = report(app, raffle_id)
        json_path = out / f"reconciliation-{raffle_id}.json"
        json_path.write_text(json.dumps(rep, indent=2))
        txt_path = out / f"reconciliation-{raffle_id}.txt"
        txt_path.write_text(render_text(rep))
        paths += [json_path, txt_path]
    return paths
