"""A worker's child, ``python -m ganlab.worker.child_main``: its job in, its events and one result out.

Real processes and real (tiny) Keras runs: the child reads its job from
stdin, trains through the same entry as ``ganlab train`` and reports every
ending, even one before training, as a result event. Neither it nor the
worker ever imports the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_worker import PLUGINS, enqueue, record

from ganlab.config import Resolver
from ganlab.registry import load_plugins
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.report import EXIT_CODES
from ganlab.training.report_pipe import ReportReader
from ganlab.training.run_dir import LEGACY_CONFIG, RunDir
from ganlab.worker.child import child_env

REPO = Path(__file__).resolve().parents[1]
WORKER_MODULES = ("loop", "child", "child_main", "standby", "outcome", "display", "gpus", "lifeline")
# Runs the child as the worker does, then says on stderr whether anything of ganlab.cli was imported.
CHILD = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('cli imported:', any(m.split('.')[:2] == ['ganlab', 'cli'] for m in sys.modules),"
    " file=sys.stderr, flush=True))\n"
    "import runpy\n"
    "runpy.run_module('ganlab.worker.child_main', run_name='__main__')\n"
)


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def _config(steps: int = 6) -> dict:
    return Resolver(load_plugins(None)).resolve("dcgan", "digits", "non-saturating", {
        "steps": steps, "batch_size": 16, "size": 8, "base_filters": 8, "latent_dim": 8, "eval_samples": 64,
        "log_every": 1, "eval_every": 3, "checkpoint_every": 3, "sample_every": 100, "seed": 5,
    }).to_dict()


class _Child:
    """A child started as the worker starts one: job on stdin, output to the run's log, reports on a pipe."""

    def __init__(self, run_dir: Path, **job: object) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunDir(run_dir).log_file
        read_fd, write_fd = os.pipe()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD], cwd=REPO, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=[write_fd], env={**child_env(None, "tensorflow"), "PYTHONPATH": str(REPO)})
        os.close(write_fd)
        line = {"id": 1, "run_dir": str(run_dir), "plugins_dir": None, "pins": [], **job, "report_fd": write_fd}
        self.process.stdin.write((json.dumps(line) + "\n").encode())
        self.process.stdin.close()
        self.reader = ReportReader(read_fd)
        self.events: list[dict] = []

    def until(self, predicate, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            assert time.monotonic() < deadline and self.process.poll() is None, self.log.read_text()[-3000:]
            self.events += self.reader.read()
            time.sleep(0.05)

    def wait(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        while not self.reader.closed:
            self.events += self.reader.read()
        self.reader.close()
        return code


def test_worker_modules_import_no_cli_in_a_fresh_interpreter():
    code = ("import sys\n"
            + "".join(f"import ganlab.worker.{m}\n" for m in WORKER_MODULES)
            + "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['ganlab', 'cli'] or m == 'click'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_child_trains_its_job_reports_the_result_and_never_imports_the_cli(tmp_path):
    child = _Child(tmp_path / "run", config=_config())
    assert child.wait() == EXIT_CODES["succeeded"], child.log.read_text()
    kinds = [e["event"] for e in child.events]
    assert kinds[0] == "start" and "progress" in kinds and "checkpoint" in kinds and kinds[-1] == "result"
    assert [e for e in child.events if e["event"] == "result"] == [child.events[-1]]
    result = child.events[-1]
    assert result["status"] == "succeeded" and result["step"] == 6 and "best_fd" in result["metrics"]
    log = child.log.read_text()
    assert "succeeded at step 6" in log and "cli imported: False" in log
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == _config()


def test_sigterm_checkpoints_then_the_result_says_stopped(tmp_path):
    child = _Child(tmp_path / "run", config=_config(steps=1_000_000))
    child.until(lambda events: any(e["event"] == "progress" for e in events))
    child.process.send_signal(signal.SIGTERM)
    assert child.wait() == EXIT_CODES["released"], child.log.read_text()[-3000:]
    step = child.events[-1]["step"]
    assert child.events[-1]["status"] == "released" and step > 0
    assert child.events[-2] == {"event": "checkpoint", "step": step}
    assert load_checkpoint(RunDir(tmp_path / "run").checkpoint("latest"))[1]["step"] == step
    assert f"stopped on SIGTERM at step {step}, checkpoint written" in child.log.read_text()


def test_resuming_a_run_dir_of_an_older_worker_drops_its_experiment_json(tmp_path):
    run_dir = tmp_path / "0001-old"
    first = _Child(run_dir, config=_config())
    assert first.wait() == 0, first.log.read_text()
    # What an older worker left beside config.json: the same config, handed over in a second file.
    (run_dir / LEGACY_CONFIG).write_text(json.dumps(_config(), indent=2))
    again = _Child(run_dir, config=_config())
    assert again.wait() == 0, again.log.read_text()
    assert again.events[-1]["status"] == "succeeded" and again.events[-1]["step"] == 6
    assert "already complete at step 6" in again.log.read_text()
    assert not (run_dir / LEGACY_CONFIG).exists()
    assert RunDir(run_dir).load_config().to_dict() == _config()


@pytest.mark.parametrize("job, status, kind, said", [
    (lambda: {"config": {"architecture": "dcgan"}}, "failed", "error",
     "experiment 1's queued config is not a ganlab config"),
    (lambda: {"config": _config(), "pins": ["malformed"]}, "refused", "error",
     "the experiment's record of its plugin files is malformed"),
    (lambda: {"config": {**_config(), "architecture": {"name": "nowhere", "params": {}}}}, "failed", "error",
     "'nowhere'"),
])
def test_a_child_that_cannot_start_says_why_in_its_result(tmp_path, job, status, kind, said):
    child = _Child(tmp_path / "run", **job())
    assert child.wait() == EXIT_CODES[status], child.log.read_text()
    assert len(child.events) == 1, child.events
    result = child.events[0]
    assert (result["status"], result["stage"], result["kind"]) == (status, "start", kind)
    assert said in result["error"] and "\n" not in result["error"]
    assert f"Error: {result['error']}" in child.log.read_text()
    assert not (tmp_path / "run" / "config.json").exists()  # nothing of a run was written


def test_a_worker_run_never_imports_the_cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    [exp_id] = enqueue(url, "--steps", "5")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from ganlab.store.queue import Queue\nfrom ganlab.worker.loop import Worker, WorkerOptions\n"
        f"with Queue.open({url!r}) as queue:\n"
        f"    Worker(queue, WorkerOptions(runs_root=Path({str(tmp_path / 'runs')!r}), poll_s=0.3, until_empty=True,"
        f" plugins_dir={str(PLUGINS)!r})).run()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['ganlab', 'cli']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    rec = record(url, exp_id)
    assert rec.status == "succeeded", rec.error
    assert "succeeded at step 5" in (Path(rec.run_dir) / "train.log").read_text()
    # The config once per run dir: config.json, no second copy handed over beside it.
    assert (Path(rec.run_dir) / "config.json").is_file() and not (Path(rec.run_dir) / LEGACY_CONFIG).exists()
