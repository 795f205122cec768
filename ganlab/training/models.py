"""Building the networks and optimisers of one experiment from its plugins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.specs import ArchitectureSpec, BuildContext, DataInfo
from ganlab.training.checkpoint import pack, unpack

if TYPE_CHECKING:
    import keras


@dataclass
class Gan:
    """Everything that has weights: both networks, the EMA copy of G and both optimisers."""

    generator: keras.Model
    discriminator: keras.Model
    ema_generator: keras.Model | None
    g_opt: keras.optimizers.Optimizer
    d_opt: keras.optimizers.Optimizer
    latent_dim: int
    num_classes: int | None  # set only when the architecture is conditional
    image_shape: tuple[int, int, int]
    augment_p: keras.Variable | None = None  # an adaptive augmentation's probability (see training.augment)

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def sampler(self) -> keras.Model:
        """The generator that samples and metrics use: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def generator_inputs(self, z: Any, labels: Any) -> Any:
        return [z, labels] if self.conditional else z

    def discriminator_inputs(self, images: Any, labels: Any) -> Any:
        return [images, labels] if self.conditional else images

    def variable_groups(self) -> dict[str, list[keras.Variable]]:
        """Every variable a checkpoint must hold, by group, in build order."""
        groups = {
            "generator": list(self.generator.variables),
            "discriminator": list(self.discriminator.variables),
            "g_opt": list(self.g_opt.variables),
            "d_opt": list(self.d_opt.variables),
        }
        if self.ema_generator is not None:
            groups["ema"] = list(self.ema_generator.variables)
        if self.augment_p is not None:
            groups["augment"] = [self.augment_p]
        return groups

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every variable's value as numpy, named for a checkpoint."""
        arrays: dict[str, np.ndarray] = {}
        for group, variables in self.variable_groups().items():
            arrays.update(pack(group, [np.asarray(v.numpy()) for v in variables], [v.path for v in variables]))
        return arrays

    def load_arrays(self, arrays: Mapping[str, np.ndarray], groups: tuple[str, ...] | None = None) -> None:
        """Assign checkpoint values to the variables (of ``groups`` only, if given); shapes are checked first."""
        pending = []
        for group, variables in self.variable_groups().items():
            if groups is not None and group not in groups:
                continue
            values = unpack(group, arrays, [tuple(v.shape) for v in variables])
            pending.extend(zip(variables, values))
        for variable, value in pending:
            # Seed states are int64 on TensorFlow and uint32 on JAX: a checkpoint crosses backends.
            variable.assign(value.astype(variable.dtype))


def build_gan(config: ExperimentConfig, arch: ArchitectureSpec, info: DataInfo) -> Gan:
    """Build G, D (and the EMA copy of G) under the current dtype policy, seeded by the experiment seed."""
    import keras

    train = config.train
    keras.utils.set_random_seed(int(train["seed"]))
    num_classes = info.num_classes if arch.conditional else None
    ctx = BuildContext(
        image_shape=info.image_shape,
        num_classes=num_classes,
        latent_dim=int(train["latent_dim"]),
        hparams=dict(config.arch_params),
    )
    generator = arch.build_generator(ctx)
    discriminator = arch.build_discriminator(ctx)
    conditional = num_classes is not None
    _check_generator(arch.name, generator, ctx, conditional)
    _check_discriminator(arch.name, discriminator, ctx, conditional)
    ema = None
    if float(train["ema"]) > 0:
        ema = arch.build_generator(ctx)
        _check_generator(arch.name, ema, ctx, conditional)  # also creates a subclassed model's variables
        for target, source in zip(ema.variables, generator.variables):
            target.assign(source)
    g_opt = _optimizer(train["lr_g"], train, "generator_adam")
    d_opt = _optimizer(train["lr_d"], train, "discriminator_adam")
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    return Gan(generator, discriminator, ema, g_opt, d_opt, ctx.latent_dim, num_classes, info.image_shape)


def _optimizer(lr: float, train: dict[str, Any], name: str) -> keras.optimizers.Optimizer:
    import keras

    opt = keras.optimizers.Adam(learning_rate=float(lr), beta_1=float(train["beta_1"]), beta_2=float(train["beta_2"]), name=name)
    if train["precision"] == "mixed_float16":
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none.
        opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
    return opt


# Both networks run once on a tiny batch: that creates a subclassed model's
# variables, and a plugin that breaks the calling convention is named in one
# line here instead of deep inside a compiled step.
_PROBE = 2


def _check_generator(arch: str, model: keras.Model, ctx: BuildContext, conditional: bool) -> None:
    z = np.zeros((_PROBE, ctx.latent_dim), dtype="float32")
    inputs = [z, np.zeros((_PROBE,), dtype="int32")] if conditional else z
    try:
        fake = model(inputs, training=False)
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raised, name the convention it broke
        raise ConfigError(f"architecture {arch!r}: calling the generator failed: {type(exc).__name__}: {exc}") from exc
    if tuple(fake.shape) != (_PROBE, *ctx.image_shape):
        raise ConfigError(
            f"architecture {arch!r}: the generator makes images of shape {tuple(fake.shape)[1:]}, "
            f"but the dataset's are {ctx.image_shape}"
        )


def _check_discriminator(arch: str, model: keras.Model, ctx: BuildContext, conditional: bool) -> None:
    images = np.zeros((_PROBE, *ctx.image_shape), dtype="float32")
    inputs = [images, np.zeros((_PROBE,), dtype="int32")] if conditional else images
    try:
        logits = model(inputs, training=False)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"architecture {arch!r}: calling the discriminator failed: {type(exc).__name__}: {exc}") from exc
    if tuple(logits.shape) != (_PROBE, 1):
        raise ConfigError(
            f"architecture {arch!r}: the discriminator returns shape {tuple(logits.shape)}; "
            "it must return one logit per image, (batch, 1)"
        )
