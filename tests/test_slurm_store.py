"""The queue's side of preemption: a hand-back keeps a requested cancel, and workers carry their SLURM ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_store import new

from ganlab.store import Queue


@pytest.fixture
def q(db_url: str) -> Iterator[Queue]:
    with Queue.open(db_url, create=True) as queue:
        yield queue


def test_a_hand_back_after_a_cancel_request_cancels(q: Queue) -> None:
    # A worker told to stop (SLURM's warning) releases its experiment; a cancel asked for meanwhile must not
    # be lost with the lease (the next claim clears the flag), so the experiment ends cancelled instead.
    q.enqueue([new(0), new(1)])
    first, second = q.claim("w"), q.claim("w")
    assert first is not None and second is not None
    q.cancel([first.id])
    assert q.release(first.id, first.token, step=40) == "cancelled"
    assert q.release(second.id, second.token, step=25) == "queued"
    cancelled, queued = q.get(first.id), q.get(second.id)
    assert (cancelled.status, cancelled.step, cancelled.finished_at is not None) == ("cancelled", 40, True)
    assert (queued.status, queued.step, queued.attempts, queued.worker_id) == ("queued", 25, 0, None)
    retaken = q.claim("w")
    assert retaken is not None and retaken.id == second.id and retaken.experiment.attempts == 1


def test_workers_record_their_slurm_job_and_task(q: Queue) -> None:
    q.register_worker("plain", host="box", pid=1)
    q.register_worker("array", host="node7", pid=2, slurm_job_id="4242", slurm_task=3)
    q.register_worker("single", host="node8", pid=3, slurm_job_id="4300")
    rows = {w.worker_id: w for w in q.list_workers()}
    assert {k: (w.slurm_job_id, w.slurm_task, w.slurm) for k, w in rows.items()} == {
        "plain": (None, None, ""), "array": ("4242", 3, "4242_3"), "single": ("4300", None, "4300")}
    # A requeued task registers a fresh worker; one re-registered under the same id keeps the new ids.
    q.register_worker("array", host="node9", pid=9, slurm_job_id="4242", slurm_task=5)
    again = next(w for w in q.list_workers() if w.worker_id == "array")
    assert (again.host, again.slurm) == ("node9", "4242_5")
    assert again.to_dict()["slurm_task"] == 5
