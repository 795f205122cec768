"""What the TensorFlow and JAX steps share: settings, the losses in float32, names of outputs.

One training step is ``n_critic`` discriminator updates followed by one
generator update. With ``n_critic == 1`` both updates are taken from the same
forward pass (the generator runs once; each network's gradient comes from its
own loss), as in the TensorFlow DCGAN tutorial: it costs one generator pass
fewer than alternating updates. With ``n_critic > 1`` each discriminator
update draws its own real batch and noise, then the generator updates
against the updated discriminator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ganlab.config import ExperimentConfig
from ganlab.specs import LossSpec, RegularizerContext
from ganlab.training.augment import P_OUTPUT, Augment

if TYPE_CHECKING:
    from ganlab.training.models import Gan

# Offsets folded into the per-step seed, one per random draw, so no two draws share numbers.
Z_STREAM, LABEL_STREAM, REG_STREAM = 0, 1, 2
# Each discriminator update i of a step uses seed fold_in(step_seed, i); the generator update uses n_critic.

#: Scalars each step returns, in this order; ``loss/penalty`` only when the loss has a regulariser,
#: ``augment/p`` only with an adaptive augmentation.
STEP_OUTPUTS = (
    "loss/generator",
    "loss/discriminator",
    "loss/penalty",
    "disc/real",
    "disc/fake",
    "disc/accuracy",
    "grad_norm/generator",
    "grad_norm/discriminator",
    P_OUTPUT,
)


@dataclass(frozen=True)
class StepSettings:
    """The parts of a config a compiled step depends on."""

    batch_size: int
    latent_dim: int
    n_critic: int
    seed: int
    ema: float
    jit_compile: bool
    loss: LossSpec
    loss_params: Mapping[str, Any]
    augment: Augment | None = None

    @classmethod
    def from_config(cls, config: ExperimentConfig, loss: LossSpec, augment: Augment | None = None) -> StepSettings:
        t = config.train
        return cls(
            batch_size=int(t["batch_size"]),
            latent_dim=int(t["latent_dim"]),
            n_critic=int(t["n_critic"]),
            seed=int(t["seed"]),
            ema=float(t["ema"]),
            jit_compile=bool(t["jit_compile"]),
            loss=loss,
            loss_params=dict(config.loss_params),
            augment=augment,
        )

    @property
    def adaptive(self) -> bool:
        return self.augment is not None and self.augment.adaptive

    @property
    def outputs(self) -> tuple[str, ...]:
        dropped = {"loss/penalty"} if self.loss.regularizer is None else set()
        if not self.adaptive:
            dropped.add(P_OUTPUT)
        return tuple(n for n in STEP_OUTPUTS if n not in dropped)


def normalise(images_u8: Any) -> Any:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``, inside the compiled step."""
    import keras

    return keras.ops.cast(images_u8, "float32") / 127.5 - 1.0


def discriminator_objective(
    settings: StepSettings,
    real_logits: Any,
    fake_logits: Any,
    reg_ctx: Callable[[], RegularizerContext] | None,
) -> tuple[Any, Any]:
    """``(loss, penalty)`` in float32; the penalty is 0 when the loss has no regulariser."""
    import keras

    loss = keras.ops.cast(settings.loss.discriminator_loss(real_logits, fake_logits, settings.loss_params), "float32")
    penalty = keras.ops.zeros((), dtype="float32")
    if settings.loss.regularizer is not None and reg_ctx is not None:
        penalty = keras.ops.cast(settings.loss.regularizer(reg_ctx(), settings.loss_params), "float32")
    return loss, penalty


def generator_objective(settings: StepSettings, fake_logits: Any) -> Any:
    import keras

    return keras.ops.cast(settings.loss.generator_loss(fake_logits, settings.loss_params), "float32")


def mean_logit(logits: Any) -> Any:
    import keras

    return keras.ops.mean(keras.ops.cast(logits, "float32"))


def accuracy(real_logits: Any, fake_logits: Any) -> Any:
    """Share of the batch the discriminator gets right (real above 0, fake below), real and fake weighted alike.

    1.0 means it wins outright: the generator's gradient then carries little
    (train.stop_d_wins_steps watches for it). Zero is the decision boundary of
    every built-in loss's logit or critic value.
    """
    import keras

    real = keras.ops.mean(keras.ops.cast(keras.ops.cast(real_logits, "float32") > 0.0, "float32"))
    fake = keras.ops.mean(keras.ops.cast(keras.ops.cast(fake_logits, "float32") < 0.0, "float32"))
    return (real + fake) / 2.0


def discriminator_outputs(
    settings: StepSettings, d_loss: Any, penalty: Any, real_logits: Any, fake_logits: Any, norm: Any, p: Any = None
) -> dict[str, Any]:
    """The discriminator's logged scalars, the same on every backend, named by :func:`discriminator_output_names`."""
    out = {"loss/discriminator": d_loss, "disc/real": mean_logit(real_logits), "disc/fake": mean_logit(fake_logits),
           "disc/accuracy": accuracy(real_logits, fake_logits), "grad_norm/discriminator": norm}
    if settings.loss.regularizer is not None:
        out["loss/penalty"] = penalty
    if settings.adaptive:
        out[P_OUTPUT] = p
    return out


def discriminator_output_names(settings: StepSettings) -> list[str]:
    """The names :func:`discriminator_outputs` returns, known before any step runs."""
    names = ["loss/discriminator", "disc/real", "disc/fake", "disc/accuracy", "grad_norm/discriminator"]
    if settings.loss.regularizer is not None:
        names.append("loss/penalty")
    if settings.adaptive:
        names.append(P_OUTPUT)
    return names


def global_norm(grads: list[Any]) -> Any:
    """``sqrt(sum ||g||^2)`` over every gradient, in float32."""
    import keras

    total = keras.ops.zeros((), dtype="float32")
    for g in grads:
        if g is not None:
            total = total + keras.ops.sum(keras.ops.square(keras.ops.cast(g, "float32")))
    return keras.ops.sqrt(total)


def gated_norm(compute: Any, grads: list[Any]) -> Any:
    """:func:`global_norm` when ``compute`` (a boolean tensor) is true, else 0.

    The norms are only logged every ``log_every`` steps; on the other steps
    skipping them saves a pass over every gradient (about 1.5 % of the seed
    DCGAN's CPU step). A runtime condition, so one compiled step serves both.
    """
    import keras

    return keras.ops.cond(compute, lambda: global_norm(grads), lambda: keras.ops.zeros((), dtype="float32"))


def loss_scale(opt: Any) -> Any | None:
    """The current loss scale of a LossScaleOptimizer, else None (gradient norms are reported unscaled)."""
    import keras

    if isinstance(opt, keras.optimizers.LossScaleOptimizer):
        return opt.dynamic_scale
    return None


def make_step(gan: Gan, settings: StepSettings, backend: str) -> Any:
    """The compiled step for ``backend``: a TFStep or a JaxStep (same interface)."""
    if backend == "jax":
        from ganlab.training.step_jax import JaxStep

        return JaxStep(gan, settings)
    from ganlab.training.step_tf import TFStep

    return TFStep(gan, settings)
