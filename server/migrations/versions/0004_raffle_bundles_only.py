"""raffle.bundles_only: a raffle may sell only its price points (no singles beyond them)

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
    with op.batch_alter_table("raffle") as batch:
        batch.add_column(sa.Column("bundles_only", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("raffle") as batch:
        batch.drop_column("bundles_only")
