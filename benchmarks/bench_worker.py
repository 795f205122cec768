"""Worker overhead benchmark (run on demand): how long the worker keeps the machine idle.

    python benchmarks/bench_worker.py              # prints figures, updates docs/performance.md
    python benchmarks/bench_worker.py --no-write

Three scenarios, each queueing a few experiments (dcgan on 16x16 digits) for
``ganlab worker --until-empty --gpus none``: with prestart (the default) and
1,500-step experiments (several seconds of training each), with prestart and
10-step experiments, and with
``--no-prestart``. Times come from the queue and the runs' own TensorBoard
event files:

* claim -> first step: from the claim (the row's ``started_at``) to the wall
  time of the first logged training step;
* idle between experiments: from the last logged step of one experiment to
  the first logged step of the next.

The reference in the same run is a bare ``python -c "import keras"`` with the
default backend: what every fresh process pays before it can do anything.
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
LONG_STEPS = 1500
SETS = ["--set", "size=16", "--set", "base_filters=16", "--set", "log_every=1", "--set", "eval_every=100000",
        "--set", "checkpoint_every=100000", "--set", "sample_every=100000"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, **kw)


def import_keras_s() -> float:
    t0 = time.perf_counter()
    _run([sys.executable, "-c", "import keras"])
    return time.perf_counter() - t0


def measure(tmp: Path, steps: int, *worker_args: str) -> dict[str, list[float]]:
    from ganlab.store.queue import Queue
    from ganlab.tblog.read import load_run

    tmp.mkdir(parents=True)
    db = f"sqlite:///{tmp / 'q.db'}"
    ganlab = [sys.executable, "-m", "ganlab"]
    _run([*ganlab, "queue", "--db", db, "add", "-q", "--arch", "dcgan", "--dataset", "digits",
          "--loss", "non-saturating", "--steps", str(steps), "--batch-size", "32", "--seeds",
          ",".join(str(i) for i in range(EXPERIMENTS)), *SETS], cwd=tmp)
    _run([*ganlab, "worker", "--db", db, "--gpus", "none", "--until-empty", "--poll", "0.5", "-q",
          "--runs-dir", str(tmp / "runs"), *worker_args], cwd=tmp)
    claim_to_first: list[float] = []
    spans: list[tuple[float, float]] = []
    with Queue.open(db) as q:
        records = sorted(q.get_many(range(1, EXPERIMENTS + 1)), key=lambda r: r.started_at)
    for rec in records:
        events = load_run(rec.run_dir).Tensors("loss/generator")  # TensorBoard's reader, with wall times
        first, last = events[0].wall_time, events[-1].wall_time
        claim_to_first.append(first - rec.started_at.timestamp())
        spans.append((first, last))
    idle = [nxt[0] - prev[1] for prev, nxt in zip(spans, spans[1:])]
    training = [last - first for first, last in spans]
    return {"claim_to_first_step_s": claim_to_first, "idle_between_s": idle, "training_s": training}


SCENARIOS = (
    # (key, label, steps, worker options)
    ("long", f"prestart (default), {LONG_STEPS:,}-step experiments", LONG_STEPS, ()),
    ("short", "prestart (default), 10-step experiments (shorter than a standby's warm-up)", 10, ()),
    ("off", "--no-prestart (a fresh process per experiment, started when the slot frees)", 10, ("--no-prestart",)),
)


def write_doc(results: dict[str, dict[str, list[float]]], reference: float, machine: str) -> Path:
    rows = []
    for key, label, _, _ in SCENARIOS:
        r = results[key]
        rows.append(
            f"| {label} | {statistics.median(r['training_s']):.2f} s | "
            f"{statistics.median(r['claim_to_first_step_s']):.2f} s | "
            f"{statistics.median(r['idle_between_s']):.2f} s | {max(r['idle_between_s']):.2f} s |"
        )
    table = "\n".join(rows)
    section = f"""## Worker overhead

Measured by `python benchmarks/bench_worker.py` on {machine}: in each scenario {EXPERIMENTS}
experiments (dcgan on 16x16 digits, batch 32) run by one `ganlab worker --gpus none`; times from the
queue and from the runs' event files. Idle = from the last logged step of one experiment to the first
logged step of the next. Goal: < 3 s idle between experiments.

| scenario | training per experiment | claim -> first step (median) | idle between (median) | idle (max) |
|---|---|---|---|---|
{table}

Reference in the same run: a bare `python -c "import keras"` (TensorFlow backend) takes {reference:.2f} s.

With prestart, the worker starts each slot's next process as soon as the current experiment trains:
it imports Keras and its backend and rehearses one step of a tiny GAN, then waits. When the current
experiment's last step is logged, the worker claims the next experiment and hands it to that process,
so its data loading, model building and step compilation overlap the finishing run's final
evaluation and checkpoint. Experiments shorter than the warm-up (the 10-step row) find the next
process still warming up and wait for part of it; without prestart every experiment pays the whole
start-up after the previous one has exited.

"""
    return replace_section("Worker overhead", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    machine = machine_description()
    reference = statistics.median(import_keras_s() for _ in range(3))
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, label, steps, worker_args in SCENARIOS:
            r = results[key] = measure(Path(tmp) / key, steps, *worker_args)
            print(f"{label}: training {statistics.median(r['training_s']):.1f} s, claim -> first step median "
                  f"{statistics.median(r['claim_to_first_step_s']):.2f} s, idle between experiments median "
                  f"{statistics.median(r['idle_between_s']):.2f} s, max {max(r['idle_between_s']):.2f} s (goal < 3 s); "
                  f"each: {', '.join(f'{x:.2f}' for x in r['idle_between_s'])} s")
    off = statistics.median(results["off"]["idle_between_s"])
    for key in ("long", "short"):
        print(f"idle ratio {key} / no-prestart: {statistics.median(results[key]['idle_between_s']) / off:.2f}x; "
              f"reference 'import keras' {reference:.2f} s")
    if not args.no_write:
        print(f"wrote {write_doc(results, reference, machine).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
