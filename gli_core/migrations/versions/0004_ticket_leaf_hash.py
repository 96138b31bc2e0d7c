"""ticket leaf hash

Each ticket stores the SHA-256 of its Merkle leaf input (``0x00 || leaf``, see
``gli_core.draw.proof.ticket_leaf_hash``), computed when it is recorded, so freezing a ticket set
hashes only the interior nodes of its tree. The column is nullable and is not backfilled here:
tickets recorded before this revision keep NULL and the freeze computes their leaf hash from the
ticket itself (a migration at start-up should not rewrite every ticket of a large database).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("core_ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leaf_hash", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("core_ticket", schema=None) as batch_op:
        batch_op.drop_column("leaf_hash")
