"""Process start-up: how long a fresh training process takes before its first step.

Every worker child, pre-started process and ``ganlab train`` starts a Python
process that imports Keras. ganlab imports it with JAX (on TensorFlow) and
scikit-learn hidden (ganlab/training/keras_import.py; only with the Keras and TensorFlow
series in its ``TESTED`` table, so rerun this after upgrading either). In the same run,
alternating, this measures wall and CPU time of:

- ``import keras`` as a plain program does it (the reference) against ganlab's
  import (choose the backend, then import), per backend;
- a whole 5-step ``ganlab train`` on 8x8 digits, against the same command in a
  process that imported Keras itself before ganlab (so the guard cannot act).

    python benchmarks/bench_startup.py              # ROUNDS=3, writes docs/performance.md
    ROUNDS=5 python benchmarks/bench_startup.py --no-write
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
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

TRAIN = ["train", "--dataset", "digits", "--set", "size=8", "--batch-size", "16", "--steps", "5",
         "--set", "eval_samples=64", "-q"]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seconds(cmd: list[str], backend: str, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run; on a shared VM the CPU time moves far less with the load."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0, _children_cpu_s() - cpu0


Runs = dict[str, list[tuple[float, float]]]  # program -> (wall s, CPU s) per round
PAIRS = (("import keras (plain)", "import keras (ganlab)", "`import keras`"),
         ("ganlab train, Keras imported first", "ganlab train", "5-step `ganlab train`, whole process"))


def measure(backend: str, rounds: int, tmp: Path) -> Runs:
    py = sys.executable
    lean = f"from ganlab.training.backend import prefer_backend; prefer_backend({backend!r}); import keras"
    programs = {
        "import keras (plain)": [py, "-c", "import keras"],
        "import keras (ganlab)": [py, "-c", lean],
        "ganlab train, Keras imported first": [py, "-c", "import keras, sys; from ganlab.cli import cli; cli(sys.argv[1:])",
                                               *TRAIN, "--backend", backend, "--run-dir", f"{backend}-plain"],
        "ganlab train": [py, "-m", "ganlab", *TRAIN, "--backend", backend, "--run-dir", f"{backend}-lean"],
    }
    runs: Runs = {name: [] for name in programs}
    # The feature net is trained once per dataset: a warm cache keeps that out of every timed run.
    _seconds(programs["ganlab train"][:-1] + [f"{backend}-warm"], backend, tmp)
    for r in range(rounds):
        for name, cmd in programs.items():
            if name.startswith("ganlab train"):
                shutil.rmtree(tmp / cmd[-1], ignore_errors=True)
            runs[name].append(_seconds(cmd, backend, tmp))
        print(f"{backend} round {r + 1}/{rounds} (load {os.getloadavg()[0]:.1f}): "
              + ", ".join(f"{k} {v[-1][0]:.2f} s ({v[-1][1]:.2f} s CPU)" for k, v in runs.items()), flush=True)
    return runs


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def summary(runs: Runs) -> list[tuple[str, str, str, str, str, str, str]]:
    """Per pair: what, then before / guarded / saved (paired within each round) for wall and CPU time."""
    rows = []
    for reference, ours, what in PAIRS:
        cells = []
        for i in (0, 1):  # wall, CPU
            ref, new = [x[i] for x in runs[reference]], [x[i] for x in runs[ours]]
            cells += [_spread(ref), _spread(new), _spread([a - b for a, b in zip(ref, new)])]
        rows.append((what, *cells))
    return rows


def write_doc(results: dict[str, Runs], rounds: int, machine: str) -> Path:
    table = "\n".join(f"| {backend} | " + " | ".join(row) + " |"
                      for backend, runs in results.items() for row in summary(runs))
    section = f"""## Process start-up

Measured by `python benchmarks/bench_startup.py` on {machine}; median of {rounds} rounds (lowest-highest),
the programs alternating; "saved" is taken within each round. "Before" imports Keras the plain way
(`python -c "import keras"`, or a process that imports Keras before ganlab); "guarded" chooses the
backend first, which hides JAX (TensorFlow runs) and scikit-learn while Keras sets itself up
([training.md](training.md#backends)). CPU time is the process's user + system time: on a shared
VM it moves far less with the load than the wall time.

| backend | what | before | guarded | saved | before, CPU | guarded, CPU | saved, CPU |
|---|---|---|---|---|---|---|---|
{table}

"""
    return replace_section("Process start-up", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    rounds = int(os.environ.get("ROUNDS", 3))
    machine = machine_description()
    print(f"measured on {machine}", flush=True)
    backends = ["tensorflow"] + (["jax"] if importlib.util.find_spec("jax") else [])
    results: dict[str, Runs] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("GANLAB_CACHE_DIR", str(Path(tmp) / "cache"))
        for backend in backends:
            results[backend] = measure(backend, rounds, Path(tmp))
    for backend, runs in results.items():
        for what, *cells in summary(runs):
            print(f"  {backend:10s} {what}: before / guarded / saved, wall: {' / '.join(cells[:3])}; "
                  f"CPU: {' / '.join(cells[3:])}")
    if not args.no_write:
        print(f"wrote {write_doc(results, rounds, machine).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
