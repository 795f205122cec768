"""The worker with real processes: runs, crashes, kill -9 and resume, SIGTERM, cancel, two workers.

Every experiment here is a real (tiny) Keras GAN trained by a real ``ganlab
train`` child on the bundled digits at 8x8; the database is a real file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganlab.cli import cli
from ganlab.store.queue import Queue
from ganlab.tblog.read import read_scalars

PLUGINS = Path(__file__).resolve().parent / "worker_plugins"
SMALL = ["--arch", "faulty", "--dataset", "digits", "--loss", "non-saturating", "--batch-size", "16",
         "--set", "size=8", "--set", "latent_dim=8", "--set", "eval_samples=64", "--set", "log_every=5"]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    # One feature-net cache for the whole session: it is trained once per dataset.
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def enqueue(url: str, *args: str) -> list[int]:
    # --no-build-check: 'faulty' fails on purpose while building, and the worker's handling of that is under test.
    result = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "--db", url, "add", "-q",
                                      "--no-build-check", *SMALL, *args])
    assert result.exit_code == 0, result.output
    return [int(line) for line in result.stdout.split()]


def start_worker(url: str, runs: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "worker", "--db", url,
           "--runs-dir", str(runs), "--gpus", "none", "--poll", "0.3", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def wait_for(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def record(url: str, exp_id: int):
    with Queue.open(url) as q:
        return q.get(exp_id)


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"


def training_children_of(pid: int) -> list[int]:
    """The worker's children that run an experiment: not a pre-started process still waiting."""
    kids = []
    for kid in children_of(pid):
        try:
            if b"ganlab.worker.standby" not in Path(f"/proc/{kid}/cmdline").read_bytes():
                kids.append(kid)
        except OSError:
            continue
    return kids


def test_two_workers_run_the_queue_once_each(tmp_path):
    # SQLite only: the same claim race on PostgreSQL is covered by test_claim_concurrency.
    url = f"sqlite:///{tmp_path / 'q.db'}"
    ids = enqueue(url, "--steps", "20", "--seeds", "0,1,2,3")
    assert len(ids) == 4
    runs = tmp_path / "runs"
    workers = [start_worker(url, runs, "--until-empty", "--lease", "20") for _ in range(2)]
    outputs = [finish(w) for w in workers]
    for exp_id in ids:
        rec = record(url, exp_id)
        assert rec.status == "succeeded", (rec.error, outputs)
        assert rec.attempts == 1 and rec.step == 20
        assert rec.metrics["fd"] > 0
        log = (Path(rec.run_dir) / "train.log").read_text()
        assert log.count("=== ") == 1, log  # started exactly once, by exactly one worker
    combined = "".join(outputs)
    assert all(f"#{i} " in combined and "succeeded at step 20" in combined for i in ids), combined
    logs = CliRunner().invoke(cli, ["logs", "--db", url, str(ids[0]), "-n", "50"])
    assert logs.exit_code == 0 and f"experiment {ids[0]} attempt 1" in logs.stdout
    grid = tmp_path / "grid.png"
    sampled = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "sample", "--db", url, str(ids[0]),
                                       "-n", "4", "-o", str(grid)])
    assert sampled.exit_code == 0 and grid.stat().st_size > 0, sampled.output
    assert f"to {grid}" in sampled.output
    unknown = CliRunner().invoke(cli, ["sample", "--db", url, "99", "-o", str(tmp_path / "x.png")])
    assert unknown.exit_code == 1 and unknown.output.startswith("Error: no experiment 99")
    assert not (tmp_path / "x.png").exists()
    status = CliRunner().invoke(cli, ["status", "--db", url, "--json", "--all-workers"])
    data = json.loads(status.stdout)
    assert data["counts"]["succeeded"] == 4 and data["running"] == []
    assert len(data["workers"]) == 2 and {w["status"] for w in data["workers"]} == {"stopped"}


