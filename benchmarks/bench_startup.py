"""Process start-up: how long a fresh training process takes before its first step.

Every worker child, pre-started process and ``ganlab train`` starts a Python
process that imports Keras. ganlab imports it with JAX (on TensorFlow) and
scikit-learn hidden (ganlab/training/keras_import.py). In the same run, alternating, this
measures:

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


def _seconds(cmd: list[str], backend: str, cwd: Path) -> float:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def measure(backend: str, rounds: int, tmp: Path) -> dict[str, list[float]]:
    py = sys.executable
    lean = f"from ganlab.training.backend import prefer_backend; prefer_backend({backend!r}); import keras"
    programs = {
        "import keras (plain)": [py, "-c", "import keras"],
        "import keras (ganlab)": [py, "-c", lean],
        "ganlab train, Keras imported first": [py, "-c", "import keras, sys; from ganlab.cli import cli; cli(sys.argv[1:])",
                                               *TRAIN, "--backend", backend, "--run-dir", f"{backend}-plain"],
        "ganlab train": [py, "-m", "ganlab", *TRAIN, "--backend", backend, "--run-dir", f"{backend}-lean"],
    }
    times: dict[str, list[float]] = {name: [] for name in programs}
    # The feature net is trained once per dataset: a warm cache keeps that out of every timed run.
    _seconds(programs["ganlab train"][:-1] + [f"{backend}-warm"], backend, tmp)
    for r in range(rounds):
        for name, cmd in programs.items():
            if name.startswith("ganlab train"):
                shutil.rmtree(tmp / cmd[-1], ignore_errors=True)
            times[name].append(_seconds(cmd, backend, tmp))
        print(f"{backend} round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    return times


def write_doc(results: dict[str, dict[str, list[float]]], rounds: int, machine: str) -> Path:
    rows = []
    for backend, times in results.items():
        for reference, ours in (("import keras (plain)", "import keras (ganlab)"),
                                ("ganlab train, Keras imported first", "ganlab train")):
            ref, new = statistics.median(times[reference]), statistics.median(times[ours])
            what = "`import keras`" if ours.startswith("import") else "5-step `ganlab train`, whole process"
            rows.append(f"| {backend} | {what} | {ref:.2f} s | {new:.2f} s | {ref - new:.2f} s | {new / ref:.2f}x |")
    table = "\n".join(rows)
    section = f"""## Process start-up

Measured by `python benchmarks/bench_startup.py` on {machine}; median of {rounds} rounds, the
programs alternating. "Before" imports Keras the plain way (`python -c "import keras"`, or a process
that imports Keras before ganlab); "ganlab" chooses the backend first, which hides JAX (TensorFlow
runs) and scikit-learn while Keras sets itself up ([training.md](training.md#backends)).

| backend | what | before | ganlab | saved | ratio |
|---|---|---|---|---|---|
{table}

Every worker child and pre-started process pays this start once per experiment, so the saving comes
off the worker's idle time when experiments are short and off every `ganlab train`.

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
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("GANLAB_CACHE_DIR", str(Path(tmp) / "cache"))
        for backend in backends:
            results[backend] = measure(backend, rounds, Path(tmp))
    for backend, times in results.items():
        for name, values in times.items():
            print(f"  {backend:10s} {name:36s} median {statistics.median(values):6.2f} s  best {min(values):6.2f} s")
    if not args.no_write:
        print(f"wrote {write_doc(results, rounds, machine).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
