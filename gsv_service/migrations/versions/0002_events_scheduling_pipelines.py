"""Events, GPU/CPU-slot leases, pipelines.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36)),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_events_task_id_id", "events", ["task_id", "id"])
    op.create_table(
        "leases",
        sa.Column("resource", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False, index=True),
        sa.Column("acquired_at", TS, nullable=False),
    )
    op.create_table(
        "scheduler_lock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False, server_default="0"),
    )
    op.execute("INSERT INTO scheduler_lock (id, n) VALUES (1, 0)")
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("failed_step", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("reason", sa.String(40)),
        sa.Column("owner", sa.String(80)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_pipelines_task_created", "pipelines", ["task_id", "created_at"])
    with op.batch_alter_table("tasks") as b:
        b.add_column(sa.Column("active_pipeline_id", sa.String(36)))
    with op.batch_alter_table("step_runs") as b:
        b.add_column(sa.Column("pipeline_id", sa.String(36)))
        b.add_column(sa.Column("resources", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as b:
        b.drop_column("resources")
        b.drop_column("pipeline_id")
    with op.batch_alter_table("tasks") as b:
        b.drop_column("active_pipeline_id")
    op.drop_table("pipelines")
    op.drop_table("scheduler_lock")
    op.drop_table("leases")
    op.drop_table("events")
