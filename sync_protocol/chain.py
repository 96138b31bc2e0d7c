"""Validation of a device's hash chain (sans I/O).

:func:`verify_chain` checks that records continue a chain whose last accepted record is
``(acked_seq, acked_hash)``: gapless ``seq``, each ``prev_hash`` equal to the previous
``hash``, each ``hash`` recomputed, every record of the expected device. It never touches a
database: the server and the tests call it with values. :func:`verify_event_chain` runs the
same checks over a device's event chain, with that chain's own codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sync_protocol.errors import (
    BrokenChain,
    DeviceMismatch,
    EventChainBroken,
    EventSequenceGap,
    ProtocolError,
    SequenceGap,
)
from sync_protocol.messages.events import EventRecord
from sync_protocol.messages.records import SaleRecord, VoidRecord


class _Link(Protocol):
    @property
    def device_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def compute_hash(self) -> str: ...


@dataclass(frozen=True)
class _Chain:
    """What differs between the two chains a device keeps: the words and codes of their refusals."""

    noun: str
    seq_member: str
    missing_member: str
    gap: type[ProtocolError]
    broken: type[ProtocolError]


_RECORDS = _Chain("record", "seq", "missing_seq", SequenceGap, BrokenChain)
#: the event chain has codes of its own, so a device never takes a gap in its events for one in its sales
_EVENTS = _Chain("event", "event_seq", "missing_event_seq", EventSequenceGap, EventChainBroken)


def _verify_links(items: Sequence[_Link], chain: _Chain, device_id: str, prev_seq: int, prev_hash: str) -> str:
    head = prev_hash
    expected = prev_seq + 1
    noun = chain.noun
    for item in items:
        where = {chain.seq_member: item.seq}
        if item.device_id != device_id:
            raise DeviceMismatch(f"{noun} {item.seq} belongs to device {item.device_id}, not {device_id}", **where)
        if item.seq != expected:
            raise chain.gap(
                f"expected {noun} {expected} but got {item.seq}: {noun} {expected} is missing",
                **{chain.missing_member: expected},
                **where,
            )
        if item.prev_hash != head:
            raise chain.broken(f"{noun} {item.seq} does not follow the {noun} before it", **where)
        computed = item.compute_hash()
        if item.hash != computed:
            raise chain.broken(f"{noun} {item.seq} hash does not match its content", **where)
        head = computed
        expected += 1
    return head


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
    return _verify_links(records, _RECORDS, device_id, prev_seq, prev_hash)


def verify_event_chain(events: Sequence[EventRecord], *, device_id: str, prev_seq: int, prev_hash: str) -> str:
    """Check ``events`` extend the event chain at ``(prev_seq, prev_hash)``; return the new head hash.

    The same steps as :func:`verify_chain`, with the event chain's own codes.

    Raises:
        DeviceMismatch: an event of another device (``event_seq``).
        EventSequenceGap: an event's seq is not the next one (``missing_event_seq``).
        EventChainBroken: a prev_hash or hash does not match (``event_seq``).
    """
    return _verify_links(events, _EVENTS, device_id, prev_seq, prev_hash)
