"""audit log

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("core_raffle", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("core_draw", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_index", sa.BigInteger(), nullable=True))
    op.create_table(
        "core_audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_audit_head")),
    )
    op.execute("INSERT INTO core_audit_head (id, origin, size, frontier, updated_at_ms) VALUES (1, '', 0, '', 0)")
    op.create_table(
        "core_audit_entry",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("data", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_core_audit_entry")),
        sa.UniqueConstraint("source_id", name=op.f("uq_core_audit_entry_source_id")),
    )
    op.create_index("ix_core_audit_entry_tenant", "core_audit_entry", ["tenant", "idx"])
    op.create_index("ix_core_audit_entry_type", "core_audit_entry", ["type", "idx"])
    op.create_table(
        "core_audit_node",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_core_audit_node")),
    )
    op.create_table(
        "core_audit_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("signed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_core_audit_checkpoint")),
    )
    op.create_table(
        "core_audit_shipment",
        sa.Column("store", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("object_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("nbytes", sa.BigInteger(), nullable=False),
        sa.Column("shipped_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("store", "object_key", name=op.f("pk_core_audit_shipment")),
    )


def downgrade() -> None:
    op.drop_table("core_audit_shipment")
    op.drop_table("core_audit_checkpoint")
    op.drop_table("core_audit_node")
    op.drop_index("ix_core_audit_entry_type", table_name="core_audit_entry")
    op.drop_index("ix_core_audit_entry_tenant", table_name="core_audit_entry")
    op.drop_table("core_audit_entry")
    op.drop_table("core_audit_head")
    with op.batch_alter_table("core_raffle", schema=None) as batch_op:
        batch_op.drop_column("tenant")
    with op.batch_alter_table("core_draw", schema=None) as batch_op:
        batch_op.drop_column("audit_index")
