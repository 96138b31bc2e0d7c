"""The ``device_event`` table of the business database (migration 0007).

One row per event of a device's event chain, keyed by ``(device_id, seq)``: a re-sent event is
recognised by its key and hash, never stored twice. Every column is bounded as the wire record
is (``sync_protocol.messages.events``), so both backends store what one accepts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field

from server.models import BusinessBase


class DeviceEvent(BusinessBase, table=True):
    """A significant event a device recorded (app start, PIN failure, printer error...)."""

    __tablename__ = "device_event"
    __table_args__ = (
        Index("ix_device_event_time", "device_id", "occurred_at_ms"),
        Index("ix_device_event_type", "device_id", "type", "occurred_at_ms"),
    )

    device_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=32)
    #: the event's ``detail`` as canonical JSON (at most 8 members of at most 200 characters)
    detail: str = Field(default="{}")
    seller_id: str = Field(default="", max_length=64)
    device_time_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    anchor_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    elapsed_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: ``anchor_ms + elapsed_ms``: when it happened, on the server's clock
    occurred_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    received_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class DeviceEventOut(BaseModel):
    """A device event as ``GET /v1/admin/devices/{device_id}/events`` lists it (docs/sync-protocol.md 19)."""

    device_id: str
    seq: int = PField(description="the event's place in the device's event chain")
    event_id: str
    type: str = PField(description="the event type (sync_protocol.messages.events.EVENT_TYPES)")
    detail: dict[str, Any] = PField(description="at most 8 members of at most 200 characters")
    seller_id: str = PField(description="the signed-in seller, if any")
    device_time_ms: int = PField(description="the device's clock when it happened (Unix ms)")
    anchor_ms: int = PField(description="the server time the device last received")
    elapsed_ms: int = PField(description="monotonic time since that anchor")
    occurred_at_ms: int = PField(description="anchor_ms + elapsed_ms: when it happened on the server's clock")
    prev_hash: str
    hash: str
    received_at_ms: int
