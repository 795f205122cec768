"""Search benchmark (run on demand): a full grid against TPE with ASHA pruning, on the same space.

    python benchmarks/bench_search.py              # prints figures, updates docs/performance.md
    python benchmarks/bench_search.py --no-write --steps 300

dcgan on the bundled digits at 16x16, one ``ganlab worker --gpus none`` per
search, the two searches one after the other on the same machine:

* grid: 16 points (lr_g x lr_d x base_filters = 4 x 2 x 2), each trained to
  its last step;
* ``--search tpe --trials 16 --prune asha`` over the ranges those points span
  (``lr_g=log(...)``, ``lr_d=log(...)``, ``base_filters=int(...)``).

Reported per search: the best final FD a finished run reached, the training
seconds spent (the sum over runs of claim to end, process start-up
included: what a worker slot was busy with), the steps trained, and the
wall time. Goal (issue #15): TPE+ASHA reaches the grid's best FD or better
in <= 50 % of the grid's seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perfdoc import machine_description, replace_section  # noqa: E402

LR_G = (5e-5, 1.5e-4, 4.5e-4, 1.35e-3)
LR_D = (1e-4, 5e-4)
FILTERS = (8, 32)
COMMON = ["--arch", "dcgan", "--dataset", "digits", "--loss", "non-saturating", "--batch-size", "32",
          "--set", "size=16", "--set", "eval_samples=500", "--set", "sample_every=100000", "--no-build-check"]


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=cwd)


def search(tmp: Path, how: str, steps: int, eval_every: int, trials: int) -> dict[str, float]:
    """Queue one search, run it with one worker, read back what it cost and found."""
    from ganlab.store.queue import Queue

    tmp.mkdir(parents=True)
    db = f"sqlite:///{tmp / 'q.db'}"
    ganlab = [sys.executable, "-m", "ganlab"]
    every = ["--steps", str(steps), "--set", f"eval_every={eval_every}", "--set", f"checkpoint_every={eval_every}"]
    if how == "grid":
        space = ["--set", "lr_g=" + ",".join(map(str, LR_G)), "--set", "lr_d=" + ",".join(map(str, LR_D)),
                 "--set", "base_filters=" + ",".join(map(str, FILTERS))]
    else:
        space = ["--set", f"lr_g=log({LR_G[0]},{LR_G[-1]})", "--set", f"lr_d=log({LR_D[0]},{LR_D[-1]})",
                 "--set", f"base_filters=int({FILTERS[0]},{FILTERS[-1]})",
                 "--search", "tpe", "--trials", str(trials), "--prune", "asha", "--study", "bench"]
    _run([*ganlab, "queue", "--db", db, "add", "-q", *COMMON, *every, *space], tmp)
    t0 = time.perf_counter()
    _run([*ganlab, "worker", "--db", db, "--gpus", "none", "--until-empty", "--poll", "0.5", "-q",
          "--runs-dir", str(tmp / "runs")], tmp)
    wall = time.perf_counter() - t0
    with Queue.open(db) as q:
        records = q.get_many([s.id for s in q.list_experiments()])
    finished = [r for r in records if r.status == "succeeded" and (r.metrics or {}).get("fd") is not None]
    return {
        "runs": len(records),
        "pruned": sum(r.status == "pruned" for r in records),
        "failed": sum(r.status not in ("succeeded", "pruned") for r in records),
        "best_fd": min(float(r.metrics["fd"]) for r in finished) if finished else float("nan"),
        "seconds": sum((r.finished_at - r.started_at).total_seconds() for r in records
                       if r.finished_at and r.started_at),
        "steps": sum(r.step for r in records),
        "wall": wall,
    }


def write_doc(grid: dict[str, float], tpe: dict[str, float], steps: int, eval_every: int, machine: str) -> Path:
    ratio = tpe["seconds"] / grid["seconds"]
    verdict = "reached" if tpe["best_fd"] <= grid["best_fd"] else "did not reach"
    section = f"""## Search: TPE with ASHA vs a full grid

Measured by `python benchmarks/bench_search.py` on {machine}: dcgan on 16x16 digits (batch 32,
{steps} steps, an FD evaluation every {eval_every} steps on 500 samples), one `ganlab worker --gpus none`
per search, the two searches one after the other. Seconds = the sum over runs of claim to end
(process start-up included).

| search | runs | pruned | best final FD | training seconds | steps trained | wall |
|---|---|---|---|---|---|---|
| grid, 16 points trained to the end | {grid['runs']:.0f} | {grid['pruned']:.0f} | {grid['best_fd']:.2f} | {grid['seconds']:.0f} s | {grid['steps']:,.0f} | {grid['wall']:.0f} s |
| `--search tpe --trials 16 --prune asha` | {tpe['runs']:.0f} | {tpe['pruned']:.0f} | {tpe['best_fd']:.2f} | {tpe['seconds']:.0f} s | {tpe['steps']:,.0f} | {tpe['wall']:.0f} s |

TPE+ASHA {verdict} the grid's best FD, in {ratio:.0%} of the grid's seconds (goal: as good, in <= 50 %).
Space: lr_g in [{LR_G[0]:g}, {LR_G[-1]:g}] (log), lr_d in [{LR_D[0]:g}, {LR_D[-1]:g}] (log), base_filters in
[{FILTERS[0]}, {FILTERS[-1]}]; the grid takes 4 x 2 x 2 points of it. One run per search: FD on 16x16 digits after a
few hundred steps is noisy, so a single comparison says little about small differences.

"""
    return replace_section("Search: TPE with ASHA vs a full grid", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=900, help="steps of a full-length run (default 900)")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between evaluations (default 100)")
    parser.add_argument("--trials", type=int, default=16, help="the TPE budget (default 16)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    machine = machine_description()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for how in ("grid", "tpe"):
            print(f"{how}: running ...", flush=True)
            r = results[how] = search(Path(tmp) / how, how, args.steps, args.eval_every, args.trials)
            print(f"{how}: {r['runs']:.0f} runs ({r['pruned']:.0f} pruned, {r['failed']:.0f} other), best final FD "
                  f"{r['best_fd']:.2f}, {r['seconds']:.0f} s of training, {r['steps']:,.0f} steps, wall {r['wall']:.0f} s",
                  flush=True)
    ratio = results["tpe"]["seconds"] / results["grid"]["seconds"]
    print(f"tpe+asha / grid seconds: {ratio:.2f} (goal <= 0.50); best FD {results['tpe']['best_fd']:.2f} vs "
          f"{results['grid']['best_fd']:.2f}")
    if not args.no_write:
        print(f"wrote {write_doc(results['grid'], results['tpe'], args.steps, args.eval_every, machine)}")


if __name__ == "__main__":
    main()
