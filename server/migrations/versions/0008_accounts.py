"""accounts and access: users, role grants, sessions and refresh tokens, TOTP, lockout, password
resets, two-person approvals (break-glass, extensions above a venue's cap), venue extension caps

docs/accounts.md describes each table's use. Secrets are stored as hashes only (argon2id for
passwords, SHA-256 for refresh and reset tokens), except the TOTP secret.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _s(n: int) -> sa.String:
    return sa.String(length=n)


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("email", _s(254), nullable=False),
        sa.Column("email_key", _s(254), nullable=False),
        sa.Column("password_hash", _s(200), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("seller_id", _s(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", _s(100), nullable=False),
        sa.Column("password_changed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("disabled_by", _s(100), nullable=False),
        sa.Column("disable_reason", _s(500), nullable=False),
        sa.Column("last_login_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.UniqueConstraint("email_key", name="uq_user_account_email_key"),
    )
    op.create_table(
        "role_grant",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("user_id", _s(32), nullable=False),
        sa.Column("role", _s(16), nullable=False),
        sa.Column("organisation_id", _s(32), nullable=False),
        sa.Column("venue_id", _s(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", _s(100), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("approval_id", _s(32), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_by", _s(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_grant"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name="fk_role_grant_user_id_user_account"),
    )
    op.create_index("ix_role_grant_user", "role_grant", ["user_id", "revoked_at_ms"])
    op.create_table(
        "auth_session",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("user_id", _s(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("mfa", sa.Boolean(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", _s(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_session"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name="fk_auth_session_user_id_user_account"),
    )
    op.create_index("ix_auth_session_user", "auth_session", ["user_id"])
    op.create_table(
        "refresh_token",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("session_id", _s(32), nullable=False),
        sa.Column("token_sha256", _s(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_token"),
        sa.UniqueConstraint("token_sha256", name="uq_refresh_token_token_sha256"),
        sa.ForeignKeyConstraint(["session_id"], ["auth_session.id"], name="fk_refresh_token_session_id_auth_session"),
    )
    op.create_index("ix_refresh_token_session", "refresh_token", ["session_id"])
    op.create_table(
        "totp_secret",
        sa.Column("user_id", _s(32), nullable=False),
        sa.Column("secret", _s(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_totp_secret"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name="fk_totp_secret_user_id_user_account"),
    )
    op.create_table(
        "login_lockout",
        sa.Column("user_id", _s(32), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_failure_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_login_lockout"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name="fk_login_lockout_user_id_user_account"),
    )
    op.create_table(
        "password_reset",
        sa.Column("token_sha256", _s(64), nullable=False),
        sa.Column("user_id", _s(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_password_reset"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name="fk_password_reset_user_id_user_account"),
    )
    op.create_index("ix_password_reset_user", "password_reset", ["user_id"])
    op.create_table(
        "approval",
        sa.Column("id", _s(32), nullable=False),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("organisation_id", _s(32), nullable=False),
        sa.Column("requested_by", _s(100), nullable=False),
        sa.Column("requested_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", _s(500), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", _s(100), nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approval"),
    )
    op.create_index("ix_approval_status", "approval", ["status", "requested_at_ms"])
    op.create_table(
        "venue_extension_cap",
        sa.Column("venue_id", _s(32), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=False),
        sa.Column("set_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("set_by", _s(100), nullable=False),
        sa.PrimaryKeyConstraint("venue_id", name="pk_venue_extension_cap"),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"], name="fk_venue_extension_cap_venue_id_venue"),
    )


def downgrade() -> None:
    op.drop_table("venue_extension_cap")
    op.drop_index("ix_approval_status", table_name="approval")
    op.drop_table("approval")
    op.drop_index("ix_password_reset_user", table_name="password_reset")
    op.drop_table("password_reset")
    op.drop_table("login_lockout")
    op.drop_table("totp_secret")
    op.drop_index("ix_refresh_token_session", table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_index("ix_auth_session_user", table_name="auth_session")
    op.drop_table("auth_session")
    op.drop_index("ix_role_grant_user", table_name="role_grant")
    op.drop_table("role_grant")
    op.drop_table("user_account")
