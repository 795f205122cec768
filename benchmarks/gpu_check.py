"""The first thing to run on a machine with a GPU: does ganlab train there, and how fast.

Made for a lent machine with an NVIDIA GPU, JAX with CUDA, no TensorFlow and
no network. Everything runs on Keras's JAX backend; TensorFlow is never
imported. Five stages, each in its own processes and each with a time limit,
so that one failing stage still leaves the others' figures:

1. **environment**: Python, JAX and its devices, Keras, the GPU (nvidia-smi),
   and whether TensorFlow is importable at all (it is not needed).
2. **demo sweep through the worker**: the demo's three losses on the digits,
   queued with ``--backend jax`` and run by ``ganlab worker --gpus 0`` until the
   queue is empty, then read back with ``ganlab compare --json``: status, FD,
   wall time of each run, and the GPU's utilisation and memory while it ran.
3. **training speed**: ``benchmarks/bench_training.py`` with ``BACKEND=jax``,
   float32 and mixed_bfloat16 against a hand-written JAX step in the same run,
   for two pairs: the tutorial's 28x28 DCGAN (``reference_dcgan_jax.py``) and
   the DCGAN paper's 64x64 networks (``PAIR=dcgan64``: the built-in ``dcgan``
   against ``benchmarks/reference_dcgan64_jax.py``).
4. **packed seeds**: ``benchmarks/bench_pack.py``, packs of K = 1, 8, 32 seeds
   of the demo's model at 32x32 in one compiled step, against one run alone.
5. **several runs per GPU**: the demo sweep again with ``worker --per-gpu 4``
   (on ``--cpu``: the worker must refuse the option in one line).

The figures go to ``gpu_check.json`` and ``gpu_check.md`` in ``--out`` (default
``$OUT`` where the device tool sets it, else ``gpu_check_out``), rewritten
after every stage, so a check cut off by a time limit keeps the stages it
finished. ``--stages`` runs some stages only (after the environment probe),
for a machine that allows only a few minutes per command. ``--cpu`` runs
the same stages on the CPU at tiny sizes in a minute or two: the suite runs it
(tests/test_gpu_check.py) so the script is known to work before a GPU is lent.

On a lent machine, from the checkout's root, after ``benchmarks/build_wheelhouse.sh``
here (it fills the git-ignored ``.whl/`` with the wheels that machine lacks and
copies the reference programs beside them)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \\
      && PYTHONPATH=/tmp/site:$PWD GANLAB_REFERENCE_DIR=$PWD/.whl/bench python3 benchmarks/gpu_check.py

Exit status: 0 when every stage passed, 1 otherwise (the report says which).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOSSES = ("non-saturating", "hinge", "wgan-gp")


@dataclass
class Sizes:
    """How big each stage is: the demo's own sizes on a GPU, tiny ones with ``--cpu``."""

    losses: tuple[str, ...]
    steps: int
    batch: int
    sweep_sets: tuple[str, ...]
    bench_env: dict[str, str]
    sweep_timeout_s: int
    bench_timeout_s: int
    pack_env: dict[str, str] = field(default_factory=dict)
    # The pack stage starts two processes more than it used to (the wide runs at K = 8 and 32).
    pack_timeout_s: int = 480
    bench64_env: dict[str, str] = field(default_factory=dict)


# The demo's own settings (ganlab/cli/demo_cmd.py): 16x16 digits, dcgan with 32 base filters.
GPU = Sizes(losses=LOSSES, steps=600, batch=64,
            sweep_sets=("size=16", "base_filters=32", "eval_every=150", "checkpoint_every=150", "sample_every=75",
                        "eval_samples=500"),
            bench_env={"BATCH": "256", "STEPS": "50", "ROUNDS": "3", "PRECISIONS": "float32,mixed_bfloat16"},
            sweep_timeout_s=420, bench_timeout_s=300,
            pack_env={"KS": "1,8,32", "SIZES": "32", "BATCH": "64", "FILTERS": "32", "STEPS": "30", "WARMUP": "5"},
            bench64_env={"BATCH": "128", "STEPS": "30", "ROUNDS": "3", "PRECISIONS": "float32,mixed_bfloat16"})
CPU = Sizes(losses=LOSSES[:1], steps=6, batch=16,
            sweep_sets=("size=16", "base_filters=8", "eval_every=6", "checkpoint_every=6", "sample_every=6",
                        "eval_samples=64"),
            bench_env={"BATCH": "16", "STEPS": "2", "ROUNDS": "1", "PRECISIONS": "float32"},
            sweep_timeout_s=600, bench_timeout_s=600,
            pack_env={"KS": "2", "SIZES": "16", "BATCH": "16", "FILTERS": "8", "STEPS": "2", "WARMUP": "1",
                      "WIDE": "0"},
            bench64_env={"BATCH": "2", "STEPS": "1", "ROUNDS": "1", "PRECISIONS": "float32"})
