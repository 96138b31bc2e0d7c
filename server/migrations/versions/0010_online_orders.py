"""online sales: online_order (one row per purchase, its state and receipt) and stripe_event (the
webhook events handled, so a redelivery changes nothing); docs/online-sales.md

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def _s(n: int) -> sa.String:
    return sa.String(length=n)


def upgrade() -> None:
    op.create_table(
        "online_order",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("customer", _s(100), nullable=False),
        sa.Column("request_id", _s(64), nullable=False),
        sa.Column("raffle_id", _s(32), nullable=False),
        sa.Column("tenant", _s(32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", _s(3), nullable=False),
        sa.Column("email", _s(320), nullable=False),
        sa.Column("state", _s(16), nullable=False),
        sa.Column("payment_intent_id", _s(255), nullable=False),
        sa.Column("charge_id", _s(255), nullable=False),
        sa.Column("refund_id", _s(255), nullable=False),
        sa.Column("tickets", sa.Text(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.Column("reason", _s(500), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("mailed_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_online_order"),
        sa.UniqueConstraint("customer", "request_id", name="uq_online_order_customer_request"),
    )
    op.create_index("ix_online_order_customer", "online_order", ["customer", "created_at_ms"])
    op.create_index("ix_online_order_raffle", "online_order", ["raffle_id", "customer"])
    op.create_index("ix_online_order_payment_intent", "online_order", ["payment_intent_id"])
    op.create_table(
        "stripe_event",
        sa.Column("id", _s(255), nullable=False),
        sa.Column("type", _s(64), nullable=False),
        sa.Column("order_id", _s(32), nullable=False),
        sa.Column("outcome", _s(32), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stripe_event"),
    )


def downgrade() -> None:
    op.drop_table("stripe_event")
    op.drop_index("ix_online_order_payment_intent", table_name="online_order")
    op.drop_index("ix_online_order_raffle", table_name="online_order")
    op.drop_index("ix_online_order_customer", table_name="online_order")
    op.drop_table("online_order")
