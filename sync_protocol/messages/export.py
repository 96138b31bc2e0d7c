"""The device export file: NDJSON, one object a line.

Line 1 is an :class:`ExportHeader`, then every chain record in ``seq`` order (each a record
dict as in a batch, with ``"type": "record"`` added), then an :class:`ExportTrailer` signed by
the device key over (device_id, first_seq, last_seq, head_hash) under the domain ``export``.
A server ingests it with the same validation as a sync.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sync_protocol.bounds import INT32_MAX, Millis, Text64, Text128
from sync_protocol.canonical import domain_bytes
from sync_protocol.messages._base import Message
from sync_protocol.signing import Signer, b64u_decode, b64u_encode, verify
from sync_protocol.version import PROTOCOL_VERSION


class ExportHeader(Message):
    type: Literal["header"] = "header"
    protocol_version: str = PROTOCOL_VERSION
    device_id: Text64
    exported_at_ms: Millis
    record_count: int = Field(ge=0, le=INT32_MAX)


class ExportTrailer(Message):
    type: Literal["trailer"] = "trailer"
    device_id: Text64
    first_seq: int = Field(ge=0, le=INT32_MAX)
    last_seq: int = Field(ge=0, le=INT32_MAX)
    head_hash: str
    signature: Text128 = ""

    def signing_bytes(self) -> bytes:
        return domain_bytes(
            "export",
            {
                "device_id": self.device_id,
                "first_seq": self.first_seq,
                "last_seq": self.last_seq,
                "head_hash": self.head_hash,
            },
        )

    def signed_by(self, signer: Signer) -> ExportTrailer:
        return self.model_copy(update={"signature": b64u_encode(signer.sign(self.signing_bytes()))})

    def verify(self, device_public_key: bytes) -> None:
        verify(device_public_key, b64u_decode(self.signature), self.signing_bytes(), what="export trailer")
