"""Training speed with each built-in augmentation, against none, on the demo's digits config.

Trains dcgan on digits 16x16 (``base_filters`` 32, the ``ganlab demo`` config)
for STEPS steps per augmentation, in a fresh subprocess each, alternating
augmentations over ROUNDS rounds, and prints the median steps/s of each (the
``perf/steps_per_s`` scalars past the first log, which holds compilation) and
its ratio to ``none`` measured in the same round. ADA runs at a fixed
``p = 1`` (every transform on every image): its most expensive setting.

    python benchmarks/bench_augment.py
    STEPS=300 ROUNDS=3 BACKEND=jax python benchmarks/bench_augment.py

Environment: STEPS (200), ROUNDS (2), BATCH (64), BACKEND (tensorflow).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
from ganlab.config import Resolver
from ganlab.registry import load_plugins
from ganlab.tblog.read import read_scalars
from ganlab.training import train

augment, steps, batch, backend, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
sets = {"size": 16, "base_filters": 32, "steps": steps, "batch_size": batch, "backend": backend, "log_every": 25,
        "eval_every": 10**6, "sample_every": 10**6, "checkpoint_every": 10**6, "eval_samples": 100}
if augment == "ada":
    sets.update({"augment.p_init": 1.0, "augment.adaptive": False})
registry = load_plugins("")
config = Resolver(registry).resolve("dcgan", "digits", "non-saturating", sets, augment)
result = train(config, out, registry=registry)
rates = [v for _, v in read_scalars(out)["perf/steps_per_s"]][1:]
print("RESULT " + json.dumps({"status": result.status, "rates": rates}))
"""

AUGMENTS = ("none", "diffaugment", "ada")


def run(augment: str, steps: int, batch: int, backend: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), GANLAB_PLUGINS_DIR="")
        proc = subprocess.run([sys.executable, "-c", CHILD, augment, str(steps), str(batch), backend, f"{tmp}/run"],
                              env=env, capture_output=True, text=True, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"{augment}: the training run failed:\n{proc.stderr[-2000:]}")
        return statistics.median(json.loads(line[len("RESULT "):])["rates"])


def main() -> None:
    steps, rounds = int(os.environ.get("STEPS", 200)), int(os.environ.get("ROUNDS", 2))
    batch, backend = int(os.environ.get("BATCH", 64)), os.environ.get("BACKEND", "tensorflow")
    print(f"dcgan on digits 16x16, batch {batch}, {steps} steps, {backend}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    ratios: dict[str, list[float]] = {a: [] for a in AUGMENTS}
    rates: dict[str, list[float]] = {a: [] for a in AUGMENTS}
    for r in range(rounds):
        got = {a: run(a, steps, batch, backend) for a in AUGMENTS}
        for a in AUGMENTS:
            rates[a].append(got[a])
            ratios[a].append(got[a] / got["none"])
        print(f"round {r + 1}: " + "  ".join(f"{a} {got[a]:.1f} steps/s" for a in AUGMENTS), flush=True)
    print(f"{'augmentation':<14}{'steps/s (median)':>18}{'vs none':>10}")
    for a in AUGMENTS:
        print(f"{a:<14}{statistics.median(rates[a]):>18.1f}{statistics.median(ratios[a]):>10.2f}")


if __name__ == "__main__":
    main()
