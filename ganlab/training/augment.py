"""Augmentation and the EMA schedule inside the compiled step, shared by the TensorFlow and JAX steps.

The augmentation runs on what the discriminator sees, never on what is
sampled or evaluated (those call the generator directly). Its random draws
use seeds folded from the step's seed, one stream for the real images and one
for the generated ones, so a resumed run draws what an uninterrupted one does.
An adaptive augmentation's ``p`` is a variable of the :class:`Gan` (group
``augment`` of the checkpoint), so it resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ganlab.config import DEFAULT_AUGMENT, ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.specs import AugmentationSpec, AugmentContext

if TYPE_CHECKING:
    from ganlab.registry import Registry
    from ganlab.training.models import Gan

# Seed streams of the augmentation, after the step's Z, LABEL and REG streams (0, 1, 2).
AUG_REAL_STREAM, AUG_FAKE_STREAM = 3, 4
P_OUTPUT = "augment/p"
#: The EMA's half-life grows as ``EMA_RAMPUP * step`` until it reaches the one ``ema`` sets (StyleGAN's ema_rampup).
EMA_RAMPUP = 0.05


@dataclass(frozen=True)
class Augment:
    """An experiment's augmentation and its resolved hyperparameters."""

    spec: AugmentationSpec
    params: Mapping[str, Any]

    @property
    def adaptive(self) -> bool:
        return self.spec.adaptive

    def initial_p(self) -> float:
        return float(self.spec.initial_p(self.params)) if self.spec.initial_p is not None else 0.0

    def apply(self, images: Any, next_seed: Callable[[], Any], p: Any) -> Any:
        out = self.spec.apply(images, AugmentContext(self.params, next_seed, p))
        if tuple(out.shape) != tuple(images.shape):
            raise ConfigError(
                f"augmentation {self.spec.name!r} turned images of shape {tuple(images.shape)} into "
                f"{tuple(out.shape)}; it must keep the shape"
            )
        return out

    def adapt(self, p: Any, real_logits: Any) -> Any:
        """The next ``p`` (float32), from D's logits on the augmented real batch; no gradient flows into it."""
        import keras

        assert self.spec.adapt is not None
        logits = keras.ops.stop_gradient(real_logits)
        return keras.ops.cast(self.spec.adapt(p, logits, self.params), "float32")


def augment_for(config: ExperimentConfig, registry: Registry) -> Augment | None:
    """The experiment's augmentation, or None for ``none`` (the step then does no extra work)."""
    if config.augmentation == DEFAULT_AUGMENT:
        return None
    return Augment(registry.augmentation(config.augmentation), dict(config.augment_params))


def attach_state(gan: Gan, augment: Augment | None) -> None:
    """Give ``gan`` the variable holding ``p`` when the augmentation is adaptive (before any restore)."""
    import keras

    if augment is None or not augment.adaptive or gan.augment_p is not None:
        return
    gan.augment_p = keras.Variable(augment.initial_p(), dtype="float32", trainable=False, name="augment_p")


def ema_decay(ema: float, step: Any) -> Any:
    """The generator EMA's decay at ``step`` (1-based): ``min(ema, 0.5 ** (1 / (EMA_RAMPUP * step)))``.

    Early on the copy follows the generator closely (a half-life of
    ``0.05 * step`` steps), so it is not held back by its initial weights; the
    decay reaches ``ema`` at ``step = ln 0.5 / (ln ema * 0.05)`` (13,860 steps for 0.999).
    A function of the step alone, so a resumed run uses the same decays.
    """
    import keras

    halflife = keras.ops.maximum(keras.ops.cast(step, "float32") * EMA_RAMPUP, 1e-8)
    return keras.ops.minimum(keras.ops.power(0.5, 1.0 / halflife), ema)