def test_crashes_are_classified_retried_and_the_worker_goes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    raised = enqueue(url, "--steps", "5", "--set", "fault=raise", "--priority", "3")[0]
    killed = enqueue(url, "--steps", "5", "--set", "fault=sigkill", "--priority", "2")[0]
    fine = enqueue(url, "--steps", "5", "--priority", "1")[0]
    out = finish(start_worker(url, tmp_path / "runs", "--until-empty", "--max-attempts", "2", "--lease", "20"))
    r = record(url, raised)
    assert r.status == "failed" and r.attempts == 1  # a Python exception is a bug: not retried
    assert r.error.splitlines()[-1] == "RuntimeError: injected failure while building the generator"
    assert "Python exception: RuntimeError: injected failure" in out
    k = record(url, killed)
    assert k.status == "failed" and k.attempts == 2  # a kill may be the machine's fault: retried, then failed
    assert k.error.startswith("killed by signal 9 (SIGKILL)")
    assert record(url, fine).status == "succeeded"


def test_kill_9_then_a_new_worker_resumes_from_the_checkpoint(db_url, tmp_path):
    url = db_url
    [exp_id] = enqueue(url, "--steps", "400", "--set", "checkpoint_every=10", "--set", "eval_every=1000")
    runs = tmp_path / "runs"
    first = start_worker(url, runs, "--until-empty", "--lease", "3")
    run_dir = Path(wait_for(lambda: record(url, exp_id).run_dir, what="the claim"))
    # Kill right after the first checkpoint lands, well before the run could finish.
    wait_for(lambda: (run_dir / "checkpoints" / "latest.npz").is_file(), what="the first checkpoint")
    victims = [first.pid, *training_children_of(first.pid)]
    assert len(victims) == 2, "worker and its training child"
    standbys = [pid for pid in children_of(first.pid) if pid not in victims]
    # Frozen first, child before worker: a child that outlives its worker by a moment sees its lifeline
    # close and checkpoints at its current step, which is right, but this test is about a checkpoint step.
    for pid in reversed(victims):
        os.kill(pid, signal.SIGSTOP)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    first.communicate()
    # A pre-started process waiting for the dead worker's next experiment exits by itself.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid) for pid in standbys),
             timeout=30, what="the pre-started process to exit")
    assert record(url, exp_id).status == "running"  # nobody told the queue: only the lease can

    out = finish(start_worker(url, runs, "--until-empty", "--lease", "3"))
    rec = record(url, exp_id)
    assert rec.status == "succeeded" and rec.step == 400 and rec.attempts == 2
    assert f"#{exp_id} reclaimed" in out
    resumed = re.search(r"resumed from its checkpoint at step (\d+)", out)
    assert resumed, out
    resumed_at = int(resumed.group(1))
    assert resumed_at % 10 == 0 and 10 <= resumed_at < 400  # a checkpoint step, not the start
    log = (Path(rec.run_dir) / "train.log").read_text()
    assert log.count("=== ") == 2
    steps = [s for s, _ in read_scalars(rec.run_dir)["loss/generator"]]
    assert steps == sorted(set(steps)), "TensorBoard shows each step once, in order"
    assert steps[0] <= 5 and steps[-1] == 400
    # The curve continues where the checkpoint left it: no gap at the resume point.
    assert resumed_at in steps and resumed_at + 5 in steps
    gaps = [(a, b) for a, b in zip(steps, steps[1:]) if b - a > 5]
    assert not gaps, gaps


