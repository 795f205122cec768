"""Rebuilding a trained generator from a run directory, for sampling and export.

Needs only the run's ``config.json`` and a checkpoint: the image shape and
classes are stored in the checkpoint, so the dataset need not be present. The
EMA weights are used when the run kept them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.registry import Registry
from ganlab.specs import BuildContext
from ganlab.training.checkpoint import CheckpointDamaged, load_checkpoint, unpack
from ganlab.training.run_dir import RunDir
from ganlab.training.sampling import generate_all, noise

if TYPE_CHECKING:
    import keras

SAMPLE_STREAM = 3
#: The checkpoints a generator can be loaded from.
CHOICES = ("latest", "previous", "best")


@dataclass
class TrainedGenerator:
    """A generator with a run's weights, and what it needs to be called."""

    model: keras.Model
    config: ExperimentConfig
    step: int
    num_classes: int | None
    ema: bool

    @property
    def latent_dim(self) -> int:
        return int(self.config.train["latent_dim"])

    def sample(self, n: int, seed: int = 0, chunk: int = 256) -> np.ndarray:
        """``n`` images float32 in ``[-1, 1]`` from noise seeded by ``seed`` (labels cycle through the classes)."""
        z, labels = noise(n, self.latent_dim, self.num_classes, seed, SAMPLE_STREAM)

        def generate(z_part: np.ndarray, lab: np.ndarray | None) -> np.ndarray:
            inputs = z_part if lab is None else [z_part, lab]
            return np.asarray(self.model.predict_on_batch(inputs), dtype=np.float32)

        return generate_all(generate, z, labels, min(chunk, n))


def load_generator(run_dir: str | os.PathLike[str], registry: Registry, which: str = "latest") -> TrainedGenerator:
    """The generator of ``run_dir`` with the weights of its ``latest``, ``previous`` or ``best`` checkpoint."""
    rd = RunDir(run_dir)
    config = rd.load_config()
    path = rd.checkpoint(which)
    if not path.is_file():
        hint = _alternatives(rd, which)
        raise ConfigError(f"run {rd.path} has no {which!r} checkpoint yet{'; try ' + hint if hint else ''}")
    try:
        arrays, state = load_checkpoint(path)
    except CheckpointDamaged as exc:
        hint = _alternatives(rd, which)
        raise CheckpointDamaged(f"{exc}; {'try ' + hint if hint else 'the run has no other intact checkpoint'}") from None
    # Only now: a missing or damaged file is reported without the seconds keras takes to import.
    import keras

    data = state.get("data")
    if not data:
        raise ConfigError(f"checkpoint {path} does not record the image shape; it was written by an older ganlab")
    arch = registry.architecture(config.architecture)
    ctx = BuildContext(
        image_shape=tuple(data["image_shape"]),  # type: ignore[arg-type]
        num_classes=data["num_classes"],
        latent_dim=int(config.train["latent_dim"]),
        hparams=dict(config.arch_params),
    )
    keras.utils.set_random_seed(int(config.train["seed"]))
    model = arch.build_generator(ctx)
    ema = any(k.startswith("ema/") for k in arrays)
    z = np.zeros((1, ctx.latent_dim), dtype="float32")
    model(z if ctx.num_classes is None else [z, np.zeros((1,), "int32")], training=False)  # creates the variables
    values = unpack("ema" if ema else "generator", arrays, [tuple(v.shape) for v in model.variables])
    for variable, value in zip(model.variables, values):
        variable.assign(value.astype(variable.dtype))
    return TrainedGenerator(model, config, int(state["step"]), ctx.num_classes, ema)


def _alternatives(rd: RunDir, which: str) -> str:
    """``--checkpoint X (step N)`` for each other checkpoint of the run that loads intact."""
    found = []
    for other in CHOICES:
        if other != which and rd.checkpoint(other).is_file():
            try:
                _, state = load_checkpoint(rd.checkpoint(other))
            except ConfigError:
                continue
            found.append(f"--checkpoint {other} (step {state['step']})")
    return " or ".join(found)
