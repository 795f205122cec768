"""Pre-started processes: the next experiment's process waits with the framework imported.

Real processes throughout: a standby really imports Keras, the worker really
hands it an experiment, and the results are compared with a fresh process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from test_worker import PLUGINS, enqueue, finish, record

from ganlab.config import Resolver
from ganlab.registry import load_plugins
from ganlab.tblog.read import load_run, read_scalars
from ganlab.training.checkpoint import load_checkpoint
from ganlab.worker.child import child_env
from ganlab.worker.standby import start_standby

LOSSES = ("loss/generator", "loss/discriminator", "disc/real", "disc/fake")


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def _config_file(tmp_path: Path) -> Path:
    config = Resolver(load_plugins(None)).resolve("dcgan", "digits", "non-saturating", {
        "steps": 6, "batch_size": 16, "size": 8, "base_filters": 8, "latent_dim": 8, "eval_samples": 64,
        "log_every": 1, "eval_every": 3, "checkpoint_every": 3, "sample_every": 100, "seed": 5,
    })
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps(config.to_dict()))
    return path


def test_a_standby_runs_the_experiment_exactly_as_a_fresh_process_would(tmp_path):
    config = _config_file(tmp_path)
    fresh = subprocess.run(
        [sys.executable, "-m", "ganlab", "train", "--config-file", str(config), "--run-dir", str(tmp_path / "fresh"),
         "--quiet"], capture_output=True, text=True, env=child_env(None, "tensorflow"), timeout=300)
    assert fresh.returncode == 0, fresh.stderr

    standby = start_standby(None, "tensorflow", child_env(None, "tensorflow"))
    log = tmp_path / "standby.log"
    job = {"id": 1, "config": json.loads(config.read_text()), "run_dir": str(tmp_path / "standby"),
           "plugins_dir": None, "pins": []}
    handed = standby.assign(job, log)
    assert handed is not None
    process, reader, lifeline = handed
    assert process.wait(timeout=300) == 0, log.read_text()
    events = reader.read()
    reader.close()
    os.close(lifeline)

    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "result"
    assert events[-1]["status"] == "succeeded" and events[-1]["step"] == 6
    assert "succeeded at step 6" in log.read_text()  # its output went to the run's log
    # Its rehearsal step changed nothing: same losses and same weights as the fresh process.
    a, b = read_scalars(tmp_path / "fresh"), read_scalars(tmp_path / "standby")
    for tag in LOSSES:
        assert a[tag] == b[tag], tag
    assert a["metrics/fd"] == b["metrics/fd"]
    weights_a, _ = load_checkpoint(tmp_path / "fresh" / "checkpoints" / "latest.npz")
    weights_b, _ = load_checkpoint(tmp_path / "standby" / "checkpoints" / "latest.npz")
    # Keyed GROUP/NNNN/PATH: the build-order number identifies a weight; PATH holds Keras's automatic names,
    # which count what the process built before (the rehearsal's seed generator, say).
    by_order_a = {"/".join(k.split("/")[:2]): v for k, v in weights_a.items()}
    by_order_b = {"/".join(k.split("/")[:2]): v for k, v in weights_b.items()}
    assert len(by_order_a) == len(weights_a) and by_order_a.keys() == by_order_b.keys()
    for key in by_order_a:
        np.testing.assert_array_equal(by_order_a[key], by_order_b[key], err_msg=key)


def test_a_standby_exits_when_its_worker_goes_away(tmp_path):
    standby = start_standby(None, "tensorflow", child_env(None, "tensorflow"))
    standby.process.stdin.close()  # what the kernel does when the worker dies
    assert standby.process.wait(timeout=120) == 0
    assert standby.assign({}, tmp_path / "never.log") is None  # a dead standby is refused, not used
    assert not (tmp_path / "never.log").exists()


def _marked(mark: str) -> list[int]:
    """Live processes whose environment carries ``mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _worker(url: str, runs: Path, mark: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "worker", "--db", url, "--runs-dir",
           str(runs), "--gpus", "none", "--poll", "0.3", "--until-empty", *args]
    env = {**os.environ, "GANLAB_TEST_MARK": mark}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def test_worker_hands_experiments_to_prestarted_processes_and_leaves_none_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = enqueue(url, "--steps", "40", "--seeds", "1,2")
    ids += enqueue(url, "--steps", "40", "--seeds", "3", "--backend", "jax", "--priority", "-1")
    mark = f"mark-{uuid.uuid4().hex}"
    worker = _worker(url, tmp_path / "runs", mark)
    out = finish(worker)
    records = [record(url, i) for i in ids]
    assert [r.status for r in records] == ["succeeded"] * 3, out
    logs = [(Path(r.run_dir) / "train.log").read_text() for r in records]
    assert "pre-started process" not in logs[0]  # nothing was waiting yet
    assert "pre-started process" in logs[1]
    assert "pre-started process" not in logs[2]  # another backend: a fresh process
    # Handed over once the previous experiment's last step was done, never while it trained.
    last_step_at = load_run(records[0].run_dir).Tensors("loss/generator")[-1].wall_time
    assert records[1].started_at.timestamp() >= last_step_at - 0.05
    deadline = time.monotonic() + 10
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marked(mark) == [], "a pre-started process outlived its worker"


def test_no_prestart_runs_strictly_one_after_another(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = enqueue(url, "--steps", "20", "--seeds", "1,2")
    out = finish(_worker(url, tmp_path / "runs", f"mark-{uuid.uuid4().hex}", "--no-prestart"))
    first, second = (record(url, i) for i in ids)
    assert first.status == second.status == "succeeded", out
    assert second.started_at >= first.finished_at
    assert "pre-started process" not in (Path(second.run_dir) / "train.log").read_text()
