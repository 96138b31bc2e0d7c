"""Tables of the core database (the ticket registry). Only :mod:`gli_core` touches them.

Times are integer milliseconds since the Unix epoch (UTC), as on the wire.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class CoreBase(SQLModel):
    """Base whose metadata holds only the core's tables."""

    metadata = MetaData(naming_convention=NAMING)


def _ms() -> Column[int]:
    return Column(BigInteger, nullable=False)


class CoreRaffle(CoreBase, table=True):
    """A raffle as the core knows it: its number space and the next free number."""

    __tablename__ = "core_raffle"

    id: str = Field(primary_key=True, max_length=64)
    number_space: int
    next_number: int = 1
    grant_size: int = 1000
    lease_s: int = 8 * 3600
    max_numbers_per_device: int = 10_000
    sales_open_at_ms: int = Field(sa_column=_ms())
    sales_close_at_ms: int = Field(sa_column=_ms())
    status: str = Field(default="open", max_length=16)
    created_at_ms: int = Field(sa_column=_ms())


class Grant(CoreBase, table=True):
    """A signed block of numbers given to one device (or to the online channel)."""

    __tablename__ = "core_grant"
    __table_args__ = (
        UniqueConstraint("raffle_id", "first_number"),
        Index("ix_core_grant_device", "device_id", "raffle_id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    raffle_id: str = Field(foreign_key="core_raffle.id", max_length=64)
    device_id: str = Field(max_length=64)
    first_number: int
    last_number: int
    issued_at_ms: int = Field(sa_column=_ms())
    kind: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)
    status: str = Field(default="active", max_length=16)
    signer_key_id: str = Field(max_length=64)
    payload: str


class Ticket(CoreBase, table=True):
    """One recorded ticket: sold exactly once (unique raffle and number)."""

    __tablename__ = "core_ticket"
    __table_args__ = (
        UniqueConstraint("raffle_id", "number"),
        Index("ix_core_ticket_sale", "sale_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    raffle_id: str = Field(max_length=64)
    number: int
    sale_id: str = Field(max_length=64)
    device_id: str = Field(max_length=64)
    seq: int
    record_hash: str = Field(max_length=64)
    verification_code: str = Field(max_length=9)
    amount_cents: int = Field(default=0, description="this ticket's share of its sale's amount")
    status: str = Field(default="sold", max_length=16)
    recorded_at_ms: int = Field(sa_column=_ms())


class SigningKey(CoreBase, table=True):
    """Public part of every key the core has signed with (old keys stay for verification)."""

    __tablename__ = "core_signing_key"

    key_id: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    public_key: str
    created_at_ms: int = Field(sa_column=_ms())
    retired_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class DeviceSync(CoreBase, table=True):
    """When each device last synced: the reconciliation gate of a draw reads it."""

    __tablename__ = "core_device_sync"

    device_id: str = Field(primary_key=True, max_length=64)
    last_sync_ms: int = Field(sa_column=_ms())


class Draw(CoreBase, table=True):
    """The draw of one raffle: its state, its committed inputs and, once drawn, its proof."""

    __tablename__ = "core_draw"

    raffle_id: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)
    prize_table: str = Field(default="[]")
    vrf_key_id: str = Field(default="", max_length=64)
    nonce: str = Field(default="", max_length=64)
    nonce_commitment: str = Field(default="", max_length=64)
    ticket_root: str = Field(default="", max_length=64)
    ticket_count: int = 0
    gross_cents: int = 0
    proof: str = Field(default="")
    updated_at_ms: int = Field(sa_column=_ms())


class RngCall(CoreBase, table=True):
    """Every call to the RNG: what was asked, for what, and the hash of what came out."""

    __tablename__ = "core_rng_call"

    id: str = Field(primary_key=True, max_length=40)
    purpose: str = Field(max_length=32)
    raffle_id: str | None = Field(default=None, max_length=64)
    request: str = Field(default="", max_length=200)
    output_sha256: str = Field(default="", max_length=64)
    at_ms: int = Field(sa_column=_ms())
