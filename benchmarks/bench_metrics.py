"""Cost of evaluation: seconds per evaluation of each metric at the default sample count, against the step time.

A default run (``dcgan`` on digits 32x32, batch 64, 1000 steps, ``eval_every``
500, ``eval_samples`` 1000) evaluates twice; this prints, for each metric
alone and for the default and the full set, the seconds to build the backbone
(the feature net from its cache), to score the floor (once per run) and to
score one evaluation (1000 generated images, median of REPEAT), and the share
of a default run's time they take, with the step time measured in the same
run by training the default config with evaluation off.

    python benchmarks/bench_metrics.py
    STEPS=100 REPEAT=5 BACKEND=jax python benchmarks/bench_metrics.py
    WRITE=1 python benchmarks/bench_metrics.py     # also into docs/performance.md

Environment: STEPS (timed training steps, 60), REPEAT (3), SAMPLES (1000), BACKEND (tensorflow).
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
sys.path.insert(0, str(REPO / "benchmarks"))

from perfdoc import cpu_model, replace_section  # noqa: E402

TRAIN = """
import json, sys
from ganlab.config import Resolver
from ganlab.registry import load_plugins
from ganlab.tblog.read import read_scalars
from ganlab.training import train

steps, backend, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sets = {"steps": steps, "backend": backend, "log_every": 10, "eval_every": 10**6, "sample_every": 10**6,
        "checkpoint_every": 10**6}
registry = load_plugins("")
config = Resolver(registry).resolve("dcgan", "digits", "non-saturating", sets)
train_result = train(config, out, registry=registry)
rates = [v for _, v in read_scalars(out)["perf/steps_per_s"]][1:]
print("RESULT " + json.dumps({"status": train_result.status, "rates": rates}))
"""

SCORE = """
import json, statistics, sys, time
import numpy as np
from ganlab.registry import load_plugins
from ganlab.metrics.suite import MetricSuite

sets, samples, repeat = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
registry = load_plugins("")
data = registry.dataset("digits").load({"size": 32})
rng = np.random.default_rng(0)
fake = np.clip(data.images[rng.choice(len(data.images), samples)] / 127.5 - 1 + rng.normal(0, 0.3, (samples, 32, 32, 1)),
               -1, 1).astype(np.float32)
# The feature net cached and the Keras backend started (its first op loads it): neither is per-run evaluation cost.
MetricSuite(data, [registry.metric(n) for n in ("fd", "pr")], n_real=samples).evaluate(fake)
out = {}
for names in sets:
    specs = [registry.metric(n) for n in names.split(",")]
    t0 = time.perf_counter()
    suite = MetricSuite(data, specs, n_real=samples, seed=0)
    t1 = time.perf_counter()
    suite.floor()
    t2 = time.perf_counter()
    evals = []
    for _ in range(repeat):
        t = time.perf_counter()
        suite.evaluate(fake)
        evals.append(time.perf_counter() - t)
    out[names] = {"build": t1 - t0, "floor": t2 - t1, "evaluate": statistics.median(evals)}
print("RESULT " + json.dumps(out))
"""

SETS = ("fd", "kid", "pr", "dc", "fd,kid", "fd,kid,pr,dc")


def child(code: str, *args: str, backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), GANLAB_PLUGINS_DIR="", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"the child failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    steps, repeat = int(os.environ.get("STEPS", 60)), int(os.environ.get("REPEAT", 3))
    samples, backend = int(os.environ.get("SAMPLES", 1000)), os.environ.get("BACKEND", "tensorflow")
    load = os.getloadavg()[0]
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, {backend}, load average {load:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        trained = child(TRAIN, str(steps), backend, f"{tmp}/run", backend=backend)
    step_s = 1.0 / statistics.median(trained["rates"])
    default_steps, every = 1000, 500
    train_s = default_steps * step_s
    print(f"default dcgan step (batch 64, digits 32x32): {step_s * 1000:.1f} ms; 1000 steps: {train_s:.0f} s", flush=True)
    scored = child(SCORE, json.dumps(SETS), str(samples), str(repeat), backend=backend)
    rows = []
    header = (f"| metrics (`train.metrics`) | backbone build (s) | floor (s, once) | per evaluation (s) | "
              f"vs {every} steps | share of a default run |")
    print(header)
    print("|---|---|---|---|---|---|")
    for names, t in scored.items():
        evals = default_steps // every
        spent = t["build"] + t["floor"] + evals * t["evaluate"]
        row = (f"| {names} | {t['build']:.2f} | {t['floor']:.2f} | {t['evaluate']:.2f} | "
               f"{t['evaluate'] / (every * step_s):.1%} | {spent / (train_s + spent):.1%} |")
        print(row, flush=True)
        rows.append(row)
    if os.environ.get("WRITE"):
        section = "\n".join([
            "## Evaluation cost",
            "",
            f"`python benchmarks/bench_metrics.py` ({cpu_model()}, {os.cpu_count()} CPUs, {backend}, load {load:.1f}):",
            f"{samples} generated images against {samples} real ones on digits 32x32, the feature net already cached; "
            f"the step time of the default `dcgan` run (batch 64) measured in the same run: {step_s * 1000:.1f} ms, "
            f"so 1000 steps take {train_s:.0f} s. \"Share of a default run\" counts one backbone build, the floor "
            f"and {default_steps // every} evaluations (at 500 and 1000 steps) against those 1000 steps.",
            "",
            header,
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ])
        print(f"wrote {replace_section('Evaluation cost', section)}")


if __name__ == "__main__":
    main()
