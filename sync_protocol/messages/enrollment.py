"""Enrollment: a device trades a one-time code and its public key for an identity.

The request is signed with the device key (domain ``enroll``) to prove the device holds it.
The response pins the server keys the device will verify grants with, gives the first time
anchor (``server_time_ms``) and the grants of every open raffle of the venue.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sync_protocol.bounds import Text64, Text100, Text128
from sync_protocol.canonical import domain_bytes
from sync_protocol.messages._base import Message
from sync_protocol.messages.grant import RangeGrant
from sync_protocol.messages.sellers import SellerInfo
from sync_protocol.messages.sync_ack import RaffleInfo
from sync_protocol.signing import Signer, b64u_decode, b64u_encode, verify
from sync_protocol.version import PROTOCOL_VERSION


class EnrollmentRequest(Message):
    protocol_version: str = PROTOCOL_VERSION
    code: Text64 = Field(min_length=4)
    public_key: Text64
    device_name: Text100 = ""
    signature: Text128 = ""

    def signing_bytes(self) -> bytes:
        body = self.to_dict()
        body.pop("signature", None)
        return domain_bytes("enroll", body)

    def signed_by(self, signer: Signer) -> EnrollmentRequest:
        return self.model_copy(update={"signature": b64u_encode(signer.sign(self.signing_bytes()))})

    def verify(self) -> bytes:
        """Check proof of possession; return the raw public key."""
        key = b64u_decode(self.public_key)
        verify(key, b64u_decode(self.signature), self.signing_bytes(), what="enrollment request")
        return key


class EnrollmentResponse(Message):
    protocol_version: str = PROTOCOL_VERSION
    device_id: str
    venue_id: str
    server_keys: list[dict[str, Any]]
    server_time_ms: int
    lease_s: int
    grants: list[RangeGrant] = Field(default_factory=list)
    raffles: list[RaffleInfo] = Field(default_factory=list)
    #: the venue's roster as in ``SyncAck.sellers`` (optional, absent from an older server)
    sellers: list[SellerInfo] | None = None
