"""The stateless validation procedures of ``docs/sync-protocol.md``, written with sync_protocol.

``sync_protocol`` gives the pieces (parsing, signature checks, :func:`verify_chain`); these
functions put them together in the order ``docs/sync-protocol.md`` fixes (sections 9, 10, 11
and 14), so the negative vectors have one meaning: the first check that fails names the error.
The server does the same steps and then the stateful ones (acknowledged seq, business rules).
``jcs_reference`` is an independent RFC 8785 encoder for JSON without floats, to check
:func:`sync_protocol.canonical.canonical_bytes` against something that is not ``rfc8785``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sync_protocol.canonical import canonical_bytes
from sync_protocol.chain import verify_chain, verify_event_chain
from sync_protocol.errors import BrokenChain, DeviceMismatch, Malformed
from sync_protocol.messages import (
    GENESIS_HASH,
    EnrollmentRequest,
    EnrollmentResponse,
    EventRecord,
    ExportHeader,
    ExportTrailer,
    RaffleInfo,
    RangeGrant,
    SaleRecord,
    SyncAck,
    SyncBatch,
    VoidRecord,
    parse_record,
)
from sync_protocol.signing import KeyRing, PublicKey, b64u_decode

MESSAGE_TYPES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        EnrollmentRequest,
        EnrollmentResponse,
        EventRecord,
        ExportHeader,
        ExportTrailer,
        RaffleInfo,
        RangeGrant,
        SaleRecord,
        SyncAck,
        SyncBatch,
        VoidRecord,
    )
}


def verify_grant(grant: Mapping[str, Any], server_keys: list[Mapping[str, str]]) -> RangeGrant:
    """A device receiving a grant: parse (version first), then the signature by a pinned key."""
    keys = KeyRing([PublicKey.from_dict(k) for k in server_keys])
    return RangeGrant.verified(grant, keys)


def verify_records(records: list[Mapping[str, Any]], *, device_id: str, prev_seq: int, prev_hash: str) -> str:
    """Parse each record and check it continues the chain at ``(prev_seq, prev_hash)``."""
    parsed = [parse_record(r) for r in records]
    return verify_chain(parsed, device_id=device_id, prev_seq=prev_seq, prev_hash=prev_hash)


def _check_ends_at(records: list[SaleRecord | VoidRecord], head: str, last_seq: int, head_hash: str) -> None:
    last = records[-1].seq if records else last_seq
    if last != last_seq or head != head_hash:
        raise BrokenChain(
            f"the records end at seq {last} with hash {head[:12]}..., "
            f"but the signed header says seq {last_seq} with hash {head_hash[:12]}...",
            seq=last,
        )


def verify_batch(batch: Any, device_public_key: bytes) -> tuple[SyncBatch, str]:
    """The stateless checks of a SyncBatch (steps 1, 2, 4, 5, 6 of docs/sync-protocol.md section 11).

    Returns the batch and its head hash. In order:

    1. parse: the version first (``unsupported_version``), then the shape (``malformed``);
    2. ``len(records) == last_seq - first_seq + 1`` (``malformed``);
    3. every record is of ``batch.device_id`` (``device_mismatch``);
    4. the header signature with the device key (``bad_signature``);
    5. the chain from ``(first_seq - 1, prev_hash)`` (``sequence_gap``, ``broken_chain``);
    6. the records end exactly at ``head_hash`` (``broken_chain``).
    """
    parsed = SyncBatch.from_dict(batch)
    if len(parsed.records) != parsed.last_seq - parsed.first_seq + 1:
        raise Malformed(
            f"the batch says records {parsed.first_seq}..{parsed.last_seq} but carries {len(parsed.records)}"
        )
    for record in parsed.records:
        if record.device_id != parsed.device_id:
            raise DeviceMismatch(
                f"record {record.seq} belongs to device {record.device_id}, not {parsed.device_id}", seq=record.seq
            )
    parsed.verify(device_public_key)
    head = verify_chain(
        parsed.records, device_id=parsed.device_id, prev_seq=parsed.first_seq - 1, prev_hash=parsed.prev_hash
    )
    _check_ends_at(parsed.records, head, parsed.last_seq, parsed.head_hash)
    return parsed, head


def parse_export(text: str) -> tuple[ExportHeader, list[SaleRecord | VoidRecord], ExportTrailer]:
    """Split an export file into header, records (``type`` removed) and trailer (``malformed``).

    Lines are separated by LF; blank lines are skipped.
    """
    try:
        objects = [json.loads(line) for line in text.split("\n") if line.strip()]
    except json.JSONDecodeError as exc:
        raise Malformed(f"an export line is not JSON: {exc}") from exc
    if len(objects) < 2 or not all(isinstance(o, dict) for o in objects):
        raise Malformed("an export file is JSON objects, a header first and a trailer last")
    if objects[0].get("type") != "header" or objects[-1].get("type") != "trailer":
        raise Malformed("an export file starts with its header and ends with its signed trailer")
    header = ExportHeader.from_dict(objects[0])
    trailer = ExportTrailer.from_dict(objects[-1])
    records = []
    for obj in objects[1:-1]:
        if obj.get("type") != "record":
            raise Malformed(f"export line of type {obj.get('type')!r} between header and trailer")
        records.append(parse_record({k: v for k, v in obj.items() if k != "type"}))
    return header, records, trailer


def verify_export(text: str, device_public_key: bytes) -> str:
    """The stateless checks of an export file (docs/sync-protocol.md section 14); return its head hash.

    1. parse lines, header, records, trailer (``malformed``; ``/v1/ingest`` says
       ``ingest_file_invalid``), the version first (``unsupported_version``);
    2. the chain of the records, from the genesis when the first is seq 1, else from the first
       record's ``prev_hash`` (``device_mismatch``, ``sequence_gap``, ``broken_chain``);
    3. the trailer matches: same device, ``first_seq``/``last_seq`` of the first and last
       records, ``head_hash`` of the last (``malformed``; ``/v1/ingest``: ``ingest_file_invalid``);
    4. the trailer signature with the device key (``bad_signature``).
    """
    header, records, trailer = parse_export(text)
    if not records:
        raise Malformed("the export file carries no record")
    first = records[0]
    prev_hash = GENESIS_HASH if first.seq == 1 else first.prev_hash
    head = verify_chain(records, device_id=header.device_id, prev_seq=first.seq - 1, prev_hash=prev_hash)
    if (
        trailer.device_id != header.device_id
        or trailer.first_seq != first.seq
        or trailer.last_seq != records[-1].seq
        or trailer.head_hash != head
    ):
        raise Malformed("the trailer does not match the records of the file")
    trailer.verify(device_public_key)
    return head


def verify_enrollment(request: Mapping[str, Any]) -> bytes:
    """The server receiving an enrollment request: parse, then proof of possession."""
    return EnrollmentRequest.from_dict(request).verify()


def parse_message(message_type: str, message: Any) -> Any:
    """``<message_type>.from_dict(message)``."""
    return MESSAGE_TYPES[message_type].from_dict(message)


def run_operation(operation: str, input_: Mapping[str, Any]) -> Any:
    """Run a negative vector's ``operation`` on its ``input``."""
    if operation == "verify_grant":
        return verify_grant(input_["grant"], input_["server_keys"])
    if operation == "verify_chain":
        return verify_records(
            input_["records"],
            device_id=input_["device_id"],
            prev_seq=input_["prev_seq"],
            prev_hash=input_["prev_hash"],
        )
    if operation == "verify_event_chain":
        return verify_event_chain(
            [EventRecord.from_dict(e) for e in input_["events"]],
            device_id=input_["device_id"],
            prev_seq=input_["prev_seq"],
            prev_hash=input_["prev_hash"],
        )
    if operation == "verify_batch":
        return verify_batch(input_["batch"], b64u_decode(input_["device_public_key"]))
    if operation == "verify_export":
        return verify_export(input_["ndjson"], b64u_decode(input_["device_public_key"]))
    if operation == "verify_enrollment":
        return verify_enrollment(input_["request"])
    if operation == "parse_record":
        return parse_record(input_["record"])
    if operation == "parse_message":
        return parse_message(input_["message_type"], input_["message"])
    if operation == "canonical":
        return canonical_bytes(input_["value"])
    raise AssertionError(f"unknown operation {operation!r}")


# --------------------------------------------------------------------------- independent JCS


def _jcs_string(text: str) -> str:
    out = ['"']
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    for ch in text:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs_reference(value: Any) -> bytes:
    """RFC 8785 for JSON values without floats, written from the RFC and not from ``rfc8785``."""

    def enc(v: Any) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, int):
            if abs(v) > 2**53 - 1:
                raise ValueError("integer outside the I-JSON range")
            return str(v)
        if isinstance(v, str):
            return _jcs_string(v)
        if isinstance(v, list):
            return "[" + ",".join(enc(x) for x in v) + "]"
        if isinstance(v, dict):
            items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
            return "{" + ",".join(_jcs_string(k) + ":" + enc(x) for k, x in items) + "}"
        raise TypeError(f"not a JSON value without floats: {type(v).__name__}")

    return enc(value).encode("utf-8")
