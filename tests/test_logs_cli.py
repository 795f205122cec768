"""``ganlab logs`` on real worker runs: progress as ``ganlab train`` prints it, ``-f`` to the end, no noise.

One in-process worker (the real loop, a real ``ganlab train`` child per
experiment, tiny models on the bundled digits at 8x8) runs two experiments:
one that trains, followed by ``ganlab logs -f`` in another process while it
runs, and one whose plugin raises. Every C++ start-up line is let through
(``TF_CPP_MIN_LOG_LEVEL=0``) so that the raw log has them to filter.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from ganlab.cli import cli
from ganlab.logfilter import is_noise
from ganlab.store.queue import Queue
from ganlab.worker.display import WorkerDisplay
from ganlab.worker.loop import Worker, WorkerOptions

PLUGINS = Path(__file__).resolve().parent / "worker_plugins"
STEPS = 60
TINY = ["--arch", "faulty", "--dataset", "digits", "--loss", "non-saturating", "--batch-size", "16",
        "--set", "size=8", "--set", "latent_dim=8", "--set", "eval_samples=64", "--set", "log_every=5",
        "--set", "eval_every=30", "--steps", str(STEPS)]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")


def _ganlab(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), *args])


def _enqueue(url: str, *args: str) -> int:
    result = _ganlab("queue", "--db", url, "add", "-q", *TINY, *args)
    assert result.exit_code == 0, result.output
    return int(result.stdout.split()[0])


def _status(url: str, exp_id: int) -> tuple[str, str | None]:
    with Queue.open(url) as q:
        rec = q.get(exp_id)
    return rec.status, rec.run_dir


class _Follower(threading.Thread):
    """Starts ``ganlab logs -f`` once the experiment runs, and notes that it was still following then."""

    def __init__(self, url: str, exp_id: int) -> None:
        super().__init__(daemon=True)
        self.url, self.exp_id = url, exp_id
        self.process: subprocess.Popen[str] | None = None
        self.alive_while_running = False

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status, run_dir = _status(self.url, self.exp_id)
            if status == "running" and run_dir and (Path(run_dir) / "train.log").is_file():
                break
            time.sleep(0.1)
        self.process = subprocess.Popen([sys.executable, "-m", "ganlab", "logs", "--db", self.url,
                                         str(self.exp_id), "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        time.sleep(1.0)
        self.alive_while_running = self.process.poll() is None and _status(self.url, self.exp_id)[0] == "running"


def test_logs_show_and_follow_worker_runs_and_drop_start_up_noise(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    trained = _enqueue(url, "--priority", "2")
    failed = _enqueue(url, "--set", "fault=raise", "--priority", "1", "--no-build-check")  # it fails when built
    follower = _Follower(url, trained)
    follower.start()
    shown = io.StringIO()
    display = WorkerDisplay(console=Console(file=shown, force_terminal=False, width=200), every_s=0.0)
    options = WorkerOptions(slots=[None], runs_root=tmp_path / "runs", poll_s=0.2, until_empty=True,
                            plugins_dir=str(PLUGINS), prestart=False)
    with Queue.open(url) as queue:
        Worker(queue, options, display).run()
    follower.join(timeout=60)
    assert follower.process is not None
    out, err = follower.process.communicate(timeout=60)

    # -f printed the run as it went and left by itself once the row was final.
    assert follower.alive_while_running
    assert follower.process.returncode == 0, err
    assert f"step {STEPS}/{STEPS}  " in out and f"succeeded at step {STEPS}" in out, out
    assert not [line for line in out.splitlines() if is_noise(line)]

    # The worker's status line shows the discriminator's and generator's losses.
    status_lines = re.findall(rf"#{trained} \S+  \d+/{STEPS}  .*", shown.getvalue())
    assert any(re.search(r"ETA \S+  D \d+\.\d{3} G -?\d+\.\d{3}$", line) for line in status_lines), status_lines

    # Without -f: the same progress (step, rate, losses, evaluations), read back once the run is over.
    log = _ganlab("logs", "--db", url, str(trained))
    assert log.exit_code == 0, log.output
    lines = [line for line in log.stdout.splitlines() if line]  # each attempt's header follows a blank line
    assert lines[0].startswith("=== ") and f"experiment {trained} attempt 1" in lines[0]
    assert lines[1] == f"training from step 0 to {STEPS}"
    assert re.fullmatch(rf"step {STEPS}/{STEPS}  [\d.]+ steps/s  [\d,]+ img/s  D \d+\.\d{{3}} G -?\d+\.\d{{3}}",
                        next(line for line in lines if line.startswith(f"step {STEPS}/"))), lines
    assert any(line.startswith("eval at step 30: fd ") for line in lines), lines
    assert log.stdout == out
    assert _ganlab("logs", "--db", url, str(trained), "-n", "1").stdout.startswith(f"succeeded at step {STEPS}")

    # The raw log keeps TensorFlow's start-up lines; --raw shows them.
    raw = (Path(_status(url, trained)[1]) / "train.log").read_text().splitlines()
    noise = [line for line in raw if is_noise(line)]
    assert noise
    assert _ganlab("logs", "--db", url, str(trained), "--raw").stdout.splitlines() == raw

    # A real failure: its stored error, queue show and logs start at what went wrong.
    with Queue.open(url) as q:
        rec = q.get(failed)
    assert rec.status == "failed"
    assert rec.error.splitlines()[0] == "Python exception: RuntimeError: injected failure while building the generator"
    assert rec.error.splitlines()[-1] == "RuntimeError: injected failure while building the generator"
    assert not [line for line in rec.error.splitlines() if is_noise(line)]
    assert any(is_noise(line) for line in (Path(rec.run_dir) / "train.log").read_text().splitlines())
    show = _ganlab("queue", "--db", url, "show", str(failed)).stdout
    error = show.split("\n  error", 1)[1].splitlines()
    assert error[-1].strip() == "RuntimeError: injected failure while building the generator"
    assert not [line for line in error if is_noise(line.strip())]
    failed_log = [line for line in _ganlab("logs", "--db", url, str(failed)).stdout.splitlines() if line]
    assert failed_log[0].startswith("=== ") and failed_log[1] == "Traceback (most recent call last):", failed_log
    assert failed_log[-1].startswith("Error: ") or failed_log[-1].startswith("RuntimeError: injected failure")


def test_logs_bad_input_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    queued = _enqueue(url)
    for args in (["7"], ["7", "-f"]):
        result = _ganlab("logs", "--db", url, *args)
        assert result.exit_code == 1 and result.output.startswith("Error: no experiment 7 in ")
        assert len(result.output.splitlines()) == 1
    for args in ([str(queued)], [str(queued), "-f"]):
        result = _ganlab("logs", "--db", url, *args)
        assert result.exit_code == 1
        assert result.output == f"Error: experiment {queued} has not started yet (status queued); it has no log\n"
    with Queue.open(url) as q:
        claim = q.claim("w", lease_s=60)
        assert claim is not None
        q.set_run_dir(claim.id, claim.token, str(tmp_path / "runs" / "gone"))
    result = _ganlab("logs", "--db", url, str(queued), "-f")
    assert result.exit_code == 1 and result.output.startswith(f"Error: no log at {tmp_path / 'runs' / 'gone'}")
    assert len(result.output.splitlines()) == 1


def _read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline()


def test_follow_prints_lines_as_they_come_and_ctrl_c_leaves_cleanly(tmp_path: Path) -> None:
    """A running row whose log a test writes by hand: -f shows each new line (noise left out), then Ctrl-C."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    exp_id = _enqueue(url)
    run_dir = tmp_path / "runs" / "manual"
    run_dir.mkdir(parents=True)
    log = run_dir / "train.log"
    log.write_text("first\n" + NOISE_LINE + "\n")
    with Queue.open(url) as q:
        claim = q.claim("w", lease_s=600)
        assert claim is not None
        q.set_run_dir(claim.id, claim.token, str(run_dir))
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and so would
    # this child (Python then installs no KeyboardInterrupt handler): give it Ctrl-C as a terminal would.
    follow = subprocess.Popen([sys.executable, "-m", "ganlab", "logs", "--db", url, str(exp_id), "-f"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _read_line(follow) == "first\n"
        with open(log, "a") as fh:
            fh.write(NOISE_LINE + "\nstep 5/")  # a line half written: shown once it is complete
            fh.flush()
            time.sleep(1.0)
            fh.write("10  D 1.000 G 2.000\n")
        assert _read_line(follow) == "step 5/10  D 1.000 G 2.000\n"
        with open(log, "ab") as fb:  # a character split across two writes arrives whole
            fb.write(b"caf\xc3")
            fb.flush()
            time.sleep(1.0)
            fb.write(b"\xa9\n")
        assert _read_line(follow) == "caf\u00e9\n"
        assert follow.poll() is None  # still running: it waits for more
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0 and out == "" and "Traceback" not in err and "Aborted" not in err, err


NOISE_LINE = ("I0000 00:00:1796284017.991050   14440 port.cc:153] oneDNN custom operations are on. You may see "
              "slightly different numerical results due to floating-point round-off errors from different "
              "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.")
