"""sellers of a venue (PIN hashes the devices verify offline) and raffle.offline_sales

The seller table is the roster ``tombola seller add`` writes and syncs deliver
(``SellerInfo``); ``raffle.offline_sales`` false keeps devices from selling while they cannot
reach the server (``RaffleInfo.offline_sales``; docs/sync-protocol.md section 7).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seller",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("venue_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("supervisor", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("pin_scheme", sa.String(length=64), nullable=False),
        sa.Column("pin_salt", sa.String(length=64), nullable=False),
        sa.Column("pin_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="active"),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"], name="fk_seller_venue_id_venue"),
        sa.PrimaryKeyConstraint("id", name="pk_seller"),
    )
    op.create_index("ix_seller_venue_id", "seller", ["venue_id"])
    with op.batch_alter_table("raffle") as batch:
        batch.add_column(sa.Column("offline_sales", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("raffle") as batch:
        batch.drop_column("offline_sales")
    op.drop_index("ix_seller_venue_id", table_name="seller")
    op.drop_table("seller")
