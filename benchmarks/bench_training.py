"""Training speed: ganlab against the hand-written DCGAN tutorial step (TensorFlow, or JAX with BACKEND=jax).

Runs ``../shared/bench/reference_dcgan.py`` and ganlab's training of the same
networks (a ``tutorial-dcgan`` architecture registered here only, matching the
reference layer for layer), same loss, optimiser and batch size, in separate
subprocesses, alternating, and prints images/s of each and the ratios.

ganlab runs with its logging (scalars every ``LOG_EVERY`` steps) and a
checkpoint inside the timed window; its images/s is measured by wall clock
between two progress reports, after ``LOG_EVERY`` warm-up steps (the
reference warms up for 3). Unlike the reference, which reuses one random
batch on the device, ganlab feeds a new batch of real 28x28 digits every step.

    python benchmarks/bench_training.py                 # float32, mixed_bfloat16
    BATCH=256 STEPS=20 ROUNDS=3 XLA=1 python benchmarks/bench_training.py

Environment: BATCH (256), STEPS (timed steps, 10), ROUNDS (2),
PRECISIONS (float32,mixed_bfloat16), XLA (0; 1 adds jit_compile runs),
BACKEND (tensorflow; jax compares with ``reference_dcgan_jax.py``, and needs
no TensorFlow), GANLAB_REFERENCE_DIR (where the reference programs are),
PAIR (tutorial: the shared 28x28 references above; dcgan64: the DCGAN paper's
64x64 networks, ganlab's built-in ``dcgan`` against this folder's own
``reference_dcgan64_jax.py``, JAX only, BATCH 128 by default).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # perfdoc reads the CPU's flags through ganlab.training.precision
sys.path.insert(0, str(REPO / "benchmarks"))

from perfdoc import machine_description  # noqa: E402

# The hand-written reference programs: ../shared/bench beside the checkout, or where GANLAB_REFERENCE_DIR
# says (a machine that gets only the checkout, such as a lent GPU, gets them in a carried folder).
REFERENCE_DIR = Path(os.environ.get("GANLAB_REFERENCE_DIR") or REPO.parent / "shared" / "bench")
REFERENCES = {"tensorflow": "reference_dcgan.py", "jax": "reference_dcgan_jax.py"}
# The 64x64 pair's reference is ganlab's own (the shared folder has only the 28x28 tutorial), so it lives here.
REFERENCE_64 = REPO / "benchmarks" / "reference_dcgan64_jax.py"
PAIRS = ("tutorial", "dcgan64")
# What makes the built-in dcgan the paper's 64x64 networks, as reference_dcgan64_jax.py writes them by hand.
DCGAN64_SETS = {"dataset.size": 64, "base_filters": 64, "kernel_size": 4, "dropout": 0.0, "d_batchnorm": True,
                "lr_g": 2e-4, "lr_d": 2e-4, "beta_1": 0.5, "beta_2": 0.999}
LOG_EVERY = 5
NOISE = 100


# ------------------------------------------------------------------ the plugin


def build_generator(ctx):
    """The tutorial's generator: Dense -> 7x7x256 -> Conv2DTranspose 128, 64, 1 (tanh)."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input((ctx.latent_dim,)),
        layers.Dense(7 * 7 * 256, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh", dtype="float32"),
    ])


