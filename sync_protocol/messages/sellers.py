"""SellerInfo: a seller of the device's venue as the device sees it, PIN hash included.

The server sends the full roster of the device's venue (active sellers only) in every
``SyncAck`` and ``EnrollmentResponse`` as the optional member ``sellers``; a device replaces
the roster it holds with it. Absent (an older server) means "no news": the device keeps what it
has. The PIN hash is :mod:`sync_protocol.pins` (``docs/sync-protocol.md`` section 7).
"""

from __future__ import annotations

from pydantic import Field

from sync_protocol.bounds import Text64, Text100
from sync_protocol.messages._base import Message
from sync_protocol.pins import PinHash


class SellerInfo(Message):
    """One active seller: id, name, whether a supervisor (may authorise voids), and the PIN hash."""

    seller_id: Text64 = Field(min_length=1)
    name: Text100
    supervisor: bool = False
    pin_scheme: Text64
    pin_salt: Text64
    pin_hash: Text64

    @property
    def stored_pin(self) -> PinHash:
        return PinHash(self.pin_scheme, self.pin_salt, self.pin_hash)