def test_sigterm_requeues_and_cancel_stops_a_running_experiment(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    [exp_id] = enqueue(url, "--steps", "5000", "--set", "checkpoint_every=1000", "--set", "eval_every=100000")
    runs = tmp_path / "runs"
    worker = start_worker(url, runs, "--lease", "6")
    wait_for(lambda: record(url, exp_id).step >= 10, what="step 10")
    worker.send_signal(signal.SIGTERM)
    out = finish(worker, timeout=60)
    rec = record(url, exp_id)
    assert rec.status == "queued" and rec.step >= 10
    assert "back in the queue" in out
    assert (Path(rec.run_dir) / "checkpoints" / "latest.npz").is_file()
    stopped_at = rec.step

    worker = start_worker(url, runs, "--until-empty", "--lease", "3")
    wait_for(lambda: record(url, exp_id).step > stopped_at, what="the resumed run to make progress")
    cancel = CliRunner().invoke(cli, ["queue", "--db", url, "cancel", str(exp_id)])
    assert cancel.exit_code == 0, cancel.output
    out = finish(worker, timeout=60)
    rec = record(url, exp_id)
    # The running child was stopped, not left to train out its 5000 steps.
    assert rec.status == "cancelled" and rec.step < 5000
    assert re.search(rf"#{exp_id} .*: cancelled at step \d+", out), out


def test_a_worker_presumed_dead_cannot_overwrite_the_new_owner(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    [exp_id] = enqueue(url, "--steps", "5000", "--set", "checkpoint_every=20", "--set", "eval_every=100000")
    runs = tmp_path / "runs"
    a = start_worker(url, runs, "--lease", "2")
    b = None
    try:
        run_dir = Path(wait_for(lambda: record(url, exp_id).run_dir, what="the claim"))
        wait_for(lambda: (run_dir / "checkpoints" / "latest.npz").is_file(), what="a checkpoint")
        [a_child] = training_children_of(a.pid)
        for pid in (a.pid, a_child):  # frozen, as by a long GC pause or a suspended VM
            os.kill(pid, signal.SIGSTOP)
        time.sleep(2.5)  # its lease runs out
        b = start_worker(url, runs, "--lease", "2", "--max-experiments", "1")
        wait_for(lambda: record(url, exp_id).fence == 2 and record(url, exp_id).status == "running",
                 what="the second worker to take the experiment over")
        owner = record(url, exp_id).worker_id
        for pid in (a_child, a.pid):
            os.kill(pid, signal.SIGCONT)
        # A's next heartbeat carries the stale token: it kills its child and writes nothing.
        wait_for(lambda: not Path(f"/proc/{a_child}").exists(), timeout=30, what="A's child to be stopped")
        assert record(url, exp_id).worker_id == owner and record(url, exp_id).status == "running"
        assert CliRunner().invoke(cli, ["queue", "--db", url, "cancel", str(exp_id)]).exit_code == 0
        finish(b, timeout=60)
        a.send_signal(signal.SIGTERM)
        out_a = finish(a, timeout=60)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert f"#{exp_id} lease lost" in out_a
    rec = record(url, exp_id)
    assert rec.status == "cancelled" and rec.worker_id == owner and rec.attempts == 2


@pytest.mark.parametrize("args, message", [
    (["--gpus", "zero"], "Error: --gpus 'zero' is not valid; use auto, none, or GPU ids like 0,1"),
    (["--lease", "0"], "Invalid value for '--lease': must be > 0, got 0.0"),
    (["--prestart=yes"], "Option '--prestart' does not take a value"),
])
def test_worker_bad_options(tmp_path, args, message):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    enqueue(url, "--steps", "5")
    result = CliRunner().invoke(cli, ["worker", "--db", url, *args])
    assert result.exit_code != 0 and message in result.output
    assert record(url, 1).status == "queued"


def test_worker_on_a_missing_database_is_one_line(tmp_path):
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["worker", "--db", str(missing), "--until-empty"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
    assert not missing.exists()
    logs = CliRunner().invoke(cli, ["logs", "--db", str(missing), "3"])
    assert logs.exit_code == 1 and logs.output.startswith("Error: ")
    status = CliRunner().invoke(cli, ["status", "--db", str(missing)])
    assert status.exit_code == 1 and status.output.startswith("Error: ") and len(status.output.splitlines()) == 1
    assert not missing.exists()


def test_demo_refuses_an_unknown_loss_before_touching_the_queue(tmp_path):
    db = tmp_path / "experiments.db"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db), "--losses", "hinge,hinj", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown loss 'hinj'; did you mean 'hinge'?")
    assert len(result.output.splitlines()) == 1 and not db.exists()
