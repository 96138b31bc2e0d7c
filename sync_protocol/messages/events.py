"""Device events (GLI-31 significant events): a second hash chain per device, beside the records.

A device records what an auditor must be able to see afterwards (the app started or stopped, a
seller signed in or typed a wrong PIN, the printer failed, the connection went or came back,
the clock jumped, a sync failed, a sale was voided) as an :class:`EventRecord`. Events form
their own chain per device (``seq`` 1, 2, 3... with ``prev_hash``/``hash`` as the records do,
under the domain ``event``), so the sale chain and its acknowledgements are untouched by them.

They travel in the optional ``events`` member of a :class:`~sync_protocol.messages.SyncBatch`
(protocol 1.1), inside the signed header: the batch signature covers every event, and an older
(1.0) server, which keeps unknown members, still verifies the batch and simply ignores them.
``docs/sync-protocol.md`` section 19 is the specification.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal, get_args

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from sync_protocol.bounds import INT32_MAX, NO_NUL, SAFE_INT_MAX, Millis, Text64
from sync_protocol.canonical import domain_bytes
from sync_protocol.messages._base import Message
from sync_protocol.version import EVENTS_VERSION

__all__ = [
    "EVENTS_VERSION",
    "EVENT_TYPES",
    "MAX_BATCH_EVENTS",
    "MAX_DETAIL_MEMBERS",
    "MAX_DETAIL_TEXT",
    "EventRecord",
    "EventType",
]

#: the closed list of event types (docs/sync-protocol.md section 19.1)
EventType = Literal[
    "app.start",
    "app.stop",
    "seller.sign_in",
    "seller.sign_out",
    "seller.pin_failed",
    "supervisor.pin_failed",
    "printer.error",
    "printer.recovered",
    "receipt.reprinted",
    "connection.lost",
    "connection.back",
    "clock.jump",
    "sync.failed",
    "sale.voided",
    "settings.changed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

#: at most this many events in one batch
MAX_BATCH_EVENTS = 200
#: at most this many members in an event's ``detail``
MAX_DETAIL_MEMBERS = 8
#: a ``detail`` string value has at most this many characters
MAX_DETAIL_TEXT = 200

DetailKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DetailText = Annotated[str, StringConstraints(max_length=MAX_DETAIL_TEXT, pattern=NO_NUL)]
DetailInt = Annotated[StrictInt, Field(ge=-SAFE_INT_MAX, le=SAFE_INT_MAX)]
DetailValue = StrictBool | DetailInt | DetailText


class EventRecord(Message):
    """One significant event of one device, a link of the device's event chain."""

    event_id: Text64 = Field(min_length=1, description="UUIDv7 of this event")
    device_id: Text64
    seq: int = Field(ge=1, le=INT32_MAX, description="1, 2, 3... per device, in the event chain")
    type: EventType
    detail: dict[DetailKey, DetailValue] = Field(default_factory=dict, max_length=MAX_DETAIL_MEMBERS)
    seller_id: Text64 = ""
    device_time_ms: Millis
    anchor_ms: Millis
    elapsed_ms: Millis
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    def compute_hash(self) -> str:
        """hex SHA-256 of ``domain_bytes("event", event without hash)``."""
        body = self.to_dict()
        body.pop("hash", None)
        return hashlib.sha256(domain_bytes("event", body)).hexdigest()

    def sealed(self) -> EventRecord:
        """A copy with ``hash`` filled in."""
        return self.model_copy(update={"hash": self.compute_hash()})

    @property
    def anchored_time_ms(self) -> int:
        """When the event happened, on the server's clock (``anchor_ms + elapsed_ms``)."""
        return self.anchor_ms + self.elapsed_ms
