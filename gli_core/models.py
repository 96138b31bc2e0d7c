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
    tenant: str = Field(default="", max_length=64, description="the organisation owning the raffle (audit tenant)")
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
    leaf_hash: bytes | None = Field(
        default=None,
        description="SHA-256 of the ticket's Merkle leaf input (gli_core.draw.proof.ticket_leaf_hash), "
        "stored when recorded; NULL for tickets recorded before migration 0004 or that cannot be encoded",
    )


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
    audit_index: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, nullable=True),
        description="audit entry of the RECONCILED transition (the draw binds the first checkpoint after it)",
    )
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


class AuditHead(CoreBase, table=True):
    """The audit log's head: its size and the right edge of its Merkle tree (one row, id 1).

    ``frontier`` holds, as comma-separated hex, the roots of the complete subtrees that the
    binary expansion of ``size`` splits the log into, largest first: enough to append a leaf and
    to compute the root of the whole log in O(log n). Appends lock this row (``FOR UPDATE`` on
    PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), which is what numbers entries without gaps.
    """

    __tablename__ = "core_audit_head"

    id: int = Field(primary_key=True)
    origin: str = Field(default="", max_length=200)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    frontier: str = Field(default="")
    updated_at_ms: int = Field(sa_column=_ms())


class AuditEntry(CoreBase, table=True):
    """One audit-log entry: ``data`` is its leaf data (RFC 8785 canonical JSON, see docs/audit-log.md).

    The other columns repeat fields of ``data`` for queries; the verifier only trusts ``data``.
    ``source_id`` is the outbox id of an event that came from the business database: unique, so
    an outbox row drained twice is appended once.
    """

    __tablename__ = "core_audit_entry"
    __table_args__ = (
        Index("ix_core_audit_entry_tenant", "tenant", "idx"),
        Index("ix_core_audit_entry_type", "type", "idx"),
    )

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    time_ms: int = Field(sa_column=_ms())
    actor: str = Field(max_length=100)
    tenant: str = Field(default="", max_length=64)
    type: str = Field(max_length=64)
    source_id: str | None = Field(default=None, max_length=64, unique=True)
    data: str
    leaf_hash: bytes


class AuditNode(CoreBase, table=True):
    """Roots of complete subtrees of 2**level leaves (level >= 8) starting at leaf ``index << level``.

    Written as appends complete them; proofs read them instead of hashing every leaf again.
    """

    __tablename__ = "core_audit_node"

    level: int = Field(primary_key=True)
    index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes


class AuditCheckpoint(CoreBase, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint as a signed note) of the log at ``size``."""

    __tablename__ = "core_audit_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: str = Field(max_length=64)
    note: str
    reason: str = Field(default="", max_length=100)
    signed_at_ms: int = Field(sa_column=_ms())


class AuditShipment(CoreBase, table=True):
    """An audit object (sealed segment or checkpoint) an archive store holds, and its SHA-256."""

    __tablename__ = "core_audit_shipment"

    store: str = Field(primary_key=True, max_length=100)
    object_key: str = Field(primary_key=True, max_length=200)
    sha256: str = Field(max_length=64)
    nbytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    shipped_at_ms: int = Field(sa_column=_ms())
