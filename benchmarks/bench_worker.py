"""Worker overhead benchmark (run on demand): how long the worker keeps the machine idle.

    python benchmarks/bench_worker.py              # prints figures, updates docs/performance.md
    python benchmarks/bench_worker.py --no-write

Queues a few short experiments (dcgan on 16x16 digits, a handful of steps), runs
``ganlab worker --until-empty --gpus none`` on them, and reads the times back
from the queue and the runs' own TensorBoard event files:

* claim -> first step: from the claim (the row's ``started_at``) to the wall
  time of the first logged training step;
* idle between experiments: from the last logged step of one experiment to
  the first logged step of the next (child exit, settle, claim, child start,
  framework import, model build and step compilation).

The reference in the same run is a bare ``python -c "import keras"`` with the
default backend: the part of the gap that ganlab cannot remove by scheduling.
Goal: < 3 s idle between experiments.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perfdoc import machine_description, replace_section  # noqa: E402

EXPERIMENTS = 4
SETS = ["--set", "size=16", "--set", "base_filters=16", "--set", "log_every=1", "--set", "eval_every=100000",
        "--set", "checkpoint_every=100000", "--set", "sample_every=100000"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, **kw)


def import_keras_s() -> float:
    t0 = time.perf_counter()
    _run([sys.executable, "-c", "import keras"])
    return time.perf_counter() - t0


def measure(tmp: Path) -> dict[str, list[float]]:
    from ganlab.store.queue import Queue
    from ganlab.tblog.read import load_run

    db = f"sqlite:///{tmp / 'q.db'}"
    ganlab = [sys.executable, "-m", "ganlab"]
    _run([*ganlab, "queue", "--db", db, "add", "-q", "--arch", "dcgan", "--dataset", "digits",
          "--loss", "non-saturating", "--steps", "10", "--batch-size", "32", "--seeds",
          ",".join(str(i) for i in range(EXPERIMENTS)), *SETS], cwd=tmp)
    _run([*ganlab, "worker", "--db", db, "--gpus", "none", "--until-empty", "--poll", "0.5", "-q",
          "--runs-dir", str(tmp / "runs")], cwd=tmp)
    claim_to_first: list[float] = []
    spans: list[tuple[float, float]] = []
    settled: list[float] = []
    with Queue.open(db) as q:
        records = sorted(q.get_many(range(1, EXPERIMENTS + 1)), key=lambda r: r.started_at)
    for rec in records:
        events = load_run(rec.run_dir).Tensors("loss/generator")  # TensorBoard's reader, with wall times
        first, last = events[0].wall_time, events[-1].wall_time
        claim_to_first.append(first - rec.started_at.timestamp())
        spans.append((first, last))
        settled.append(rec.finished_at.timestamp())
    idle = [nxt[0] - prev[1] for prev, nxt in zip(spans, spans[1:])]
    # The same gap without the finishing run's own end work (final evaluation, checkpoint, HParams).
    after_exit = [nxt[0] - done for done, nxt in zip(settled, spans[1:])]
    return {"claim_to_first_step_s": claim_to_first, "idle_between_s": idle, "after_exit_s": after_exit}


def write_doc(figures: dict[str, float], machine: str) -> Path:
    section = f"""## Worker overhead

Measured by `python benchmarks/bench_worker.py` on {machine}: {EXPERIMENTS} experiments
(dcgan on 16x16 digits, 10 steps each) run by one `ganlab worker --gpus none`; times from the queue
and from the runs' event files.

| what | median | max | goal |
|---|---|---|---|
| claim -> first training step | {figures['claim_med']:.2f} s | {figures['claim_max']:.2f} s | |
| idle between experiments (last step -> next first step) | {figures['idle_med']:.2f} s | {figures['idle_max']:.2f} s | < 3 s |
| of which after the finished child was settled (-> next first step) | {figures['exit_med']:.2f} s | {figures['exit_max']:.2f} s | |
| reference: `python -c "import keras"` (TensorFlow backend) | {figures['import_keras']:.2f} s | | |

The goal is missed. The gap is the finishing run's end work (final evaluation on its samples, last
checkpoint, HParams status) followed by a fresh child process starting its framework (the reference
row), loading the data, building the models and compiling the step; the worker's own share (noticing
the exit, settling, claiming, spawning) is a fraction of a second. Each experiment gets a fresh process
on purpose, so a crash or a leaked GPU allocation in one cannot reach the next; closing the gap means
starting the next child (framework imported, waiting for its experiment) while the current one trains.

"""
    return replace_section("Worker overhead", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    machine = machine_description()
    reference = statistics.median(import_keras_s() for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        m = measure(Path(tmp))
    figures = {
        "claim_med": statistics.median(m["claim_to_first_step_s"]), "claim_max": max(m["claim_to_first_step_s"]),
        "idle_med": statistics.median(m["idle_between_s"]), "idle_max": max(m["idle_between_s"]),
        "import_keras": reference,
        "exit_med": statistics.median(m["after_exit_s"]), "exit_max": max(m["after_exit_s"]),
    }
    print(f"claim -> first step: median {figures['claim_med']:.2f} s, max {figures['claim_max']:.2f} s")
    print(f"settled -> next first step: median {figures['exit_med']:.2f} s")
    print(f"idle between experiments: median {figures['idle_med']:.2f} s, max {figures['idle_max']:.2f} s "
          f"(goal < 3 s); ratio to a bare 'import keras' ({reference:.2f} s): {figures['idle_med'] / reference:.2f}x")
    if not args.no_write:
        print(f"wrote {write_doc(figures, machine).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
