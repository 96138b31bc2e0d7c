"""The per-device hash chain: random chains verify, and every mutation is caught by its code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sync_protocol.chain import verify_chain
from sync_protocol.errors import BrokenChain, DeviceMismatch, ProtocolError, SequenceGap
from sync_protocol.messages import GENESIS_HASH, SaleRecord, VoidRecord, parse_record
from tests.sync_protocol.strategies import chains, extra_fields, make_record, record_fields, relaxed

Chain = tuple[str, int, str, list[SaleRecord | VoidRecord]]
Record = SaleRecord | VoidRecord

#: For each content field, a change that keeps the record well-formed (kind-specific fields last).
CONTENT_CHANGES: dict[str, Any] = {
    "sale_id": lambda v: v + "x",
    "raffle_id": lambda v: v + "x",
    "seller_id": lambda v: v + "x",
    "device_time_ms": lambda v: v + 1,
    "anchor_ms": lambda v: v + 1,
    "elapsed_ms": lambda v: v + 1,
    "numbers": lambda v: [*v[:-1], v[-1] + 1],
    "amount_cents": lambda v: v + 1,
    "currency": lambda v: "XTS" if v != "XTS" else "XXX",
    "payment": lambda v: {"method": "card", "reference": "r"} if v["method"] == "cash" else {"method": "cash"},
    "voids": lambda v: v + "x",
    "reason": lambda v: v + "!",
}


def verify(chain: Chain, records: list[Record] | None = None) -> str:
    device_id, prev_seq, prev_hash, original = chain
    records = original if records is None else records
    return verify_chain(records, device_id=device_id, prev_seq=prev_seq, prev_hash=prev_hash)


def changed(record: Record, **update: Any) -> Record:
    """``record`` with fields changed, parsed again from its wire form (hash left as it was)."""
    return parse_record(record.to_dict() | update)


@relaxed
@given(chains())
def test_random_chains_verify(chain: Chain) -> None:
    records = chain[3]
    assert verify(chain) == records[-1].hash
    assert records[0].prev_hash == chain[2]
    assert all(r.hash == r.compute_hash() for r in records)


@relaxed
@given(chains(with_extras=True))
def test_chains_with_unknown_fields_verify_after_a_wire_round_trip(chain: Chain) -> None:
    records = chain[3]
    again = [parse_record(r.to_dict()) for r in records]
    assert [r.to_dict() for r in again] == [r.to_dict() for r in records]
    assert verify(chain, again) == records[-1].hash


@relaxed
@given(chains(min_size=2), st.data())
def test_verifying_in_two_parts_equals_verifying_at_once(chain: Chain, data: st.DataObject) -> None:
    device_id, prev_seq, prev_hash, records = chain
    k = data.draw(st.integers(1, len(records) - 1))
    middle = verify_chain(records[:k], device_id=device_id, prev_seq=prev_seq, prev_hash=prev_hash)
    head = verify_chain(records[k:], device_id=device_id, prev_seq=prev_seq + k, prev_hash=middle)
    assert head == verify(chain)


@relaxed
@given(chains(), st.data())
def test_changing_any_content_field_breaks_the_chain(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1), label="record")
    fields = [f for f in CONTENT_CHANGES if f in records[i].to_dict()]
    field = data.draw(st.sampled_from(fields), label="field")
    value = records[i].to_dict()[field]
    records[i] = changed(records[i], **{field: CONTENT_CHANGES[field](value)})
    assert records[i].to_dict()[field] != value
    with pytest.raises(BrokenChain) as info:
        verify(chain, records)
    assert info.value.extra["seq"] == records[i].seq


@relaxed
@given(chains(), extra_fields.filter(bool), st.data())
def test_adding_a_field_breaks_the_chain(chain: Chain, extra: dict[str, Any], data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    records[i] = changed(records[i], **extra)
    with pytest.raises(BrokenChain):
        verify(chain, records)


@relaxed
@given(chains(), st.data())
def test_changing_hash_or_prev_hash_breaks_the_chain(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    field = data.draw(st.sampled_from(["hash", "prev_hash"]))
    value = getattr(records[i], field)
    records[i] = changed(records[i], **{field: ("1" if value[0] != "1" else "2") + value[1:]})
    with pytest.raises(BrokenChain) as info:
        verify(chain, records)
    assert info.value.extra["seq"] == records[i].seq


@relaxed
@given(chains(), st.data())
def test_changing_seq_is_a_sequence_gap(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    new_seq = data.draw(st.integers(1, 10**7).filter(lambda s: s != records[i].seq))
    expected = records[i].seq
    records[i] = changed(records[i], seq=new_seq)
    with pytest.raises(SequenceGap) as info:
        verify(chain, records)
    assert info.value.extra == {"missing_seq": expected, "seq": new_seq}


@relaxed
@given(chains(), st.data())
def test_changing_device_is_a_device_mismatch(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    records[i] = changed(records[i], device_id=chain[0] + "-other")
    with pytest.raises(DeviceMismatch) as info:
        verify(chain, records)
    assert info.value.extra["seq"] == records[i].seq


@relaxed
@given(chains(), st.data())
def test_a_resealed_change_breaks_the_next_link_or_the_head(chain: Chain, data: st.DataObject) -> None:
    """An attacker who recomputes the hash of a changed record is caught by the next record, or,
    for the last record, by the head hash the batch header signs."""
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    field = "amount_cents" if records[i].kind == "sale" else "reason"
    value = records[i].to_dict()[field]
    records[i] = changed(records[i], **{field: CONTENT_CHANGES[field](value)}).sealed()
    if i < len(records) - 1:
        with pytest.raises(BrokenChain) as info:
            verify(chain, records)
        assert info.value.extra["seq"] == records[i + 1].seq
    else:
        assert verify(chain, records) != chain[3][-1].hash


@relaxed
@given(chains(), st.data())
def test_dropping_a_record_is_a_gap_or_a_shorter_head(chain: Chain, data: st.DataObject) -> None:
    original = chain[3]
    i = data.draw(st.integers(0, len(original) - 1))
    records = original[:i] + original[i + 1 :]
    if i < len(original) - 1:
        with pytest.raises(SequenceGap) as info:
            verify(chain, records)
        assert info.value.extra["missing_seq"] == original[i].seq
    else:
        head = verify(chain, records)
        assert head != original[-1].hash
        assert head == (original[i - 1].hash if i else chain[2])


@relaxed
@given(chains(min_size=2), st.data())
def test_swapping_two_records_is_a_gap(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 2))
    j = data.draw(st.integers(i + 1, len(records) - 1))
    records[i], records[j] = records[j], records[i]
    with pytest.raises(SequenceGap) as info:
        verify(chain, records)
    assert info.value.extra["missing_seq"] == chain[3][i].seq


@relaxed
@given(chains(), st.data())
def test_duplicating_a_record_is_a_gap(chain: Chain, data: st.DataObject) -> None:
    records = list(chain[3])
    i = data.draw(st.integers(0, len(records) - 1))
    records.insert(i + 1, records[i])
    with pytest.raises(SequenceGap) as info:
        verify(chain, records)
    assert info.value.extra == {"missing_seq": records[i].seq + 1, "seq": records[i].seq}


@relaxed
@given(chains(), record_fields(), st.data())
def test_a_foreign_record_that_chains_is_a_device_mismatch(
    chain: Chain, fields: dict[str, Any], data: st.DataObject
) -> None:
    device_id, _, prev_hash, original = chain
    i = data.draw(st.integers(0, len(original) - 1))
    records = list(original)
    before = records[i - 1].hash if i else prev_hash
    records[i] = make_record(fields, device_id=device_id + "-other", seq=records[i].seq, prev_hash=before)
    with pytest.raises(DeviceMismatch):
        verify(chain, records)


@relaxed
@given(chains(), st.data())
def test_any_mutation_is_some_protocol_error(chain: Chain, data: st.DataObject) -> None:
    """Whatever is done to the records, the chain either yields another head or is refused."""
    records = list(chain[3])
    op = data.draw(st.sampled_from(["drop", "swap", "dup", "field"]))
    i = data.draw(st.integers(0, len(records) - 1))
    j = data.draw(st.integers(0, len(records) - 1))
    if op == "drop":
        del records[i]
    elif op == "swap":
        assume(i != j)
        records[i], records[j] = records[j], records[i]
    elif op == "dup":
        records.insert(j, records[i])
    else:
        records[i] = changed(records[i], elapsed_ms=records[i].elapsed_ms + 1)
    try:
        head = verify(chain, records)
    except ProtocolError:
        return
    assert head != chain[3][-1].hash


def test_empty_chain_returns_the_previous_hash() -> None:
    assert verify_chain([], device_id="d", prev_seq=0, prev_hash=GENESIS_HASH) == GENESIS_HASH
