"""The trainer on JAX, in a child process where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from ganlab.tblog.read import read_hparams, read_images, read_scalars
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

TESTS = Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
    sys.path.insert(0, sys.argv[2])
    from training_helpers import tiny_config, tiny_registry
    from ganlab.training import BaseReporter, train

    class StopAt(BaseReporter):
        seen = 0
        def on_progress(self, step, losses, steps_per_s, images_per_s):
            self.seen = step
        def should_stop(self):
            return self.seen >= 2

    reg = tiny_registry()
    out = sys.argv[1]
    results = {}
    # The joint update (n_critic 1) under bfloat16, and the alternating one with a
    # gradient penalty, labels and EMA; the second is stopped and resumed.
    joint = tiny_config(reg, steps=3, backend="jax", precision="mixed_bfloat16")
    results["joint"] = train(joint, out + "/joint", registry=reg).to_dict()
    alt = tiny_config(reg, "tiny-cond", "wgan-gp", steps=4, n_critic=2, ema=0.9, backend="jax", checkpoint_every=2)
    results["stopped"] = train(alt, out + "/alt", reporter=StopAt(), registry=reg).to_dict()
    results["resumed"] = train(alt, out + "/alt", resume=True, registry=reg).to_dict()
    import keras
    results["backend"] = keras.backend.backend()
    results["tf_imported"] = bool(sys.modules.get("tensorflow"))
    print("RESULT " + json.dumps(results))
    """
)


def test_jax_backend_trains_and_logs_without_tensorflow(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", GANLAB_CACHE_DIR=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(TESTS)], env=env, capture_output=True, text=True, timeout=600
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    results = json.loads(line[len("RESULT "):])
    assert results["backend"] == "jax" and not results["tf_imported"]
    assert results["joint"]["status"] == "succeeded", results["joint"]["traceback"]
    assert results["stopped"]["status"] == "released" and results["stopped"]["step"] == 2
    assert results["resumed"]["status"] == "succeeded" and results["resumed"]["step"] == 4

    # FAST evaluates and samples every 3 steps and at the end.
    for run, steps, evals in (("joint", [1, 2, 3], [3]), ("alt", [1, 2, 3, 4], [3, 4])):
        run_dir = tmp_path / run
        scalars = read_scalars(run_dir)
        assert [s for s, _ in scalars["loss/discriminator"]] == steps
        assert all(math.isfinite(v) for _, v in scalars["loss/generator"])
        assert [s for s, _ in scalars["metrics/fd"]] == evals
        assert read_images(run_dir)["samples"] == evals
        assert read_hparams(run_dir)["status"] == "success"
    assert "loss/penalty" in read_scalars(tmp_path / "alt")
    assert all(v > 0 for _, v in read_scalars(tmp_path / "alt")["loss/penalty"])
    # Checkpoints from JAX hold the same groups as TensorFlow's; EMA weights differ from G's.
    arrays, state = load_checkpoint(RunDir(tmp_path / "alt").checkpoint("latest"))
    assert state["step"] == 4 and state["backend"] == "jax"
    # Optimiser step counters (each optimiser's first variable): n_critic = 2 critic updates per step.
    assert int(arrays["d_opt/0000/discriminator_adam/iteration"]) == 8 and int(arrays["g_opt/0000/generator_adam/iteration"]) == 4
    g = [arrays[k] for k in sorted(arrays) if k.startswith("generator/")]
    ema = [arrays[k] for k in sorted(arrays) if k.startswith("ema/")]
    assert len(g) == len(ema) and not all(np.array_equal(a, b) for a, b in zip(g, ema))
