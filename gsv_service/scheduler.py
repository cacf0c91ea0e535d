"""GPU (or CPU-slot) leases for step runs, handed out first come, first served.

A run that needs GPUs waits (status `queued`) until every GPU of its task's gpu_id is free; on a
machine without GPUs, engine steps share `GSV_CPU_SLOTS` CPU slots instead. Decisions are made in
the database under a one-row lock, so several worker processes never hand out the same GPU, and
an earlier run's GPUs are reserved for it: a later run that wants any of them waits behind it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from gsv_service.models import Lease, SchedulerLock, StepRun, table_of, utcnow
from gsv_service.states import RunStatus

_L, _R, _K = table_of(Lease), table_of(StepRun), table_of(SchedulerLock)


def requirement(needs_gpu: bool, task_gpu_ids: list[str], service_gpus: list[str]) -> dict[str, Any] | None:
    """What a run must hold: the task's GPUs, one CPU slot (no GPUs here), or nothing."""
    if not needs_gpu:
        return None
    if service_gpus:
        return {"gpus": list(task_gpu_ids)}
    return {"cpu_slots": 1}


class Scheduler:
    def __init__(self, db: Engine, cpu_slots: int):
        self.db = db
        self.cpu_slots = max(1, cpu_slots)

    def _waiting(self, c: Connection) -> list[tuple[str, dict[str, Any]]]:
        q = (select(_R.c.id, _R.c.resources).where(and_(_R.c.status == RunStatus.queued.value,
                                                        _R.c.resources.is_not(None)))
             .order_by(_R.c.seq))  # submission order: clocks tie, and differ between hosts
        return [(rid, res) for rid, res in c.execute(q) if res]

    def acquire(self, candidates: set[str]) -> dict[str, list[str]]:
        """Give leases to those of `candidates` (this process's waiting runs) whose turn it is.
        Returns run id -> leased resources."""
        got: dict[str, list[str]] = {}
        with self.db.begin() as c:
            c.execute(update(_K).where(_K.c.id == 1).values(n=_K.c.n + 1))  # serialise deciders
            held = {res: rid for res, rid in c.execute(select(_L.c.resource, _L.c.run_id))}
            holders = set(held.values())
            taken = set(held)
            cpu_free = [f"cpu:{i}" for i in range(self.cpu_slots) if f"cpu:{i}" not in taken]
            for rid, need in self._waiting(c):
                if rid in holders:
                    continue  # leased already, about to start
                if "gpus" in need:
                    want = [f"gpu:{g}" for g in need["gpus"]]
                    free = not (set(want) & taken)
                    taken |= set(want)  # granted or reserved for this earlier run
                else:
                    free = bool(cpu_free)
                    want = cpu_free[:1]
                    cpu_free = cpu_free[1:]
                if free and rid in candidates:
                    now = utcnow()
                    c.execute(insert(_L), [{"resource": r, "run_id": rid, "acquired_at": now} for r in want])
                    got[rid] = want
        return got

    def position(self, run_id: str) -> int | None:
        """1 = next to start among the runs that compete for the same resources."""
        with self.db.connect() as c:
            waiting = self._waiting(c)
            holders = set(c.execute(select(_L.c.run_id)).scalars())
        ids = [rid for rid, _ in waiting if rid not in holders]
        if run_id not in ids:
            return None
        mine = dict(waiting)[run_id]

        def competes(other: dict[str, Any]) -> bool:
            if "gpus" in mine and "gpus" in other:
                return bool(set(mine["gpus"]) & set(other["gpus"]))
            return "gpus" not in mine and "gpus" not in other

        before = [rid for rid, need in waiting[: [r for r, _ in waiting].index(run_id)]
                  if rid not in holders and competes(need)]
        return len(before) + 1

    @staticmethod
    def release(c: Connection, run_id: str) -> None:
        """A run left the active states: its leases go (in the lifecycle's transaction)."""
        c.execute(delete(_L).where(_L.c.run_id == run_id))

    def give_back(self, run_id: str) -> None:
        """Leases granted to a run that did not start (over the cap, or cancelled meanwhile)."""
        with self.db.begin() as c:
            self.release(c, run_id)

    def leases_of(self, run_id: str) -> list[str]:
        with self.db.connect() as c:
            return list(c.execute(select(_L.c.resource).where(_L.c.run_id == run_id)).scalars())
