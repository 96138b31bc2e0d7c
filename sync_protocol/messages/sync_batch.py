"""SyncBatch: the records a device uploads, with one Ed25519 signature per batch.

The signature covers the header (every field but ``records`` and ``signature``) under the
domain ``batch``. The header names ``head_hash``, the hash of the last record, which commits to
every record through the chain, so one signature authenticates the whole batch while the
server hashes each record once. An empty batch (``last_seq == first_seq - 1``) is how a device
asks for grants and time without uploading anything.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from sync_protocol.canonical import domain_bytes
from sync_protocol.messages._base import Message
from sync_protocol.messages.records import ChainRecord, SaleRecord, VoidRecord, parse_record
from sync_protocol.signing import Signer, b64u_decode, b64u_encode, verify
from sync_protocol.version import PROTOCOL_VERSION

MAX_BATCH_RECORDS = 1000
_RECORDS: TypeAdapter[list[SaleRecord | VoidRecord]] = TypeAdapter(list[ChainRecord])


class RejectionAck(Message):
    """The device acknowledges that record ``seq`` was refused with ``code``."""

    seq: int = Field(ge=1)
    code: str


class SyncBatch(Message):
    """Records ``first_seq..last_seq`` of one device's chain."""

    protocol_version: str = PROTOCOL_VERSION
    device_id: str
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=0)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sent_at_ms: int
    rejected: list[RejectionAck] = Field(default_factory=list)
    records: list[SaleRecord | VoidRecord] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    signature: str = ""

    @field_validator("records", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        if isinstance(value, list):
            if all(type(r) is dict for r in value):
                # One validator call for the whole list (half the cost of one call per record);
                # on any error the loop below names the first bad record as it always did.
                with contextlib.suppress(ValidationError):
                    return _RECORDS.validate_python(value)
            return [parse_record(r) if isinstance(r, dict) else r for r in value]
        return value

    def header(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude={"records", "signature"})

    def signing_bytes(self) -> bytes:
        return domain_bytes("batch", self.header())

    def signed_by(self, signer: Signer) -> SyncBatch:
        return self.model_copy(update={"signature": b64u_encode(signer.sign(self.signing_bytes()))})

    def verify(self, device_public_key: bytes) -> None:
        """Raise :class:`~sync_protocol.errors.BadSignature` unless the device signed this header."""
        verify(device_public_key, b64u_decode(self.signature), self.signing_bytes(), what="sync batch")
