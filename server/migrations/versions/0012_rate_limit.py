"""rate_limit: fixed-window counters of the rate limits every server process shares

One row per limit key (limit name, client or user) holding the end of its current window and the
hits counted in it (server/ratelimit.py). Rows of ended windows are swept.

Revision ID: 0012
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limit"),
    )
    op.create_index("ix_rate_limit_window_end_ms", "rate_limit", ["window_end_ms"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_window_end_ms", table_name="rate_limit")
    op.drop_table("rate_limit")
