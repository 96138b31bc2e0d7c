"""SyncBatch: the records a device uploads, with one Ed25519 signature per batch.

The signature covers the header (every field but ``records`` and ``signature``) under the
domain ``batch``. The header names ``head_hash``, the hash of the last record, which commits to
every record through the chain, so one signature authenticates the whole batch while the
server hashes each record once. An empty batch (``last_seq == first_seq - 1``) is how a device
asks for grants and time without uploading anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field

from sync_protocol.bounds import INT32_MAX, Millis, Text64, Text128
from sync_protocol.canonical import domain_bytes
from sync_protocol.errors import Malformed
from sync_protocol.messages._base import Message
from sync_protocol.messages.events import MAX_BATCH_EVENTS, EventRecord
from sync_protocol.messages.records import ChainRecord, parse_record
from sync_protocol.signing import Signer, b64u_decode, b64u_encode, verify
from sync_protocol.version import PROTOCOL_VERSION

MAX_BATCH_RECORDS = 1000


class RejectionAck(Message):
    """The device acknowledges that record ``seq`` was refused with ``code``."""

    seq: int = Field(ge=1, le=INT32_MAX)
    code: Text64


class SyncBatch(Message):
    """Records ``first_seq..last_seq`` of one device's chain."""

    protocol_version: str = PROTOCOL_VERSION
    device_id: Text64
    first_seq: int = Field(ge=1, le=INT32_MAX)
    last_seq: int = Field(ge=0, le=INT32_MAX)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sent_at_ms: Millis
    rejected: list[RejectionAck] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    records: list[ChainRecord] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    #: protocol 1.1: device events continuing the device's event chain (sync-protocol section 19).
    #: Optional and absent when the device sends none; part of the signed header.
    events: list[EventRecord] | None = Field(default=None, max_length=MAX_BATCH_EVENTS)
    signature: Text128 = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a wire batch; a bad record is named by its index, seq and field.

        The records are validated in the same pass as the header (one pydantic call for the
        whole batch); only when that fails is the first bad record parsed on its own, so the
        error says which record and field it was.
        """
        try:
            return super().from_dict(data)
        except Malformed as exc:
            records = data.get("records") if isinstance(data, Mapping) else None
            index = _bad_record_index(exc)
            if index is not None and isinstance(records, list) and index < len(records):
                record = records[index]
                if not isinstance(record, dict):
                    raise Malformed(f"record {index} of the batch must be a JSON object", field="records") from None
                parse_record(record)  # raises Malformed naming the record's seq and field
            raise

    def header(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude={"records", "signature"})

    def signing_bytes(self) -> bytes:
        return domain_bytes("batch", self.header())

    def signed_by(self, signer: Signer) -> SyncBatch:
        return self.model_copy(update={"signature": b64u_encode(signer.sign(self.signing_bytes()))})

    def verify(self, device_public_key: bytes) -> None:
        """Raise :class:`~sync_protocol.errors.BadSignature` unless the device signed this header."""
        verify(device_public_key, b64u_decode(self.signature), self.signing_bytes(), what="sync batch")


def _bad_record_index(exc: Malformed) -> int | None:
    """The record index in a ``records.<i>...`` error location, if that is where it was."""
    where = str(exc.extra.get("field", "")).split(".")
    if len(where) >= 2 and where[0] == "records" and where[1].isdigit():
        return int(where[1])
    return None
