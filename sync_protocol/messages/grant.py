"""RangeGrant: a signed block of ticket numbers a device may sell offline.

The core signs ``domain_bytes("grant", grant_without_signature)`` with its grant key (Ed25519);
a device verifies it offline with the server keys pinned at enrollment. A grant is valid on
construction through :meth:`RangeGrant.verified`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from sync_protocol.canonical import domain_bytes
from sync_protocol.errors import GrantInvalid
from sync_protocol.messages._base import Message
from sync_protocol.signing import KeyRing, Signer, b64u_decode, b64u_encode
from sync_protocol.version import PROTOCOL_VERSION


class RangeGrant(Message):
    """Numbers ``first_number..last_number`` (inclusive) of one raffle for one device."""

    protocol_version: str = PROTOCOL_VERSION
    grant_id: str
    raffle_id: str
    device_id: str
    first_number: int = Field(ge=1)
    last_number: int = Field(ge=1)
    issued_at_ms: int
    lease_s: int = Field(gt=0, description="offline lease: how long after a server time anchor sales may go on")
    sales_close_at_ms: int
    signer_key_id: str
    signature: str = ""

    @model_validator(mode="after")
    def _range_order(self) -> RangeGrant:
        if self.last_number < self.first_number:
            raise ValueError("last_number is below first_number")
        return self

    @property
    def size(self) -> int:
        return self.last_number - self.first_number + 1

    def contains(self, number: int) -> bool:
        return self.first_number <= number <= self.last_number

    def signing_bytes(self) -> bytes:
        body = self.to_dict()
        body.pop("signature", None)
        return domain_bytes("grant", body)

    def signed_by(self, signer: Signer) -> RangeGrant:
        """Return a copy signed by ``signer`` (its key id becomes ``signer_key_id``)."""
        unsigned = self.model_copy(update={"signer_key_id": signer.key_id, "signature": ""})
        sig = signer.sign(unsigned.signing_bytes())
        return unsigned.model_copy(update={"signature": b64u_encode(sig)})

    def verify(self, keys: KeyRing) -> None:
        """Raise :class:`GrantInvalid` unless the signature verifies with a pinned key."""
        try:
            keys.verify(self.signer_key_id, b64u_decode(self.signature), self.signing_bytes(), what="grant")
        except Exception as exc:
            raise GrantInvalid(f"grant {self.grant_id} is not validly signed: {exc}") from exc

    @classmethod
    def verified(cls, data: Mapping[str, Any], keys: KeyRing) -> RangeGrant:
        """Parse and verify; the returned grant is known to be authentic."""
        grant = cls.from_dict(data)
        grant.verify(keys)
        return grant
