"""raffle terms and jurisdiction: the profile a licence names, online sales, draw method, prize
table and 50/50 share, per-customer purchase limit, rules text

``organisation.jurisdiction`` is the profile of the organisation's licence; ``raffle.jurisdiction``
the profile the raffle runs under (server/jurisdictions.py, docs/jurisdictions.md). ``raffle.
prize_table`` keeps the table given to the core and ``share_percent`` the sum of its
percent-of-sales prizes, from which ``GET /raffles`` computes a 50/50 jackpot. Raffles made
before this revision get the core's default table (one 50/50 prize of 50%).

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_DEFAULT_TABLE = '[{"count": 1, "kind": "percent_of_sales", "percent": 50, "tier": "50/50"}]'


def upgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.String(length=32), nullable=False, server_default="default"))
    with op.batch_alter_table("raffle") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.String(length=32), nullable=False, server_default="default"))
        batch.add_column(sa.Column("online_sales", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("draw_method", sa.String(length=16), nullable=False, server_default="rng"))
        batch.add_column(sa.Column("prize_table", sa.Text(), nullable=False, server_default=_DEFAULT_TABLE))
        batch.add_column(sa.Column("share_percent", sa.Integer(), nullable=False, server_default="50"))
        batch.add_column(sa.Column("purchase_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rules_text", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("updated_at_ms", sa.BigInteger(), nullable=True))
    # the public list reads open raffles by status
    op.create_index("ix_raffle_status", "raffle", ["status"])


def downgrade() -> None:
    op.drop_index("ix_raffle_status", table_name="raffle")
    with op.batch_alter_table("raffle") as batch:
        for column in (
            "updated_at_ms",
            "rules_text",
            "purchase_limit",
            "share_percent",
            "prize_table",
            "draw_method",
            "online_sales",
            "jurisdiction",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("jurisdiction")
