"""device_event: the significant events devices record (GLI-31), one row per event of a device's chain

Keyed by (device_id, seq), so a re-sent event is recognised and never stored twice; indexed by
device and time, and device, type and time, for ``tombola device events``
(docs/sync-protocol.md section 19).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_event",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("device_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("anchor_ms", sa.BigInteger(), nullable=False),
        sa.Column("elapsed_ms", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq", name="pk_device_event"),
    )
    op.create_index("ix_device_event_time", "device_event", ["device_id", "occurred_at_ms"])
    op.create_index("ix_device_event_type", "device_event", ["device_id", "type", "occurred_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_device_event_type", table_name="device_event")
    op.drop_index("ix_device_event_time", table_name="device_event")
    op.drop_table("device_event")
