"""raffle receipt fields: the raffle's own licence number, results URL and claim-by time

What a receipt prints that a device cannot know (RaffleInfo.licence_number, results_url,
claim_by_ms; docs/sync-protocol.md section 7). Empty or null when the raffle has none.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raffle") as batch:
        batch.add_column(sa.Column("licence_number", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("results_url", sa.String(length=500), nullable=False, server_default=""))
        batch.add_column(sa.Column("claim_by_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raffle") as batch:
        batch.drop_column("claim_by_ms")
        batch.drop_column("results_url")
        batch.drop_column("licence_number")
