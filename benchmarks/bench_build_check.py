"""What the enqueue-time build check costs ``queue add``: the first check of a build, and a cached one.

In one run, alternating, with the same sweep (dcgan on digits, 4 learning
rates x 2 seeds = 8 experiments, one distinct build):

- ``queue add --dry-run --no-build-check``: the reference, no check at all;
- ``queue add --dry-run`` with an empty build-check cache: the child process
  that imports Keras and builds G and D symbolically;
- ``queue add --dry-run`` again: the outcome read from the cache.

and, in process, ``check_builds`` itself on a cache hit for a 1,000-point
sweep (what a cached check adds to a large add).

    python benchmarks/bench_build_check.py              # ROUNDS=3, writes docs/performance.md
    ROUNDS=5 python benchmarks/bench_build_check.py --no-write
"""

from __future__ import annotations

import argparse
import os
import resource
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

ADD = ["queue", "add", "--db", "bench.db", "--steps", "5", "--set", "lr_g=1e-4,2e-4,3e-4,4e-4", "--seeds", "0,1",
       "--dry-run"]
HEADING = "Build check at enqueue"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(args: list[str], cwd: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``ganlab`` process (CPU includes the build probe it starts)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GANLAB_CACHE_DIR": str(cache), "GANLAB_PLUGINS_DIR": ""}
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ganlab", *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ganlab {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed, _children_cpu() - cpu


def _in_process(cache: Path, points: int) -> tuple[float, int]:
    """``check_builds`` over a ``points``-experiment sweep whose one build is already cached."""
    os.environ["GANLAB_CACHE_DIR"] = str(cache)
    from ganlab.build_check import check_builds
    from ganlab.config import Resolver
    from ganlab.registry import load_plugins
    from ganlab.sweep import Grid, expand

    resolver = Resolver(load_plugins(""))
    grid = Grid(sets={"train.steps": (5,), "train.lr_g": tuple(1e-5 * (i + 1) for i in range(points))})
    configs = [p.config for p in expand(resolver, [grid], max_experiments=points)]
    started = time.perf_counter()
    fresh = check_builds(resolver, configs)
    return time.perf_counter() - started, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md as it is")
    args = parser.parse_args()
    rounds = int(os.environ.get("ROUNDS", "3"))
    reference, first, cached, inproc = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(rounds):
            cache = root / f"cache{r}"
            reference.append(_cli([*ADD, "--no-build-check"], root, cache))
            first.append(_cli(ADD, root, cache))
            cached.append(_cli(ADD, root, cache))
            seconds, fresh = _in_process(cache, 1000)
            assert fresh == 0, "the in-process check missed the cache"
            inproc.append(seconds)
    def med(values: list, i: int | None = None) -> float:
        return statistics.median(v[i] if i is not None else v for v in values)

    rows = []
    for label, runs in (("`queue add --dry-run --no-build-check` (reference)", reference),
                        ("`queue add --dry-run`, first check (empty cache)", first),
                        ("`queue add --dry-run`, cached", cached)):
        rows.append(f"| {label} | {med(runs, 0):.2f} s | {med(runs, 0) / med(reference, 0):.2f} | "
                    f"{med(runs, 1):.2f} s | {med(runs, 1) / med(reference, 1):.2f} |")
    lines = rows
    print("\n".join(lines))
    print(f"check_builds on a cache hit, 1,000-experiment sweep, in process: {med(inproc) * 1000:.1f} ms")
    section = f"""## {HEADING}

`benchmarks/bench_build_check.py`, {machine_description()}; median of {rounds} rounds,
alternating, each a fresh process. The sweep is dcgan on digits, 4 learning
rates x 2 seeds (8 experiments, one distinct build), as a dry run.

| command | wall | vs reference | CPU (with children) | vs reference |
|---|---|---|---|---|
{chr(10).join(lines)}

CPU time moves far less with the shared VM's load than wall time. The first check is a child process that imports Keras (TensorFlow) and
builds both networks symbolically; its cost is that start, paid once per new
build (new architecture file hash, parameter values or data shape). A cached
check reads one small JSON file per distinct build: `check_builds` on a
1,000-experiment sweep whose build is cached takes
{med(inproc) * 1000:.1f} ms in process. `--no-build-check` skips it.
"""
    if not args.no_write:
        print(f"wrote {replace_section(HEADING, section)}")


if __name__ == "__main__":
    main()
