"""Hypothesis strategies for the sync protocol: JSON values, keys, records, chains, messages."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from sync_protocol.messages import (
    EVENT_TYPES,
    GENESIS_HASH,
    EnrollmentRequest,
    EnrollmentResponse,
    EventRecord,
    ExportHeader,
    ExportTrailer,
    Payment,
    PricePoint,
    RaffleInfo,
    RangeGrant,
    RejectedRecord,
    RejectionAck,
    SaleRecord,
    SellerInfo,
    SyncAck,
    SyncBatch,
    VoidRecord,
)
from sync_protocol.signing import SoftwareSigner, b64u_encode

MAX_SAFE = 2**53 - 1

#: No per-example deadline: signatures and pydantic make examples slow on a loaded CI machine.
relaxed = settings(deadline=None)
#: For the tests run once per message class: fewer examples each, the classes add up.
per_class = settings(deadline=None, max_examples=40)

#: Unicode text without lone surrogates (which are not text and cannot be UTF-8).
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
#: strings a server stores (seller id, reasons, references, names): no U+0000 (sync_protocol.bounds)
stored_chars = st.characters(codec="utf-8", exclude_characters="\x00")
safe_ints = st.integers(min_value=-MAX_SAFE, max_value=MAX_SAFE)

json_scalars = st.none() | st.booleans() | safe_ints | texts
#: JSON values as the protocol carries them: no floats, integers inside the I-JSON range.
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(texts, json_values, max_size=8)

ids = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=26)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
ms = st.integers(min_value=0, max_value=4_102_444_800_000)  # up to 2100-01-01
seeds = st.binary(min_size=32, max_size=32)
signers = seeds.map(SoftwareSigner.from_seed)

#: Unknown members as a newer minor version might add: a name no message of 1.0 uses, any
#: JSON value but a top-level null (a null member means "absent", see docs/sync-protocol.md).
extra_fields = st.dictionaries(
    st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).map(lambda s: "x_" + s),
    json_values.filter(lambda v: v is not None),
    max_size=3,
)

payments = st.one_of(
    st.builds(Payment, method=st.just("cash")),
    st.builds(Payment, method=st.just("card"), reference=st.none() | st.text(stored_chars, min_size=1, max_size=30)),
)


@st.composite
def record_fields(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """The content of a record (no device_id, seq, prev_hash, hash: the chain sets those)."""
    kind = kind or draw(st.sampled_from(["sale", "sale", "void"]))
    fields: dict[str, Any] = {
        "kind": kind,
        "sale_id": draw(ids),
        "raffle_id": draw(ids),
        "seller_id": draw(st.text(stored_chars, max_size=10)),
        "device_time_ms": draw(ms),
        "anchor_ms": draw(ms),
        "elapsed_ms": draw(st.integers(min_value=0, max_value=9 * 3600 * 1000)),
    }
    if kind == "sale":
        fields |= {
            "numbers": draw(st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=6)),
            "amount_cents": draw(st.integers(min_value=0, max_value=10**9)),
            "currency": draw(st.sampled_from(["EUR", "USD", "GBP", "CAD"])),
            "payment": draw(payments).to_dict(),
        }
    else:
        fields |= {"voids": draw(ids), "reason": draw(st.text(stored_chars, min_size=1, max_size=40))}
    return fields


def make_record(fields: dict[str, Any], *, device_id: str, seq: int, prev_hash: str) -> SaleRecord | VoidRecord:
    """A sealed record of ``device_id`` at ``seq`` after ``prev_hash``."""
    cls = SaleRecord if fields["kind"] == "sale" else VoidRecord
    return cls.from_dict({**fields, "device_id": device_id, "seq": seq, "prev_hash": prev_hash}).sealed()


@st.composite
def chains(
    draw: st.DrawFn, *, min_size: int = 1, max_size: int = 8, with_extras: bool = False
) -> tuple[str, int, str, list[SaleRecord | VoidRecord]]:
    """``(device_id, prev_seq, prev_hash, records)``: a valid chain continuing at prev_seq."""
    device_id = draw(ids)
    prev_seq = draw(st.sampled_from([0, 0, draw(st.integers(min_value=1, max_value=10**6))]))
    prev_hash = GENESIS_HASH if prev_seq == 0 else draw(hex64)
    records: list[SaleRecord | VoidRecord] = []
    head = prev_hash
    for offset in range(draw(st.integers(min_value=min_size, max_value=max_size))):
        fields = draw(record_fields())
        if with_extras:
            fields |= draw(extra_fields)
        record = make_record(fields, device_id=device_id, seq=prev_seq + 1 + offset, prev_hash=head)
        records.append(record)
        head = record.hash
    return device_id, prev_seq, prev_hash, records


@st.composite
def grants(draw: st.DrawFn, signer: SoftwareSigner | None = None, extras: bool = False) -> RangeGrant:
    first = draw(st.integers(min_value=1, max_value=10**7))
    fields: dict[str, Any] = {
        "grant_id": draw(ids),
        "raffle_id": draw(ids),
        "device_id": draw(ids),
        "first_number": first,
        "last_number": first + draw(st.integers(min_value=0, max_value=10_000)),
        "issued_at_ms": draw(ms),
        "lease_s": draw(st.integers(min_value=1, max_value=86_400)),
        "sales_close_at_ms": draw(ms),
        "signer_key_id": "",
    }
    if extras:
        fields |= draw(extra_fields)
    grant = RangeGrant.from_dict(fields)
    return grant.signed_by(signer or draw(signers))


price_points = st.builds(
    PricePoint, quantity=st.integers(min_value=1, max_value=100), amount_cents=st.integers(0, 10**6)
)
raffles = st.builds(
    RaffleInfo,
    raffle_id=ids,
    name=st.text(max_size=30),
    currency=st.sampled_from(["EUR", "USD"]),
    price_points=st.lists(price_points, min_size=1, max_size=4),
    sales_open_at_ms=ms,
    sales_close_at_ms=ms,
    status=st.sampled_from(["scheduled", "open", "closed", "cancelled"]),
)
rejection_codes = st.sampled_from(["sale_after_close", "outside_grant", "ticket_sold_twice", "lease_expired"])
rejection_acks = st.builds(RejectionAck, seq=st.integers(min_value=1, max_value=10**6), code=rejection_codes)
rejected_records = st.builds(
    RejectedRecord, seq=st.integers(1, 10**6), sale_id=ids, code=rejection_codes, detail=st.text(max_size=40)
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[SyncBatch, SoftwareSigner]:
    device_id, prev_seq, prev_hash, records = draw(chains(min_size=0, max_size=5))
    signer = draw(signers)
    batch = SyncBatch(
        device_id=device_id,
        first_seq=prev_seq + 1,
        last_seq=prev_seq + len(records),
        prev_hash=prev_hash,
        head_hash=records[-1].hash if records else prev_hash,
        sent_at_ms=draw(ms),
        rejected=draw(st.lists(rejection_acks, max_size=2)),
        records=records,
    ).signed_by(signer)
    return batch, signer


@st.composite
def acks(draw: st.DrawFn) -> SyncAck:
    return SyncAck(
        device_id=draw(ids),
        acked_seq=draw(st.integers(min_value=0, max_value=10**6)),
        head_hash=draw(hex64),
        applied=draw(st.integers(0, 1000)),
        duplicates=draw(st.integers(0, 1000)),
        rejected=draw(st.lists(rejected_records, max_size=2)),
        grants=draw(st.lists(grants(), max_size=2)),
        raffles=draw(st.lists(raffles, max_size=2)),
        revoked_grants=draw(st.lists(ids, max_size=2)),
        device_status=draw(st.sampled_from(["active", "revoked"])),
        server_time_ms=draw(ms),
        lease_s=draw(st.integers(1, 86_400)),
    )


@st.composite
def enrollment_requests(draw: st.DrawFn) -> EnrollmentRequest:
    signer = draw(signers)
    return EnrollmentRequest(
        code=draw(st.text(alphabet=string.ascii_uppercase + string.digits + "-", min_size=4, max_size=20)),
        public_key=b64u_encode(signer.public_key),
        device_name=draw(st.text(stored_chars, max_size=30)),
    ).signed_by(signer)


@st.composite
def enrollment_responses(draw: st.DrawFn) -> EnrollmentResponse:
    server = draw(signers)
    return EnrollmentResponse(
        device_id=draw(ids),
        venue_id=draw(ids),
        server_keys=[{"key_id": server.key_id, "algorithm": "ed25519", "public_key": b64u_encode(server.public_key)}],
        server_time_ms=draw(ms),
        lease_s=draw(st.integers(1, 86_400)),
        grants=draw(st.lists(grants(server), max_size=2)),
        raffles=draw(st.lists(raffles, max_size=2)),
    )


export_headers = st.builds(
    ExportHeader, device_id=ids, exported_at_ms=ms, record_count=st.integers(min_value=0, max_value=10**6)
)


@st.composite
def export_trailers(draw: st.DrawFn) -> ExportTrailer:
    first = draw(st.integers(min_value=1, max_value=10**6))
    return ExportTrailer(
        device_id=draw(ids),
        first_seq=first,
        last_seq=first + draw(st.integers(0, 1000)),
        head_hash=draw(hex64),
    ).signed_by(draw(signers))


@st.composite
def single_records(draw: st.DrawFn, kind: str | None = None) -> SaleRecord | VoidRecord:
    """One sealed record anywhere in some chain."""
    fields = draw(record_fields(kind))
    return make_record(fields, device_id=draw(ids), seq=draw(st.integers(1, 10**6)), prev_hash=draw(hex64))


detail_values = st.booleans() | safe_ints | st.text(stored_chars, max_size=200)
event_details = st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9_]{0,31}\Z"), detail_values, max_size=8)


@st.composite
def event_records(draw: st.DrawFn) -> EventRecord:
    """One sealed device event (protocol 1.1) anywhere in some device's event chain."""
    return EventRecord(
        event_id=draw(ids),
        device_id=draw(ids),
        seq=draw(st.integers(1, 10**6)),
        type=draw(st.sampled_from(EVENT_TYPES)),
        detail=draw(event_details),
        seller_id=draw(st.text(stored_chars, max_size=64)),
        device_time_ms=draw(ms),
        anchor_ms=draw(ms),
        elapsed_ms=draw(st.integers(0, 10**8)),
        prev_hash=draw(hex64),
    ).sealed()


#: a seller as the roster carries it (the hash fields are opaque text to the wire model)
sellers = st.builds(
    SellerInfo,
    seller_id=ids,
    name=st.text(stored_chars, max_size=100),
    supervisor=st.booleans(),
    pin_scheme=st.just("scrypt-n16384-r8-p1"),
    pin_salt=st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=64),
    pin_hash=st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=64),
)

#: One strategy per wire object (every subclass of Message).
MESSAGES: dict[type, st.SearchStrategy[Any]] = {
    EnrollmentRequest: enrollment_requests(),
    EnrollmentResponse: enrollment_responses(),
    ExportHeader: export_headers,
    ExportTrailer: export_trailers(),
    Payment: payments,
    PricePoint: price_points,
    RaffleInfo: raffles,
    RangeGrant: grants(),
    RejectedRecord: rejected_records,
    RejectionAck: rejection_acks,
    SaleRecord: single_records("sale"),
    VoidRecord: single_records("void"),
    SyncAck: acks(),
    SyncBatch: batches().map(lambda b: b[0]),
    EventRecord: event_records(),
    SellerInfo: sellers,
}