#: The stages after the environment probe, in the order they run (``--stages`` picks some).
STAGES = ("demo_sweep", "training_speed", "training_speed_64", "pack_speed", "per_gpu")
#: Experiments at once on the GPU in the --per-gpu stage (the demo's three losses all fit at once).
PER_GPU = "4"


class GpuSampler:
    """Polls nvidia-smi in a thread: utilisation and memory of GPU 0 while a stage runs."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self.util: list[float] = []
        self.mem_mib: list[float] = []
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self) -> None:
        while not self._halt.wait(self.every_s):
            line = _smi("utilization.gpu,memory.used")
            try:
                util, mem = (float(x) for x in line.split("\n")[0].split(","))
            except ValueError:
                continue
            self.util.append(util)
            self.mem_mib.append(mem)

    def summary(self) -> dict[str, float] | None:
        if not self.util:
            return None
        busy = [u for u in self.util if u > 0]
        return {"samples": len(self.util), "util_mean_pct": statistics.fmean(self.util),
                "util_mean_busy_pct": statistics.fmean(busy) if busy else 0.0,
                "util_max_pct": max(self.util), "mem_max_mib": max(self.mem_mib)}


def _smi(fields: str) -> str:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def _env() -> dict[str, str]:
    # Children find this checkout's ganlab, use JAX, and say little at start-up.
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH", ""), str(REPO)) if p)
    return dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _run(cmd: list[str], cwd: Path, timeout_s: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout_s)


PROBE = """
import importlib.util, json, keras, jax
devices = jax.devices()
try:
    tensorflow = importlib.util.find_spec("tensorflow") is not None
except ImportError:
    tensorflow = False
print(json.dumps({"jax": jax.__version__, "keras": keras.__version__, "keras_backend": keras.backend.backend(),
                  "devices": [str(d) for d in devices], "platform": devices[0].platform,
                  "tensorflow_importable": tensorflow}))
"""


def environment(work: Path) -> dict[str, Any]:
    """Versions, devices and the GPU, from a child process like the ones that train."""
    proc = _run([sys.executable, "-c", PROBE], work, 300)
    if proc.returncode != 0:
        raise RuntimeError(f"probing JAX and Keras failed: {proc.stderr.strip()[-1500:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    found["python"] = platform.python_version()
    found["gpu"] = _smi("name,memory.total,driver_version") or None
    return found


def demo_sweep(work: Path, sizes: Sizes, gpus: str, per_gpu: str = "1") -> dict[str, Any]:
    """The demo's sweep, queued with the JAX backend and run by the worker; what compare reports."""
    ganlab = [sys.executable, "-m", "ganlab", "--no-local-plugins"]
    work.mkdir(parents=True, exist_ok=True)
    db = str(work / "experiments.db")
    add = [*ganlab, "queue", "add", "--db", db, "--arch", "dcgan", "--dataset", "digits", "--loss", ",".join(sizes.losses),
           "--steps", str(sizes.steps), "--batch-size", str(sizes.batch), "--backend", "jax", "--tag", "gpu-check"]
    for item in sizes.sweep_sets:
        add += ["--set", item]
    queued = _run(add, work, 300)
    if queued.returncode != 0:
        raise RuntimeError(f"queue add failed: {queued.stderr.strip()[-1500:]}")
    started = time.monotonic()
    with GpuSampler() as gpu:
        worker = _run([*ganlab, "worker", "--db", db, "--runs-dir", str(work / "runs"), "--gpus", gpus,
                       "--per-gpu", per_gpu, "--until-empty", "--quiet"], work, sizes.sweep_timeout_s)
    wall = time.monotonic() - started
    rows = json.loads(_run([*ganlab, "compare", "--db", db, "--json", "--status", "succeeded", "--status", "failed",
                            "--status", "diverged", "--status", "running"], work, 120).stdout or "[]")
    runs = [{"name": r["name"], "status": r["status"], "step": r["step"], "fd": r.get("fd"),
             "fd_floor": r.get("fd_floor"), "wall_s": r.get("wall_s")} for r in rows]
    result = {"wall_s": wall, "worker_exit": worker.returncode, "runs": runs, "gpu": gpu.summary(),
              "ok": worker.returncode == 0 and len(runs) == len(sizes.losses)
              and all(r["status"] == "succeeded" for r in runs)}
    if not result["ok"]:
        result["worker_log_tail"] = (worker.stdout + worker.stderr)[-3000:]
        for log in sorted((work / "runs").glob("*/train.log")):
            result.setdefault("train_log_tails", {})[log.parent.name] = log.read_text(errors="replace")[-2000:]
    return result


