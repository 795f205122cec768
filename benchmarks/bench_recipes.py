"""Quality recipes on the bundled digits at 32x32 (issue #20): best FD per recipe and seed at a fixed budget.

    python benchmarks/bench_recipes.py                                  # every recipe, seeds 0,1,2, 3,000 steps
    RECIPES=defaults,no-ema SEEDS=0,1,2 STEPS=2500 WORKERS=2 python benchmarks/bench_recipes.py

Every run goes through the user's own path: ``ganlab queue add`` (the default
``dcgan`` on ``digits`` with ``--set size=32``, plus the recipe's options) into
a fresh SQLite queue, then ``ganlab worker --until-empty`` (WORKERS of them at
once; each run gets its share of the cores, so compare wall times only between
rows of one invocation). Best FD is the lowest of the run's evaluations (every
EVAL_EVERY steps, 500 generated against 500 real images; the EMA generator's
where the recipe has one); the floor is the real-vs-real FD of the same
protocol and seed. Prints a Markdown table (recipe x seed -> best FD, its step,
final FD, wall time, floor, ratio) and, last, the same as JSON.

Environment: RECIPES (names below, default all), SEEDS (0,1,2), STEPS (3000),
EVAL_EVERY (250), WORKERS (1), KEEP (a folder to keep the queue and runs in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Recipe name -> the options it adds to ``queue add``. ``defaults`` adds none: today's defaults, which
#: since 2026-12-04 include the generator EMA (``ema=0.999``); ``no-ema`` is the defaults before that.
RECIPES: dict[str, list[str]] = {
    "defaults": [],
    "no-ema": ["--set", "ema=0"],
    "small-data": ["--preset", "small-data"],
    "hinge": ["--loss", "hinge"],
    "wgan-gp": ["--loss", "wgan-gp"],
    "r1": ["--set", "r1_gamma=0.1"],
    "r1-gamma1": ["--set", "r1_gamma=1"],
    "r1-ada": ["--set", "r1_gamma=0.1", "--augment", "ada"],
    "r1-lr-4e-4": ["--set", "r1_gamma=0.1", "--set", "lr_g=4e-4", "--set", "lr_d=4e-4"],  # = small-data since 2026-12-04
    "ada": ["--augment", "ada"],
    "diffaugment": ["--augment", "diffaugment"],
    "lr-1e-4": ["--set", "lr_g=1e-4", "--set", "lr_d=1e-4"],
    "lr-4e-4": ["--set", "lr_g=4e-4", "--set", "lr_d=4e-4"],
    "ttur": ["--set", "lr_g=1e-4", "--set", "lr_d=4e-4"],
}


def _env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _ganlab(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "ganlab", *args], capture_output=True, text=True, env=_env(), cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"ganlab {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def main() -> None:
    names = [n for n in os.environ.get("RECIPES", ",".join(RECIPES)).split(",") if n]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe {unknown[0]!r}; one of: {', '.join(RECIPES)}")
    seeds = os.environ.get("SEEDS", "0,1,2")
    steps, every = int(os.environ.get("STEPS", "3000")), int(os.environ.get("EVAL_EVERY", "250"))
    workers = int(os.environ.get("WORKERS", "1"))
    keep = os.environ.get("KEEP")
    with tempfile.TemporaryDirectory(prefix="ganlab-recipes-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = str(work / "experiments.db")
        # Seed by seed, so that a study cut short still has every recipe on the first seeds.
        for seed, name in [(seed, name) for seed in seeds.split(",") for name in names]:
            _ganlab("queue", "add", "--db", db, "-q", "--arch", "dcgan", "--dataset", "digits", "--set", "size=32",
                    "--seeds", seed, "--steps", str(steps), "--set", f"eval_every={every}",
                    "--set", f"checkpoint_every={every}", "--set", "eval_samples=500", "--tag", f"recipe={name}",
                    "--no-build-check", *RECIPES[name], cwd=work)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_ganlab, args=("worker", "--db", db, "--gpus", "none", "--until-empty",
                                                          "-q", "--runs-dir", str(work / "runs")), kwargs={"cwd": work})
                   for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        table = _rows(db)
    print("| recipe | options | seed | best FD | at step | final FD | wall time | floor | best / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        ratio = f"{r['best_fd'] / r['floor']:.1f}x" if r["best_fd"] and r["floor"] else "-"
        print(f"| {r['recipe']} | `{' '.join(RECIPES.get(r['recipe'], ['?'])) or '(defaults)'}` | {r['seed']} | {_f(r['best_fd'])} | "
              f"{r['best_step']} | {_f(r['final_fd'])} | {r['wall_s']:.0f} s | {_f(r['floor'])} | {ratio} |")
    print(f"all runs: {wall:.0f} s of wall time with {workers} worker(s)")
    print(json.dumps({"steps": steps, "eval_every": every, "workers": workers, "wall_s": wall, "runs": table}))


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _rows(db: str) -> list[dict[str, Any]]:
    from ganlab.store.queue import Queue

    out = []
    with Queue.open(db) as q:
        for r in q.get_many([s.id for s in q.list_experiments()]):
            recipe = next((t.split("=", 1)[1] for t in r.tags if t.startswith("recipe=")), "?")
            metrics = r.metrics or {}  # the trainer's own record: best_fd and the step it was reached at
            wall = (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else float("nan")
            out.append({"recipe": recipe, "seed": r.config.get("train", {}).get("seed"), "status": r.status,
                        "best_fd": metrics.get("best_fd"), "best_step": metrics.get("best_step"),
                        "final_fd": metrics.get("fd"), "floor": metrics.get("fd_floor"),
                        "wall_s": wall, "step": r.step})
    return out


if __name__ == "__main__":
    main()
