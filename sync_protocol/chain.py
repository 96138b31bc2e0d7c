"""Validation of a device's hash chain (sans I/O).

:func:`verify_chain` checks that records continue a chain whose last accepted record is
``(acked_seq, acked_hash)``: gapless ``seq``, each ``prev_hash`` equal to the previous
``hash``, each ``hash`` recomputed, every record of the expected device. It never touches a
database: the server and the tests call it with values.
"""

from __future__ import annotations

from collections.abc import Sequence

from sync_protocol.errors import BrokenChain, DeviceMismatch, SequenceGap
from sync_protocol.messages.records import SaleRecord, VoidRecord


def verify_chain(
    records: Sequence[SaleRecord | VoidRecord],
    *,
    device_id: str,
    prev_seq: int,
    prev_hash: str,
) -> str:
    """Check ``records`` extend the chain at ``(prev_seq, prev_hash)``; return the new head hash.

    Raises:
        SequenceGap: a record's seq is not the next one (names the missing seq).
        BrokenChain: a prev_hash or hash does not match.
        DeviceMismatch: a record of another device.
    """
    head = prev_hash
    expected = prev_seq + 1
    for record in records:
        if record.device_id != device_id:
            raise DeviceMismatch(
                f"record {record.seq} belongs to device {record.device_id}, not {device_id}", seq=record.seq
            )
        if record.seq != expected:
            raise SequenceGap(
                f"expected record {expected} but got {record.seq}: record {expected} is missing",
                missing_seq=expected,
                seq=record.seq,
            )
        if record.prev_hash != head:
            raise BrokenChain(f"record {record.seq} does not follow the record before it", seq=record.seq)
        computed = record.compute_hash()
        if record.hash != computed:
            raise BrokenChain(f"record {record.seq} hash does not match its content", seq=record.seq)
        head = computed
        expected += 1
    return head