def build_discriminator(ctx):
    """The tutorial's discriminator: Conv2D 64, 128 (stride 2, LeakyReLU, dropout 0.3) -> Dense 1."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(ctx.image_shape),
        layers.Conv2D(64, 5, strides=2, padding="same"), layers.LeakyReLU(), layers.Dropout(0.3),
        layers.Conv2D(128, 5, strides=2, padding="same"), layers.LeakyReLU(), layers.Dropout(0.3),
        layers.Flatten(), layers.Dense(1, dtype="float32"),
    ])


class TutorialDCGAN:
    """Registers ``tutorial-dcgan`` for this benchmark only (not a built-in)."""

    from ganlab import hookimpl

    @hookimpl
    def register_architectures(self, register):
        from ganlab import ArchitectureSpec

        register(ArchitectureSpec(
            name="tutorial-dcgan",
            description="the TensorFlow DCGAN tutorial's networks, for benchmarking",
            build_generator=build_generator,
            build_discriminator=build_discriminator,
            reference="TensorFlow tutorial 'Deep Convolutional Generative Adversarial Network'",
        ))


# ------------------------------------------------------------------- children


def ganlab_child(precision: str, xla: bool, batch: int, steps: int, pair: str = "tutorial") -> None:
    """Train with ganlab in this process and print ``ganlab images_per_s X``."""
    from ganlab.config import Resolver
    from ganlab.registry import Registry
    from ganlab.specs import BuildContext
    from ganlab.training import BaseReporter, train

    class Clock(BaseReporter):
        def __init__(self):
            self.marks: list[tuple[int, float]] = []

        def on_progress(self, step, losses, steps_per_s, images_per_s):
            self.marks.append((step, time.perf_counter()))

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "plugins"
        empty.mkdir()
        registry = Registry()
        registry.add_plugin(TutorialDCGAN(), name="bench-tutorial-dcgan", source=__file__)
        registry.load(empty, entry_points=False)
        total = LOG_EVERY + steps
        sets = {
            "steps": total, "batch_size": batch, "latent_dim": NOISE, "dataset.size": 28,
            "lr_g": 1e-4, "lr_d": 1e-4, "beta_1": 0.9, "beta_2": 0.999,  # keras.optimizers.Adam(1e-4), as the reference
            "ema": 0.0,  # the hand-written references keep no EMA copy
            "precision": precision, "jit_compile": xla, "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
            "log_every": LOG_EVERY, "checkpoint_every": LOG_EVERY + max(steps // 2, 1),  # one checkpoint inside the window
            "sample_every": total, "eval_every": total, "eval_samples": 100,
        }
        if pair == "dcgan64":
            sets = {**sets, **DCGAN64_SETS}
        arch = "dcgan" if pair == "dcgan64" else "tutorial-dcgan"
        config = Resolver(registry).resolve(arch, "digits", "non-saturating", sets)
        clock = Clock()
        result = train(config, Path(tmp) / "run", reporter=clock, registry=registry)
        if result.status != "succeeded":
            raise SystemExit(f"ganlab run {result.status}: {result.error}\n{result.traceback or ''}")
        (s0, t0), (s1, t1) = clock.marks[0], clock.marks[-1]
        print(f"ganlab images_per_s {(s1 - s0) * batch / (t1 - t0):.1f} step_ms {1000 * (t1 - t0) / (s1 - s0):.1f}")
        # The pair is only a fair comparison if both sides train the same networks: main() checks these counts.
        size = 64 if pair == "dcgan64" else 28
        ctx = BuildContext(image_shape=(size, size, 1), num_classes=None, latent_dim=NOISE, hparams=dict(config.arch_params))
        spec = registry.architecture(arch)
        print(f"ganlab params generator {spec.build_generator(ctx).count_params()} "
              f"discriminator {spec.build_discriminator(ctx).count_params()}")


def _run(cmd: list[str], env: dict[str, str], pattern: str, params: dict[str, str]) -> float:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    match = re.search(pattern + r" images_per_s ([0-9.]+)", proc.stdout)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    counts = re.search(pattern + r" (params generator \d+ discriminator \d+)", proc.stdout)
    if counts:
        params[pattern] = counts.group(1)
    return float(match.group(1))


def main() -> None:
    pair = os.environ.get("PAIR", "tutorial")
    if pair not in PAIRS:
        raise SystemExit(f"PAIR={pair}: use one of {', '.join(PAIRS)}")
    batch = int(os.environ.get("BATCH", 128 if pair == "dcgan64" else 256))
    steps = int(os.environ.get("STEPS", 10))
    rounds = int(os.environ.get("ROUNDS", 2))
    precisions = os.environ.get("PRECISIONS", "float32,mixed_bfloat16").split(",")
    variants = [(p, False) for p in precisions]
    if os.environ.get("XLA", "0") == "1":
        variants += [(p, True) for p in precisions]
    backend = os.environ.get("BACKEND", "tensorflow")
    if backend not in REFERENCES:
        raise SystemExit(f"BACKEND={backend}: use one of {', '.join(REFERENCES)}")
    if backend == "jax" and os.environ.get("XLA", "0") == "1":
        raise SystemExit("XLA=1 is for the TensorFlow backend (JAX always compiles the step)")
    if pair == "dcgan64" and backend != "jax":
        raise SystemExit("PAIR=dcgan64 has a JAX reference only: run it with BACKEND=jax")
    reference = REFERENCE_64 if pair == "dcgan64" else REFERENCE_DIR / REFERENCES[backend]
    env = dict(os.environ, BATCH=str(batch), STEPS=str(steps), TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=backend)
    if not reference.is_file():
        raise SystemExit(f"reference program not found at {reference} (set GANLAB_REFERENCE_DIR)")
    results: dict[str, list[float]] = {"reference float32": []}
    for p, xla in variants:
        results[f"ganlab {p}{' xla' if xla else ''}"] = []
    machine = machine_description()
    print(f"measured on {machine}, Keras backend {backend}, pair {pair}", flush=True)
    for r in range(rounds):
        params: dict[str, str] = {}
        results["reference float32"].append(_run([sys.executable, str(reference)], env, reference.stem, params))
        for p, xla in variants:
            cmd = [sys.executable, __file__, "--child", p, str(int(xla)), str(batch), str(steps), pair]
            results[f"ganlab {p}{' xla' if xla else ''}"].append(_run(cmd, env, "ganlab", params))
        # The shared 28x28 references print no counts; ganlab's own 64x64 one does, and must match.
        if pair == "dcgan64" and params.get(reference.stem, "?") != params.get("ganlab"):
            raise SystemExit(f"the pair is not the same networks: reference {params.get(reference.stem)}, "
                             f"ganlab {params.get('ganlab')}")
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), flush=True)
    # Shared machines drift between runs: the ratio within a round (runs seconds apart) is the
    # figure to trust; its median over rounds, and the ratio of the best runs, are printed.
    refs = results["reference float32"]
    summary: dict[str, dict[str, float]] = {}
    print(f"\nbatch {batch}, {steps} timed steps, {rounds} rounds (images/s):")
    for name, values in results.items():
        paired = statistics.median(v / r for v, r in zip(values, refs))
        summary[name] = {"median": statistics.median(values), "best": max(values), "ratio": paired,
                         "ratio_of_best": max(values) / max(refs)}
        print(f"  {name:28s} median {summary[name]['median']:7.1f}  best {max(values):7.1f}  "
              f"ratio to reference float32: median per round {paired:.2f}x, best/best {summary[name]['ratio_of_best']:.2f}x")
    print(json.dumps({"machine": machine, "backend": backend, "pair": pair, "batch": batch, "steps": steps, "rounds": rounds, "runs": results, "summary": summary}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        ganlab_child(sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        main()
