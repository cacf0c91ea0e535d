"""Counters that hand out task and run numbers; runs get a submission number (the GPU queue's order).

Task seq was max(seq)+1, which concurrent creators could both take (one of them then failed); the
queue was ordered by created_at with a random tie-break. A counter row is taken with an UPDATE,
whose row lock makes concurrent takers wait their turn instead of colliding.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("step_runs") as b:
        b.add_column(sa.Column("seq", sa.Integer))
    conn = op.get_bind()
    runs = sa.table("step_runs", sa.column("id", sa.String), sa.column("seq", sa.Integer),
                    sa.column("created_at", sa.DateTime))
    ids = conn.execute(sa.select(runs.c.id).order_by(runs.c.created_at, runs.c.id)).scalars().all()
    if ids:  # the order they were queued in, as well as it was known
        conn.execute(runs.update().where(runs.c.id == sa.bindparam("rid")).values(seq=sa.bindparam("n")),
                     [{"rid": rid, "n": n} for n, rid in enumerate(ids, 1)])
    op.create_index("ix_step_runs_seq", "step_runs", ["seq"], unique=True)
    task_seq = conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM tasks")).scalar()
    op.bulk_insert(counters, [{"name": "task_seq", "value": task_seq}, {"name": "run_seq", "value": len(ids)}])


def downgrade() -> None:
    op.drop_index("ix_step_runs_seq", "step_runs")
    with op.batch_alter_table("step_runs") as b:
        b.drop_column("seq")
    op.drop_table("counters")
