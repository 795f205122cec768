"""Packed seeds: images/s of a pack of K seeds in one compiled step against K separate runs one after another.

The demo's model (``dcgan``, 32 base filters, batch 64, non-saturating loss)
on the digits at 16x16 and 32x32, on Keras's JAX backend. Each measurement is
a fresh process training with ganlab's real loop (data feed, logging;
evaluation, samples and checkpoints only at the end, outside the timed
window): a run alone (``train``) and packs of K (``train_pack``). Throughput
is wall clock between two progress reports after ``WARMUP`` steps (so after
compilation), all members' images counted. K separate runs one after another
train at the rate of one run alone, so the ratio printed is
``pack images/s / alone images/s``.

The last columns say where the time goes: one run alone at batch K x BATCH
(``wide``), and its images/s over the run alone at BATCH. A pack saves the
costs paid once per step (dispatch, the Python loop, reading the losses
back, kernels too small to fill the cores); a wide run saves them too. A
wide ratio near 1x means that a step's cost grows with its images, so
those per-step costs are not what limits throughput on this machine, and
packing has little to gain. On a GPU, where one small batch leaves most of
the device idle, the ratio is large (``WIDE=0`` skips these runs).

    python benchmarks/bench_pack.py                    # K = 1,2,4,8 at 16 and 32
    KS=1,8,32 SIZES=16 STEPS=20 python benchmarks/bench_pack.py

Environment: KS (1,2,4,8), SIZES (16,32), BATCH (64), FILTERS (32), STEPS
(timed steps, 20), WARMUP (5), ROUNDS (1), WIDE (1). The last line printed is JSON
(read by benchmarks/gpu_check.py).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def measure(size: int, k: int, alone: bool, work: Path, wide: bool = False) -> float:
    """Images/s of one process: a run alone (``k`` 1), a pack of ``k`` seeds, or (``wide``) one run at batch ``k`` x BATCH."""
    from ganlab.config import Resolver
    from ganlab.registry import load_plugins
    from ganlab.training import BaseReporter, train
    from ganlab.training.pack_trainer import train_pack

    warmup, steps = int(os.environ.get("WARMUP", "5")), int(os.environ.get("STEPS", "20"))
    batch, filters = int(os.environ.get("BATCH", "64")), int(os.environ.get("FILTERS", "32"))
    total = warmup + steps
    if wide:
        batch, k, alone = batch * k, 1, True
    far = total * 10  # evaluation, samples and checkpoints only at the end, after the timed window
    registry = load_plugins(None)
    resolver = Resolver(registry)
    configs = [resolver.resolve("dcgan", "digits", "non-saturating", {
        "size": size, "base_filters": filters, "batch_size": batch, "steps": total, "seed": seed, "backend": "jax",
        "log_every": 1, "eval_every": far, "sample_every": far, "checkpoint_every": far, "eval_samples": 64,
    }) for seed in range(k)]

    class Clock(BaseReporter):
        def __init__(self) -> None:
            self.at: dict[int, float] = {}

        def on_progress(self, step: int, losses: Any, steps_per_s: float, images_per_s: float) -> None:
            self.at[step] = time.perf_counter()

    clock = Clock()
    if alone:
        train(configs[0], work / "alone", reporter=clock, registry=registry)
    else:
        reporters = [clock] + [BaseReporter() for _ in configs[1:]]
        train_pack(configs, [work / f"m{i}" for i in range(k)], reporters, registry=registry)
    seconds = clock.at[total] - clock.at[warmup]
    return k * batch * steps / seconds


def _child(size: int, k: int, alone: bool, wide: bool = False) -> float:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    with tempfile.TemporaryDirectory(prefix="ganlab-bench-pack-") as tmp:
        proc = subprocess.run([sys.executable, __file__, "--child", str(size), str(k), str(int(alone)), tmp,
                               str(int(wide))],
                              env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"size {size} K {k}: {proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ks, sizes, rounds = _ints("KS", "1,2,4,8"), _ints("SIZES", "16,32"), int(os.environ.get("ROUNDS", "1"))
    results: dict[str, Any] = {"ks": ks, "sizes": sizes, "batch": int(os.environ.get("BATCH", "64")),
                               "steps": int(os.environ.get("STEPS", "20")), "rounds": rounds, "table": []}
    wide_too = os.environ.get("WIDE", "1") == "1"
    print(f"{'size':>5} {'K':>3} {'alone img/s':>12} {'pack img/s':>11} {'ratio':>6}"
          + (f" {'wide img/s':>11} {'wide/alone':>10}" if wide_too else ""), flush=True)
    for size in sizes:
        alone = statistics.median(_child(size, 1, True) for _ in range(rounds))
        for k in ks:
            packed = statistics.median(_child(size, k, False) for _ in range(rounds))
            row = {"size": size, "k": k, "alone": alone, "pack": packed, "ratio": packed / alone}
            line = f"{size:>5} {k:>3} {alone:>12.0f} {packed:>11.0f} {packed / alone:>5.2f}x"
            if wide_too:
                row["wide"] = alone if k == 1 else statistics.median(_child(size, k, True, True) for _ in range(rounds))
                row["wide_ratio"] = row["wide"] / alone
                line += f" {row['wide']:>11.0f} {row['wide_ratio']:>9.2f}x"
            results["table"].append(row)
            print(line, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        size_arg, k_arg, alone_arg, work_arg, wide_arg = sys.argv[2:7]
        print(measure(int(size_arg), int(k_arg), alone_arg == "1", Path(work_arg), wide_arg == "1"))
    else:
        main()
