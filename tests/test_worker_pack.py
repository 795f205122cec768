"""Packed seeds through the worker: one child trains the pack, kill -9 mid-pack resumes every seed.

Real worker processes, a real SQLite file, real (tiny) Keras GANs on JAX.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from test_worker import enqueue, finish, record, start_worker, training_children_of, wait_for

from ganlab.tblog.read import read_scalars


def test_kill_9_mid_pack_then_a_new_worker_resumes_every_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = enqueue(url, "--backend", "jax", "--seeds", "0,1", "--pack", "2", "--steps", "300",
                  "--set", "checkpoint_every=10", "--set", "eval_every=1000")
    assert len(ids) == 2 and len({record(url, i).pack_key for i in ids}) == 1
    runs = tmp_path / "runs"
    first = start_worker(url, runs, "--until-empty", "--lease", "3")
    run_dirs = [Path(wait_for(lambda i=i: record(url, i).run_dir, what="the pack's claim")) for i in ids]
    wait_for(lambda: all((d / "checkpoints" / "latest.npz").is_file() for d in run_dirs), what="first checkpoints")
    victims = [first.pid, *training_children_of(first.pid)]
    assert len(victims) == 2, "the worker and ONE training child for the whole pack"
    for pid in reversed(victims):  # frozen first, as in test_worker's kill -9 test
        os.kill(pid, signal.SIGSTOP)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    first.communicate()
    assert [record(url, i).status for i in ids] == ["running", "running"]  # only the leases can tell

    out = finish(start_worker(url, runs, "--until-empty", "--lease", "3"))
    assert re.search(r"pack of 2 \(#\d+, #\d+\): started on CPU in one process", out), out
    for exp_id, run_dir in zip(ids, run_dirs):
        rec = record(url, exp_id)
        assert rec.status == "succeeded" and rec.step == 300 and rec.attempts == 2, rec
        assert f"#{exp_id} reclaimed" in out
        resumed = int(re.search(rf"#{exp_id} .*resumed from its checkpoint at step (\d+)", out).group(1))
        assert resumed % 10 == 0 and 10 <= resumed < 300
        steps = [s for s, _ in read_scalars(run_dir)["loss/generator"]]
        assert steps == sorted(set(steps)) and steps[-1] == 300 and resumed in steps
        log = (run_dir / "train.log").read_text()
        assert "in a pack of 2" in log and "succeeded at step 300" in log
    # Seeds trained together still differ (each its own key and weights).
    curves = [read_scalars(d)["loss/generator"] for d in run_dirs]
    assert curves[0] != curves[1]
