"""Packed seeds on JAX: a seed trained inside a pack trains like the same seed alone.

In a child process on the JAX backend (TensorFlow cannot be imported there).
Tolerance: the packed step is the same XLA computation mapped over a new
leading axis; on this CPU it gives bit-identical results, and the test allows
relative 1e-5 (absolute 1e-6) so that a backend that reorders the batched
reductions still passes while a wrong seed, key or state slice does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from ganlab.tblog.read import read_hparams, read_scalars
from ganlab.training.checkpoint import load_checkpoint
from ganlab.training.run_dir import RunDir

TESTS = Path(__file__).resolve().parent
RTOL, ATOL = 1e-5, 1e-6

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow"] = None
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    from training_helpers import tiny_config, tiny_registry
    from ganlab.training import BaseReporter, train
    from ganlab.training.pack_trainer import train_pack
    from ganlab.training.step_pack import PackedJaxStep

    class StopAt(BaseReporter):
        seen = 0
        def on_progress(self, step, losses, steps_per_s, images_per_s):
            self.seen = step
        def should_stop(self):
            return self.seen >= 2

    reg = tiny_registry()
    out = sys.argv[1]
    # The alternating update (n_critic 2, a lax.scan) with a gradient penalty, labels and EMA.
    def config(seed, steps=4):
        return tiny_config(reg, "tiny-cond", "wgan-gp", steps=steps, n_critic=2, ema=0.9, backend="jax",
                           checkpoint_every=2, seed=seed)
    seeds = (0, 1)
    results = {}
    results["alone"] = [train(config(s), f"{out}/alone{s}", registry=reg).status for s in seeds]
    # Stopped at step 2 and resumed: the pack's end must equal the runs alone.
    stop = StopAt()
    first = train_pack([config(s) for s in seeds], [f"{out}/pack{s}" for s in seeds], [stop, stop], registry=reg)
    results["stopped"] = [(r.status, r.step) for r in first]
    again = train_pack([config(s) for s in seeds], [f"{out}/pack{s}" for s in seeds], resume=True, registry=reg)
    results["resumed"] = [(r.status, r.step, r.start_step) for r in again]

    # One member's weights poisoned at step 3: it ends diverged, the others go on to the end.
    call = PackedJaxStep.__call__
    def poisoned(self, images, labels, steps, norms=True):
        if int(steps[1]) == 3:
            self.state["d_tv"][0] = self.state["d_tv"][0].at[1].set(np.nan)
        return call(self, images, labels, steps, norms)
    PackedJaxStep.__call__ = poisoned
    bad = train_pack([config(s, steps=5) for s in seeds], [f"{out}/bad{s}" for s in seeds], registry=reg)
    results["poisoned"] = [(r.status, r.step) for r in bad]
    print("RESULT " + json.dumps(results))
    """
)


def _weights(run_dir: Path) -> list[np.ndarray]:
    arrays, _ = load_checkpoint(RunDir(run_dir).checkpoint("latest"))
    # Keras numbers layer names per process (dense_3 in the pack): compare in build order.
    return [arrays[k] for k in sorted(arrays, key=lambda k: k.split("/")[:2])]


def test_packed_seeds_train_like_each_seed_alone_resume_exactly_and_end_on_their_own(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", GANLAB_CACHE_DIR=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(TESTS)], env=env, capture_output=True, text=True, timeout=600
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    results = json.loads(line[len("RESULT "):])
    assert results["alone"] == ["succeeded"] * 2
    assert results["stopped"] == [["released", 2]] * 2  # stopped on request: back to the queue
    assert results["resumed"] == [["succeeded", 4, 2]] * 2
    for seed in (0, 1):
        alone, packed = read_scalars(tmp_path / f"alone{seed}"), read_scalars(tmp_path / f"pack{seed}")
        for name in ("loss/discriminator", "loss/generator", "loss/penalty"):
            assert [s for s, _ in packed[name]] == [1, 2, 3, 4]
            np.testing.assert_allclose([v for _, v in packed[name]], [v for _, v in alone[name]], rtol=RTOL, atol=ATOL)
        for a, b in zip(_weights(tmp_path / f"alone{seed}"), _weights(tmp_path / f"pack{seed}"), strict=True):
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)
        assert read_hparams(tmp_path / f"pack{seed}")["status"] == "success"
    # The seeds really differ: a pack that fed every member the same key would fail here.
    assert read_scalars(tmp_path / "pack0")["loss/generator"] != read_scalars(tmp_path / "pack1")["loss/generator"]

    assert results["poisoned"] == [["succeeded", 5], ["diverged", 3]]
    assert read_hparams(tmp_path / "bad1")["status"] == "failure"
    assert [s for s, _ in read_scalars(tmp_path / "bad0")["loss/generator"]] == [1, 2, 3, 4, 5]