def training_speed(work: Path, sizes: Sizes, pair: str = "tutorial") -> dict[str, Any]:
    """bench_training.py on the JAX backend: ganlab's images/s against the hand-written JAX step of ``pair``."""
    env = dict(_env(), BACKEND="jax", PAIR=pair, **(sizes.bench64_env if pair == "dcgan64" else sizes.bench_env))
    with GpuSampler() as gpu:
        proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_training.py")], cwd=work, env=env,
                              capture_output=True, text=True, timeout=sizes.bench_timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_training.py failed: {(proc.stdout + proc.stderr).strip()[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"pair": pair, "batch": figures["batch"], "steps": figures["steps"], "rounds": figures["rounds"],
            "summary": figures["summary"], "gpu": gpu.summary(), "ok": True}


def per_gpu_sweep(work: Path, sizes: Sizes, gpus: str) -> dict[str, Any]:
    """The demo's sweep again with ``--per-gpu 4``: its runs share the GPU at once.

    On the CPU (``--cpu``) the worker must refuse the option in one line, which is what is checked there.
    """
    if gpus == "none":
        proc = _run([sys.executable, "-m", "ganlab", "worker", "--db", str(work / "refused.db"), "--gpus", "none",
                     "--per-gpu", PER_GPU, "--until-empty"], work, 300)
        lines = proc.stderr.strip().splitlines()
        refused = proc.returncode != 0 and len(lines) == 1 and lines[0].startswith(f"Error: --per-gpu {PER_GPU} needs a GPU")
        return {"per_gpu": PER_GPU, "refused_on_cpu": refused, "message": proc.stderr.strip()[-500:], "ok": refused}
    return {"per_gpu": PER_GPU, **demo_sweep(work / "per_gpu", sizes, gpus, PER_GPU)}


def pack_speed(work: Path, sizes: Sizes) -> dict[str, Any]:
    """bench_pack.py on the JAX backend: images/s of packs of K seeds against one run alone."""
    env = dict(_env(), **sizes.pack_env)
    with GpuSampler() as gpu:
        proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_pack.py")], cwd=work, env=env,
                              capture_output=True, text=True, timeout=sizes.pack_timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"bench_pack.py failed: {(proc.stdout + proc.stderr).strip()[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"batch": figures["batch"], "steps": figures["steps"], "table": figures["table"], "gpu": gpu.summary(),
            "ok": True}


