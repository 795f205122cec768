"""GAN-aware stops and ``queue extend`` through the real worker: real processes, a real SQLite queue.

One worker runs a run whose generator never learns (it stops on patience) and
a short healthy one; the healthy one is then extended and a second worker
continues it in the same run dir, so its step counter and its TensorBoard run
go on where they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganlab.cli import cli
from ganlab.store.queue import Queue
from ganlab.tblog.read import read_scalars, read_text

PLUGINS = Path(__file__).resolve().parent / "training_plugins"
TINY = ["--arch", "tiny", "--dataset", "tiny-bars", "--loss", "non-saturating", "--batch-size", "16",
        "--set", "latent_dim=8", "--set", "eval_samples=128", "--set", "log_every=1", "--set", "sample_every=100"]


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def ganlab(*args: str):
    result = CliRunner().invoke(cli, ["--plugins-dir", str(PLUGINS), *args])
    assert result.exit_code == 0, result.output
    return result


def enqueue(url: str, *args: str) -> int:
    return int(ganlab("queue", "--db", url, "add", "-q", "--no-build-check", *TINY, *args).stdout)


def work(url: str, runs: Path) -> str:
    cmd = [sys.executable, "-m", "ganlab", "--plugins-dir", str(PLUGINS), "worker", "--db", url,
           "--runs-dir", str(runs), "--gpus", "none", "--poll", "0.3", "--until-empty", "--no-prestart"]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    return done.stdout


def record(url: str, exp_id: int):
    with Queue.open(url) as q:
        return q.get(exp_id)


def test_a_stop_is_recorded_and_an_extended_run_continues_its_counter_and_tensorboard_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    runs = tmp_path / "runs"
    stuck = enqueue(url, "--name", "stuck", "--steps", "40", "--set", "frozen_g=true", "--set", "eval_every=2",
                    "--set", "checkpoint_every=100", "--set", "patience=2")
    healthy = enqueue(url, "--name", "healthy", "--steps", "6", "--set", "eval_every=3", "--set", "checkpoint_every=3")
    out = work(url, runs)

    rec = record(url, stuck)
    assert (rec.status, rec.step) == ("stopped", 6), (rec.error, out)
    assert rec.stop_reason.startswith("no fd improvement in 2 evaluations (best ") and rec.metrics["fd"] > 0
    assert f"#{stuck} stuck: stopped at step 6: {rec.stop_reason}" in out
    shown = ganlab("queue", "show", "--db", url, str(stuck)).stdout
    assert f"stop reason {rec.stop_reason}" in " ".join(shown.split())
    compared = {r["id"]: r for r in json.loads(ganlab("compare", "--db", url, "--json").stdout)}
    assert compared[stuck]["stop_reason"] == rec.stop_reason and compared[healthy]["stop_reason"] is None
    assert "stopped: no fd improvement" in ganlab("compare", "--db", url).stdout
    assert read_text(rec.run_dir)["stop_reason"] == [(6, f"stopped at step 6: {rec.stop_reason}")]

    first = record(url, healthy)
    assert (first.status, first.step) == ("succeeded", 6), (first.error, out)
    extended = ganlab("queue", "extend", "--db", url, str(healthy), "--steps", "10").stdout
    assert f"extended {healthy} from 6 to 10 steps; queued, resumes from step 6 in {first.run_dir}" in extended
    # The extended config is the one duplicate detection now knows: the same config with 10 steps is a copy of it.
    dry = ganlab("queue", "--db", url, "add", "--dry-run", "--no-build-check", *TINY, "--name", "healthy",
                 "--steps", "10", "--set", "eval_every=3", "--set", "checkpoint_every=3").stdout
    assert f"same config as experiment {healthy} (queued)" in dry

    out = work(url, runs)
    rec = record(url, healthy)
    assert (rec.status, rec.step, rec.total_steps, rec.run_dir, rec.id) == ("succeeded", 10, 10, first.run_dir, healthy)
    assert f"#{healthy} healthy: resumed from its checkpoint at step 6" in out
    scalars = read_scalars(rec.run_dir)
    # One TensorBoard run: every step once, the counter going on from 6, the evaluations of both attempts.
    assert [s for s, _ in scalars["loss/generator"]] == list(range(1, 11))
    assert [s for s, _ in scalars["metrics/fd"]] == [3, 6, 9, 10]
    assert list(Path(rec.run_dir).glob("events.out.tfevents.*")) and not list(runs.glob(f"{healthy:04d}-*-*"))
    assert len(list(runs.iterdir())) == 2
