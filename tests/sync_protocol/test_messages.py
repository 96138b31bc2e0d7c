"""The wire objects: round trips, unknown fields, signatures over the right bytes, parse errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sync_protocol.canonical import canonical_bytes
from sync_protocol.errors import BadSignature, GrantInvalid, Malformed, TombolaError, UnsupportedVersion
from sync_protocol.messages import (
    GENESIS_HASH,
    MAX_BATCH_RECORDS,
    EnrollmentRequest,
    ExportTrailer,
    RaffleInfo,
    RangeGrant,
    SaleRecord,
    SyncBatch,
    parse_record,
)
from sync_protocol.messages._base import Message
from sync_protocol.signing import KeyRing, PublicKey, SoftwareSigner, b64u_decode, b64u_encode
from tests.sync_protocol.strategies import (
    MESSAGES,
    batches,
    enrollment_requests,
    export_trailers,
    extra_fields,
    grants,
    json_values,
    per_class,
    record_fields,
    relaxed,
    signers,
    single_records,
)

SERVER = SoftwareSigner.from_seed(b"\x01" * 32)
RING = KeyRing([PublicKey(key_id=SERVER.key_id, public_key=SERVER.public_key)])


def all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *all_subclasses(sub)}
    return out


def test_every_message_has_a_strategy() -> None:
    concrete = {
        c
        for c in all_subclasses(Message)
        if c.__module__.startswith("sync_protocol.") and not c.__name__.startswith("_")
    }
    assert concrete == set(MESSAGES)


@pytest.mark.parametrize("cls", sorted(MESSAGES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
@per_class
@given(data=st.data())
def test_from_dict_to_dict_round_trips(cls: type, data: st.DataObject) -> None:
    message = data.draw(MESSAGES[cls])
    wire = message.to_dict()
    again = cls.from_dict(wire)  # type: ignore[attr-defined]
    assert again == message
    assert again.to_dict() == wire
    assert canonical_bytes(again.to_dict()) == canonical_bytes(wire)


@pytest.mark.parametrize("cls", sorted(MESSAGES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
@per_class
@given(data=st.data())
def test_unknown_fields_are_kept_byte_identically(cls: type, data: st.DataObject) -> None:
    message = data.draw(MESSAGES[cls])
    extra = data.draw(extra_fields)
    wire = message.to_dict() | extra
    again = cls.from_dict(wire)  # type: ignore[attr-defined]
    assert again.to_dict() == wire
    assert canonical_bytes(again.to_dict()) == canonical_bytes(wire)


@pytest.mark.parametrize("cls", sorted(MESSAGES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
@per_class
@given(data=st.data())
def test_from_dict_of_anything_parses_or_raises_a_protocol_error(cls: type, data: st.DataObject) -> None:
    """Garbage never escapes as anything but a TombolaError (no KeyError, ValueError, crash)."""
    message = data.draw(MESSAGES[cls])
    wire = message.to_dict()
    field = data.draw(st.sampled_from(sorted(wire)))
    candidates = [
        data.draw(json_values),
        {k: v for k, v in wire.items() if k != field},
        wire | {field: data.draw(json_values)},
    ]
    for candidate in candidates:
        try:
            cls.from_dict(candidate)  # type: ignore[attr-defined]
        except TombolaError as exc:
            assert exc.code in {"malformed", "unsupported_version"}


def test_none_is_absent() -> None:
    """A null member is the same as no member: left out of the wire form and of canonical bytes."""
    record = SaleRecord.from_dict(
        {
            "sale_id": "s",
            "device_id": "d",
            "seq": 1,
            "raffle_id": "r",
            "device_time_ms": 0,
            "anchor_ms": 0,
            "elapsed_ms": 0,
            "prev_hash": GENESIS_HASH,
            "numbers": [1],
            "amount_cents": 500,
            "currency": "EUR",
            "payment": {"method": "cash", "reference": None},
            "x_later": None,
        }
    ).sealed()
    assert "reference" not in record.to_dict()["payment"]
    assert "x_later" not in record.to_dict()
    assert record.hash == parse_record({**record.to_dict(), "x_later": None}).compute_hash()


# --------------------------------------------------------------------------- grants


@relaxed
@given(grants(SERVER, extras=True))
def test_a_grant_with_unknown_fields_signed_then_parsed_verifies(grant: RangeGrant) -> None:
    parsed = RangeGrant.verified(grant.to_dict(), RING)
    assert parsed.to_dict() == grant.to_dict()
    assert parsed.model_extra == grant.model_extra


@relaxed
@given(grants(SERVER), st.data())
def test_changing_any_grant_field_invalidates_it(grant: RangeGrant, data: st.DataObject) -> None:
    wire = grant.to_dict()
    field = data.draw(st.sampled_from(sorted(set(wire) - {"signature", "signer_key_id", "protocol_version"})))
    value = wire[field]
    if field == "first_number":  # moving it up could put it above last_number: malformed, not forged
        assume(value > 1)
        wire[field] = value - 1
    else:
        wire[field] = value + 1 if isinstance(value, int) else value + "x"
    with pytest.raises(GrantInvalid):
        RangeGrant.verified(wire, RING)


@relaxed
@given(grants(SERVER), extra_fields.filter(bool))
def test_adding_a_field_to_a_signed_grant_invalidates_it(grant: RangeGrant, extra: dict[str, Any]) -> None:
    with pytest.raises(GrantInvalid):
        RangeGrant.verified(grant.to_dict() | extra, RING)


@relaxed
@given(grants(SERVER), st.data())
def test_any_byte_flip_in_a_grant_signature_invalidates_it(grant: RangeGrant, data: st.DataObject) -> None:
    signature = bytearray(b64u_decode(grant.signature))
    signature[data.draw(st.integers(0, 63))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(GrantInvalid):
        RangeGrant.verified(grant.to_dict() | {"signature": b64u_encode(bytes(signature))}, RING)


@relaxed
@given(grants())
def test_a_grant_from_an_unpinned_key_is_invalid(grant: RangeGrant) -> None:
    if grant.signer_key_id != SERVER.key_id:
        with pytest.raises(GrantInvalid):
            RangeGrant.verified(grant.to_dict(), RING)


def test_grant_without_signature_is_invalid() -> None:
    grant = RangeGrant(
        grant_id="g",
        raffle_id="r",
        device_id="d",
        first_number=1,
        last_number=10,
        issued_at_ms=0,
        lease_s=60,
        sales_close_at_ms=1,
        signer_key_id=SERVER.key_id,
    )
    with pytest.raises(GrantInvalid):
        grant.verify(RING)


def test_grant_range() -> None:
    grant = RangeGrant(
        grant_id="g",
        raffle_id="r",
        device_id="d",
        first_number=1001,
        last_number=2000,
        issued_at_ms=0,
        lease_s=60,
        sales_close_at_ms=1,
        signer_key_id="",
    )
    assert grant.size == 1000
    assert grant.contains(1001) and grant.contains(2000)
    assert not grant.contains(1000) and not grant.contains(2001)
    with pytest.raises(Malformed):
        RangeGrant.from_dict(grant.to_dict() | {"first_number": 2001})
    with pytest.raises(Malformed):
        RangeGrant.from_dict(grant.to_dict() | {"first_number": 0})


# --------------------------------------------------------------------------- batches


@relaxed
@given(batches())
def test_batch_signature_verifies(pair: tuple[SyncBatch, SoftwareSigner]) -> None:
    batch, signer = pair
    SyncBatch.from_dict(batch.to_dict()).verify(signer.public_key)
    assert set(batch.to_dict()) - set(batch.header()) == {"records", "signature"}


@relaxed
@given(batches(), st.data())
def test_changing_any_header_field_breaks_the_batch_signature(
    pair: tuple[SyncBatch, SoftwareSigner], data: st.DataObject
) -> None:
    batch, signer = pair
    wire = batch.to_dict()
    field = data.draw(st.sampled_from(sorted(set(batch.header()) - {"protocol_version"})))
    value = wire[field]
    if isinstance(value, int):
        wire[field] = value + 1
    elif isinstance(value, list):
        wire[field] = [*value, {"seq": 1, "code": "sale_after_close"}]
    elif field.endswith("hash"):
        wire[field] = ("1" if value[0] != "1" else "2") + value[1:]
    else:
        wire[field] = value + "x"
    with pytest.raises(BadSignature):
        SyncBatch.from_dict(wire).verify(signer.public_key)


@relaxed
@given(batches())
def test_the_batch_signature_covers_the_header_only(pair: tuple[SyncBatch, SoftwareSigner]) -> None:
    """Records are not signed one by one: head_hash (signed) commits to them through the chain."""
    batch, signer = pair
    moved = SyncBatch.from_dict(batch.to_dict() | {"records": []})
    moved.verify(signer.public_key)
    assert moved.signing_bytes() == batch.signing_bytes()


def test_empty_batch_is_a_poll() -> None:
    signer = SoftwareSigner.from_seed(b"\x02" * 32)
    head = "ab" * 32
    batch = SyncBatch(device_id="d", first_seq=8, last_seq=7, prev_hash=head, head_hash=head, sent_at_ms=0).signed_by(
        signer
    )
    again = SyncBatch.from_dict(batch.to_dict())
    again.verify(signer.public_key)
    assert again.records == [] and again.last_seq == again.first_seq - 1


def test_batch_records_of_both_kinds_parse() -> None:
    batch_dict = {
        "device_id": "d",
        "first_seq": 1,
        "last_seq": 0,
        "prev_hash": GENESIS_HASH,
        "head_hash": GENESIS_HASH,
        "sent_at_ms": 0,
        "records": [{"kind": "refund"}],
    }
    with pytest.raises(Malformed):
        SyncBatch.from_dict(batch_dict)
    with pytest.raises(Malformed):
        SyncBatch.from_dict(batch_dict | {"records": ["not an object"]})


def test_batch_cannot_carry_more_than_the_maximum() -> None:
    head = "ab" * 32
    batch = {"device_id": "d", "first_seq": 1, "last_seq": 0, "prev_hash": head, "head_hash": head, "sent_at_ms": 0}
    record = SaleRecord(
        sale_id="s",
        device_id="d",
        seq=1,
        raffle_id="r",
        device_time_ms=0,
        anchor_ms=0,
        elapsed_ms=0,
        prev_hash=head,
        numbers=[1],
        amount_cents=1,
        currency="EUR",
        payment={"method": "cash"},
    )
    with pytest.raises(Malformed):
        SyncBatch.from_dict(batch | {"records": [record.to_dict()] * (MAX_BATCH_RECORDS + 1)})


# --------------------------------------------------------------------------- enrollment, export


@relaxed
@given(enrollment_requests())
def test_enrollment_request_proves_possession(request: EnrollmentRequest) -> None:
    parsed = EnrollmentRequest.from_dict(request.to_dict())
    assert parsed.verify() == b64u_decode(request.public_key)


@relaxed
@given(enrollment_requests(), signers)
def test_enrollment_request_signed_by_another_key_fails(request: EnrollmentRequest, other: SoftwareSigner) -> None:
    forged = request.signed_by(other)
    if b64u_encode(other.public_key) != request.public_key:
        with pytest.raises(BadSignature):
            EnrollmentRequest.from_dict(forged.to_dict()).verify()


@relaxed
@given(enrollment_requests())
def test_enrollment_request_tampered_fails(request: EnrollmentRequest) -> None:
    with pytest.raises(BadSignature):
        EnrollmentRequest.from_dict(request.to_dict() | {"device_name": request.device_name + "x"}).verify()


@relaxed
@given(export_trailers(), signers, st.data())
def test_export_trailer_signature(trailer: ExportTrailer, signer: SoftwareSigner, data: st.DataObject) -> None:
    signed = ExportTrailer.from_dict(trailer.to_dict()).signed_by(signer)
    ExportTrailer.from_dict(signed.to_dict()).verify(signer.public_key)
    field = data.draw(st.sampled_from(["first_seq", "last_seq", "device_id", "head_hash"]))
    value = signed.to_dict()[field]
    changed = value + 1 if isinstance(value, int) else value[::-1] + "0"
    with pytest.raises(BadSignature):
        ExportTrailer.from_dict(signed.to_dict() | {field: changed}).verify(signer.public_key)


# --------------------------------------------------------------------------- records, raffles


@relaxed
@given(single_records())
def test_record_wire_form_hashes_the_same(record: Any) -> None:
    again = parse_record(record.to_dict())
    assert again.compute_hash() == record.hash == again.hash


def test_parse_record_names_the_field_and_seq() -> None:
    with pytest.raises(Malformed) as info:
        parse_record({"kind": "sale", "seq": 3})
    assert info.value.extra["seq"] == 3
    assert info.value.extra["field"].startswith("sale.")
    with pytest.raises(Malformed):
        parse_record("not an object")


def test_raffle_info_bundles_only_is_optional_and_defaults_to_false() -> None:
    """An outside server that does not send ``bundles_only`` still speaks the protocol."""
    wire = {
        "raffle_id": "r",
        "name": "n",
        "currency": "EUR",
        "sales_open_at_ms": 0,
        "sales_close_at_ms": 1,
        "status": "open",
        "price_points": [{"quantity": 1, "amount_cents": 500}],
    }
    assert not RaffleInfo.from_dict(wire).bundles_only
    assert RaffleInfo.from_dict(wire).to_dict() == wire  # re-encoded as received
    for flag in (True, False):
        sent = {**wire, "bundles_only": flag}
        assert (RaffleInfo.from_dict(sent).bundles_only, RaffleInfo.from_dict(sent).to_dict()) == (flag, sent)


def test_message_must_be_an_object() -> None:
    for cls in MESSAGES:
        with pytest.raises(Malformed):
            cls.from_dict(["a list"])  # type: ignore[attr-defined]


def test_version_2_is_refused_in_every_versioned_message() -> None:
    for cls in MESSAGES:
        if "protocol_version" in cls.model_fields:  # type: ignore[attr-defined]
            with pytest.raises(UnsupportedVersion):
                cls.from_dict({"protocol_version": "2.0"})  # type: ignore[attr-defined]


@given(record_fields(), st.booleans())
def test_record_hash_is_over_the_wire_form(fields: dict[str, Any], extras: bool) -> None:
    """``compute_hash`` (Python-mode dump when the record has only declared fields) hashes
    exactly the JSON wire form, ``to_dict()`` without ``hash``, with or without unknown fields."""
    import hashlib

    from sync_protocol.canonical import domain_bytes
    from sync_protocol.messages.records import parse_record

    if extras:
        fields = {**fields, "x_later": {"a": [1, "b", None]}}
        if fields["kind"] == "sale":
            fields["payment"] = {**fields["payment"], "x_terminal": "T-9"}
    record = parse_record({**fields, "device_id": "dv-1", "seq": 1, "prev_hash": "0" * 64})
    wire = record.to_dict()
    wire.pop("hash", None)
    assert record.compute_hash() == hashlib.sha256(domain_bytes("record", wire)).hexdigest()
