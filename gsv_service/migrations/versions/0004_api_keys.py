"""API keys and task ownership (issue 10).

Keys are stored as the SHA-256 of the key (never the key) with a short prefix to tell them apart;
a task records the key that created it (NULL: created while no keys existed).

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
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_name", "api_keys", ["name"])
    with op.batch_alter_table("tasks") as b:
        b.add_column(sa.Column("owner_key_id", sa.String(36)))
    op.create_index("ix_tasks_owner_key_id", "tasks", ["owner_key_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_key_id", "tasks")
    with op.batch_alter_table("tasks") as b:
        b.drop_column("owner_key_id")
    op.drop_index("ix_api_keys_name", "api_keys")
    op.drop_table("api_keys")
