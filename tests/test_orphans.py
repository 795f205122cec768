"""A worker's death is noticed at every stage of a child's life, and a run dir never has two live trainers.

Real processes throughout: a stand-in worker (tests/worker_harness.py) starts
each child through the worker's own spawn code and is killed with SIGKILL,
its whole process group, at a chosen stage, as the chaos run that found the
orphans killed real workers. The children then have init for a parent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganlab.cli import cli
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.report import EXIT_CODES
from ganlab.worker.lifeline import LIFELINE_FD_ENV, WORKER_PID_ENV
from ganlab.worker.outcome import classify

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))

from chaos_workers import ChaosPlan, run_chaos  # noqa: E402 - the benchmark folder is not a package

PLUGINS = HERE / "orphan_plugins"
HARNESS = HERE / "worker_harness.py"
TINY = ["--arch", "slow-build", "--dataset", "digits", "--loss", "non-saturating", "--batch-size", "16",
        "--set", "size=8", "--set", "latent_dim=8", "--set", "log_every=5",
        "--set", "sample_every=100000"]
#: "It exits", with room for a loaded machine: an orphan that keeps going never gets there.
EXIT_BOUND_S = 60


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def reap():
    """Pids to kill at the end should a test fail with them still alive (the orphans this file is about)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if not exited(pid) and b"ganlab" in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaps (an orphan's parent is init, not this test)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return True
    return state in (b"Z", b"X")


def wait_exit(pid: int, what: str, bound: float = EXIT_BOUND_S) -> None:
    deadline = time.monotonic() + bound
    while not exited(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (pid {pid}) is still running {bound:g} s after its worker died")
        time.sleep(0.2)


def enqueue(url: str, *args: str) -> None:
    # --no-build-check: the generator's build sleeps on purpose (build_s); the worker's children are under test.
    result = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), "queue", "--db", url, "add", "-q",
                                      "--no-build-check", *TINY, *args])
    assert result.exit_code == 0, result.output


