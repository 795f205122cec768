"""Eight real processes claim from one database while another enqueues: each experiment is claimed exactly once.

Run as a script, this file is the child process (``claim`` or ``enqueue`` role).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

CLAIMERS = 8
BATCHES = 20
BATCH_SIZE = 10


def _claim_loop(url: str, out: Path, done: Path, worker: str) -> None:
    from ganlab.store import Queue

    claimed: list[list[int]] = []
    with Queue.open(url) as q:
        while True:
            claim = q.claim(worker, lease_s=60)
            if claim is None:
                if not done.exists():
                    time.sleep(0.002)
                    continue
                # The marker is written after the last commit, so one more try sees every row.
                claim = q.claim(worker, lease_s=60)
                if claim is None:
                    break
            claimed.append([claim.id, claim.token])
            q.renew(claim.id, claim.token, step=1)
            q.finish(claim.id, claim.token, "succeeded", metrics={"worker": worker})
    out.write_text(json.dumps(claimed))


def _enqueue_loop(url: str, out: Path, done: Path) -> None:
    from ganlab.config import ExperimentConfig
    from ganlab.store import NewExperiment, Store

    ids: list[int] = []
    with Store.open(url) as store:
        for batch in range(BATCHES):
            items = [
                NewExperiment(ExperimentConfig("toy", "toyset", "toyloss", train={"seed": batch * BATCH_SIZE + i}), f"b{batch}-{i}")
                for i in range(BATCH_SIZE)
            ]
            ids += [exp_id for exp_id, _ in store.enqueue(items).queued]
            time.sleep(0.01)
    out.write_text(json.dumps(ids))
    done.write_text("done")


def test_eight_processes_claim_each_experiment_exactly_once(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    from ganlab.store import Queue

    Queue.open(db_url, create=True).close()
    done = tmp_path / "enqueue.done"
    script = str(Path(__file__).resolve())
    procs = [
        subprocess.Popen([sys.executable, script, "claim", db_url, str(tmp_path / f"claims{i}.json"), str(done), f"w{i}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(CLAIMERS)
    ]
    procs.append(subprocess.Popen([sys.executable, script, "enqueue", db_url, str(tmp_path / "ids.json"), str(done)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0 and "locked" not in err, err
        assert err.strip() == "", err
    enqueued = json.loads((tmp_path / "ids.json").read_text())
    claims = [c for i in range(CLAIMERS) for c in json.loads((tmp_path / f"claims{i}.json").read_text())]
    claimed_ids = [exp_id for exp_id, _ in claims]
    assert len(enqueued) == BATCHES * BATCH_SIZE
    assert sorted(claimed_ids) == sorted(enqueued)  # every one claimed, none twice
    assert all(token == 1 for _, token in claims)
    with Queue.open(db_url) as q:
        rows = q.list_experiments()
        assert len(rows) == len(enqueued)
        assert {r.status for r in rows} == {"succeeded"}
        assert sum(1 for i in range(CLAIMERS) if json.loads((tmp_path / f"claims{i}.json").read_text())) >= 2


if __name__ == "__main__":
    role, url_arg, out_arg, done_arg, *rest = sys.argv[1:]
    if role == "claim":
        _claim_loop(url_arg, Path(out_arg), Path(done_arg), rest[0])
    else:
        _enqueue_loop(url_arg, Path(out_arg), Path(done_arg))
