"""merge the parallel branches of issue 11: accounts (0008), raffle terms and jurisdictions (0009),
online orders (0010), shared rate limits (0012). They touch separate tables and columns, so any
order applies them; this revision makes the history one line again.

Revision ID: 0013
Revises: 0008, 0009, 0010, 0012
"""

revision = "0013"
down_revision = ("0008", "0009", "0010", "0012")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
