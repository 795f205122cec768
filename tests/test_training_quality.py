"""Training works: a DCGAN on the digits halves (and more) its untrained Fréchet distance in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from ganlab.config import Resolver
from ganlab.metrics.evaluator import Evaluator
from ganlab.registry import Registry
from ganlab.tblog.read import read_scalars
from ganlab.training import train
from ganlab.training.models import build_gan
from ganlab.training.sampling import EVAL_STREAM, noise


@pytest.mark.slow
def test_dcgan_on_digits_beats_half_the_untrained_frechet_distance(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "no_plugins").mkdir()
    registry = Registry().load(tmp_path / "no_plugins", entry_points=False)  # the built-ins alone
    # 16x16 digits and a narrow DCGAN: about 8 s of training on two CPU cores.
    # Measured: FD 120 untrained -> about 7 after 300 steps (see docs/performance.md).
    sets = {"steps": 300, "batch_size": 64, "dataset.size": 16, "base_filters": 32, "eval_samples": 500,
            "eval_every": 150, "sample_every": 300, "checkpoint_every": 300, "log_every": 50}
    config = Resolver(registry).resolve("dcgan", "digits", "non-saturating", sets)

    # The run's own generator at step 0 (same seed, same initial weights), scored by the same protocol.
    data = registry.dataset("digits").load(config.dataset_params)
    gan = build_gan(config, registry.architecture("dcgan"), data.info())
    z, _ = noise(500, gan.latent_dim, None, config.train["seed"], EVAL_STREAM)
    untrained = Evaluator(data, n_real=500, seed=config.train["seed"]).evaluate(np.asarray(gan.generator.predict(z, verbose=0)))["fd"]

    result = train(config, tmp_path / "run", registry=registry)

    assert result.status == "succeeded", result.traceback
    trained = result.metrics["fd"]
    assert trained < 0.5 * untrained, f"FD {untrained:.2f} untrained -> {trained:.2f} after 300 steps"
    assert result.metrics["fd_floor"] < trained
    curve = [v for _, v in read_scalars(tmp_path / "run")["metrics/fd"]]
    assert len(curve) == 2 and curve[-1] < curve[0]