@dataclass
class Report:
    mode: str
    out: Path | None = None
    stages: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str, fn: Any, *args: Any) -> None:
        started = time.monotonic()
        print(f"[{name}] ...", flush=True)
        try:
            result = fn(*args)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result.setdefault("ok", True)
        result["stage_s"] = round(time.monotonic() - started, 1)
        self.stages[name] = result
        print(f"[{name}] {'ok' if result['ok'] else 'FAILED'} in {result['stage_s']:.0f} s", flush=True)
        self.write()

    def write(self) -> None:
        """The report so far: written after every stage, so a check cut off by a time limit keeps what it measured."""
        if self.out is None:
            return
        (self.out / "gpu_check.json").write_text(json.dumps({"mode": self.mode, "ok": self.ok, **self.stages}, indent=2))
        (self.out / "gpu_check.md").write_text(self.markdown())

    @property
    def ok(self) -> bool:
        return all(s["ok"] for s in self.stages.values())

    def markdown(self) -> str:
        lines = [f"# ganlab GPU check ({self.mode})", ""]
        env = self.stages.get("environment", {})
        if env.get("ok"):
            lines += [f"- Python {env['python']}, JAX {env['jax']} on {env['platform']} ({', '.join(env['devices'])}), "
                      f"Keras {env['keras']}; TensorFlow importable: {env['tensorflow_importable']}",
                      f"- GPU: {env['gpu'] or 'none (nvidia-smi not found)'}", ""]
        sweep = self.stages.get("demo_sweep", {})
        if "runs" in sweep:
            lines += ["## Demo sweep through the worker", "", "| run | status | steps | fd | fd floor | wall s |",
                      "|---|---|---|---|---|---|"]
            for r in sweep["runs"]:
                lines.append(f"| {r['name']} | {r['status']} | {r['step']} | {_num(r['fd'])} | {_num(r['fd_floor'])} "
                             f"| {_num(r['wall_s'])} |")
            lines += ["", f"Whole sweep {sweep['wall_s']:.0f} s; GPU while it ran: {_gpu_text(sweep['gpu'])}", ""]
        for key, title in (("training_speed", "tutorial 28x28"), ("training_speed_64", "DCGAN 64x64")):
            speed = self.stages.get(key, {})
            if "summary" not in speed:
                continue
            lines += [f"## Training speed, {title} (batch {speed['batch']}, {speed['steps']} timed steps, "
                      f"{speed['rounds']} rounds, images/s)", "", "| run | median | best | ratio to reference |",
                      "|---|---|---|---|"]
            for name, s in speed["summary"].items():
                lines.append(f"| {name} | {s['median']:.0f} | {s['best']:.0f} | {s['ratio']:.2f}x |")
            lines += ["", f"GPU while it ran: {_gpu_text(speed['gpu'])}", ""]
        pack = self.stages.get("pack_speed", {})
        if "table" in pack:
            lines += [f"## Packed seeds (batch {pack['batch']} per seed, {pack['steps']} timed steps, images/s)", "",
                      "| size | K | alone | pack | ratio | one run at batch K x B | wide / alone |",
                      "|---|---|---|---|---|---|---|"]
            for r in pack["table"]:
                wide = f"{r['wide']:.0f} | {r['wide_ratio']:.2f}x" if "wide" in r else "- | -"
                lines.append(f"| {r['size']} | {r['k']} | {r['alone']:.0f} | {r['pack']:.0f} | {r['ratio']:.2f}x | {wide} |")
            lines += ["", f"GPU while it ran: {_gpu_text(pack['gpu'])}", ""]
        shared = self.stages.get("per_gpu", {})
        if "runs" in shared:
            alone_s = sweep.get("wall_s")
            ratio = f" ({alone_s / shared['wall_s']:.2f}x the one-at-a-time sweep)" if alone_s else ""
            lines += [f"## --per-gpu {shared['per_gpu']}", "",
                      f"The same sweep, its runs sharing the GPU: {shared['wall_s']:.0f} s{ratio}; "
                      f"all succeeded: {shared['ok']}; GPU while it ran: {_gpu_text(shared['gpu'])}", ""]
        elif "refused_on_cpu" in shared:
            lines += [f"## --per-gpu {shared['per_gpu']}", "", f"Refused on the CPU as it should be: {shared['refused_on_cpu']}", ""]
        for name, stage in self.stages.items():
            if not stage["ok"]:
                lines += [f"**{name} failed**: {stage.get('error', 'see gpu_check.json')}", ""]
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _gpu_text(gpu: dict[str, float] | None) -> str:
    if gpu is None:
        return "not measured (no nvidia-smi)"
    return (f"utilisation mean {gpu['util_mean_pct']:.0f} % (busy samples {gpu['util_mean_busy_pct']:.0f} %, "
            f"max {gpu['util_max_pct']:.0f} %), memory max {gpu['mem_max_mib']:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run every stage on the CPU at tiny sizes (a self-test)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="folder for the report")
    parser.add_argument("--keep", help="work in this new folder and keep it (runs, logs, database)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to run after the environment probe (default all: {','.join(STAGES)})")
    args = parser.parse_args(argv)
    chosen = [s for s in args.stages.split(",") if s]
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        parser.error(f"unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}")
    sizes, gpus = (CPU, "none") if args.cpu else (GPU, "0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(mode="cpu self-test" if args.cpu else "gpu", out=out)
    if args.keep:
        Path(args.keep).mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="ganlab-gpu-check-") as tmp:
        work = Path(args.keep or tmp).resolve()
        report.stage("environment", environment, work)
        if not args.cpu and report.stages["environment"].get("platform") not in ("gpu", "cuda"):
            report.stages["environment"].update(ok=False, error="JAX sees no GPU; run with --cpu for the self-test")
        else:
            runs = {"demo_sweep": (demo_sweep, work, sizes, gpus), "training_speed": (training_speed, work, sizes),
                    "training_speed_64": (training_speed, work, sizes, "dcgan64"), "pack_speed": (pack_speed, work, sizes),
                    "per_gpu": (per_gpu_sweep, work, sizes, gpus)}
            for name in STAGES:
                if name in chosen:
                    report.stage(name, *runs[name])
    report.write()
    print(report.markdown())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