def kill_worker_at(tmp_path: Path, stage: str, reap: list[int], *args: str, step: int = 0) -> tuple[int, Path]:
    """Run the stand-in worker until its child reaches ``stage``, then kill -9 its whole process group."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    if stage != "standby":
        enqueue(url, *args)
    harness = subprocess.Popen(
        [sys.executable, str(HARNESS), "--db", url, "--runs", str(tmp_path / "runs"), "--plugins", str(PLUGINS),
         "--stage", stage, "--step", str(step)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        ready, _, _ = select.select([harness.stdout], [], [], 300)
        line = harness.stdout.readline() if ready else ""
        assert line, f"the stand-in worker did not reach {stage}: {harness.stderr.read() if harness.poll() else ''}"
        info = json.loads(line)
        reap.append(info["pid"])
    finally:
        os.killpg(harness.pid, signal.SIGKILL)
        harness.wait()
        harness.stdout.close()
        harness.stderr.close()
    return info["pid"], Path(info.get("run_dir", tmp_path))


def stopped_at(log: str) -> int:
    found = re.findall(r"stopped \(its worker is gone\) at step (\d+), checkpoint written", log)
    assert len(found) == 1, log
    return int(found[0])


def test_a_child_orphaned_while_it_imports_exits(tmp_path, reap):
    pid, run_dir = kill_worker_at(tmp_path, "import", reap, "--steps", "100000")
    wait_exit(pid, "the child orphaned while importing")
    assert not (run_dir / "config.json").exists()  # it never started: nothing to resume, nothing written


def test_a_child_orphaned_while_it_builds_its_models_exits_at_once(tmp_path, reap):
    # The build would sleep ten minutes: only noticing the worker's death during it ends the child in time.
    pid, run_dir = kill_worker_at(tmp_path, "build", reap, "--steps", "100000", "--set", "build_s=600")
    wait_exit(pid, "the child orphaned while building its models")
    assert not (run_dir / "config.json").exists()


def test_a_child_orphaned_while_it_trains_checkpoints_and_stops(tmp_path, reap):
    pid, run_dir = kill_worker_at(tmp_path, "train", reap, "--steps", "100000", "--set", "checkpoint_every=20",
                                  "--set", "eval_every=100000")
    wait_exit(pid, "the child orphaned while training")
    log = (run_dir / "train.log").read_text()
    step = stopped_at(log)
    assert "succeeded" not in log
    _, state = load_checkpoint(run_dir / "checkpoints" / "latest.npz")  # complete and readable
    assert state["step"] == step >= 20


def test_a_child_orphaned_during_its_final_evaluation_stops_without_claiming_success(tmp_path, reap):
    # Killed as the last step is reported: the child now samples, evaluates and writes its last checkpoint.
    pid, run_dir = kill_worker_at(tmp_path, "eval", reap, "--steps", "40", "--set", "eval_every=20",
                                  "--set", "eval_samples=1000", "--set", "checkpoint_every=20", step=40)
    wait_exit(pid, "the child orphaned while evaluating")
    log = (run_dir / "train.log").read_text()
    # Nobody recorded its result: the worker that resumes the run will, so only that one may say "succeeded".
    assert "succeeded at step" not in log
    assert stopped_at(log) == 40
    _, state = load_checkpoint(run_dir / "checkpoints" / "latest.npz")
    assert state["step"] == 40
    assert [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())] == [20, 40]
    resumed = subprocess.run([sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "train", "--resume",
                              "--run-dir", str(run_dir), "-q"], capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("already complete at step 40, nothing left to train")


def test_a_standby_orphaned_while_it_warms_up_exits(tmp_path, reap):
    pid, _ = kill_worker_at(tmp_path, "standby", reap)
    wait_exit(pid, "the pre-started process orphaned before it was handed an experiment")


def test_a_standby_orphaned_with_an_experiment_in_its_stdin_never_trains_it(tmp_path, reap):
    # The experiment waits in the pipe while the process warms up; its worker dies before it reads it.
    pid, run_dir = kill_worker_at(tmp_path, "handed", reap, "--steps", "100000")
    wait_exit(pid, "the pre-started process orphaned after its hand-over")
    assert not (run_dir / "config.json").exists()


def _train(run_dir: Path, *args: str, **kw) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "train",
                             "--run-dir", str(run_dir), "-q", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _checkpoint_step(run_dir: Path) -> int:
    try:
        return int(load_checkpoint(run_dir / "checkpoints" / "latest.npz")[1]["step"])
    except Exception:  # noqa: BLE001 - not written yet
        return 0


def _until(predicate, what: str, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_two_trainers_never_train_one_run_dir_at_once(tmp_path, reap):
    run_dir = tmp_path / "run"
    first = _train(run_dir, *TINY, "--steps", "100000", "--set", "checkpoint_every=20",
                   "--set", "eval_every=100000")
    reap.append(first.pid)
    _until(lambda: _checkpoint_step(run_dir) > 0, "the first trainer's checkpoint")

    # A user's second trainer is refused at once, in one line naming who holds the run dir.
    second = _train(run_dir, "--resume")
    reap.append(second.pid)
    _, err = second.communicate(timeout=300)
    assert second.returncode == EXIT_CODES["busy"], err
    assert "Traceback" not in err
    assert re.findall(r"^Error: .*", err, re.M) == [
        f"Error: run dir {run_dir} is in use by another trainer (pid {first.pid}); "
        + "wait for it to exit or stop it, then try again"
    ]
    assert first.poll() is None

    # A worker's child waits for the previous trainer instead (say, one whose worker died that still
    # checkpoints), then resumes from the checkpoint that one leaves.
    life_read, life_write = os.pipe()
    env = {**os.environ, WORKER_PID_ENV: str(os.getpid()), LIFELINE_FD_ENV: str(life_read)}
    err_path = tmp_path / "third.err"
    reports = os.open(os.devnull, os.O_WRONLY)  # its events are not read here: they must not fill a pipe
    plugin = PLUGINS / "slow_build.py"
    job = {"id": 1, "config": json.loads((run_dir / "config.json").read_text()), "run_dir": str(run_dir),
           "report_fd": reports, "plugins_dir": str(PLUGINS),
           "pins": [f"{hashlib.sha256(plugin.read_bytes()).hexdigest()}:{plugin}"]}
    with open(err_path, "w") as err_file:
        third = subprocess.Popen([sys.executable, "-m", "ganlab.worker.child_main"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=err_file, text=True, env=env,
                                 pass_fds=[life_read, reports])
    third.stdin.write(json.dumps(job) + "\n")
    third.stdin.close()
    os.close(life_read)
    os.close(reports)
    reap.append(third.pid)
    try:
        waiting = f"waiting up to 120 s for the previous trainer of {run_dir} (pid {first.pid}) to exit"
        _until(lambda: waiting in err_path.read_text(), "the second trainer to wait for the first")
        first.send_signal(signal.SIGTERM)
        first_out, _ = first.communicate(timeout=300)
        assert first.returncode == 4, first_out
        handed_over = int(re.search(r"at step (\d+)", first_out).group(1))
        _until(lambda: _checkpoint_step(run_dir) > handed_over, "the waiting trainer to train on")
        third.send_signal(signal.SIGTERM)
        third_out = third.stdout.read()
        third.wait(timeout=300)
    finally:
        os.close(life_write)
    assert third.returncode == 4, err_path.read_text()
    assert int(re.search(r"at step (\d+)", third_out).group(1)) > handed_over


def test_the_worker_retries_a_run_dir_that_stayed_busy():
    line = "run dir /r/0001-x is in use by another trainer (pid 7); wait for it to exit or stop it, then retry"
    result = {"status": "busy", "step": 0, "stage": "start", "kind": "error", "error": line}
    outcome = classify(EXIT_CODES["busy"], result, f"=== header\nError: {line}")
    assert outcome.status == "failed" and outcome.retryable
    assert outcome.reason.startswith("run dir /r/0001-x is in use by another trainer (pid 7")


def test_random_kill_9_of_workers_never_has_two_trainers_on_a_run_nor_finishes_one_twice(tmp_path):
    # Issue 13's chaos run, shortened: two workers, a worker's process group killed with SIGKILL every few
    # seconds (a new worker takes its place), then the survivors killed and a third worker drains the queue.
    plan = ChaosPlan(experiments=4, steps=150, workers=2, kills=4, interval_s=(2.0, 6.0), lease_s=2.0, seed=1,
                     queue_args=(*TINY, "--set", "checkpoint_every=25", "--set", "eval_every=75",
                                 "--set", "eval_samples=64"),
                     plugins_dir=str(PLUGINS), drain_timeout_s=600)
    report = run_chaos(plan, tmp_path, say=lambda _: None)
    figures = "\n".join(report.lines())
    assert report.statuses == {"succeeded": 4}, figures
    # Trained to the end at most once; a run whose trainer died between its last checkpoint and its
    # last log line is recorded by the resume, which says "already complete" instead.
    assert report.finished_twice == 0, report.succeeded_lines
    assert report.unexplained_ends == 0, figures
    assert report.max_writers_per_run_dir == 1, figures  # never two processes training one run at once
    assert report.left_alive == 0, figures
    assert report.max_orphan_life_s < EXIT_BOUND_S, figures
