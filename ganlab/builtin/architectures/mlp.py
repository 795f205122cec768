"""Fully connected generator and discriminator, after the original GAN.

Reference:
    Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville,
    Bengio. "Generative Adversarial Nets", NeurIPS 2014, arXiv:1406.2661.

The paper's discriminator used maxout units; LeakyReLU with dropout is the
usual modern stand-in and keeps the layer count the only knob of depth.
Images are treated as flat vectors, so any ``(H, W, C)`` works; the
generator's last Dense has ``H * W * C`` units reshaped to the data shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganlab.params import Param, resolve_params
from ganlab.specs import ArchitectureSpec, BuildContext

if TYPE_CHECKING:  # keras is imported inside the builders: listing plugins must not start a backend
    import keras

REFERENCE = "Goodfellow et al. 2014, arXiv:1406.2661"

PARAMS: tuple[Param, ...] = (
    Param("hidden_units", int, 256, "units in every hidden layer of both networks", low=4, high=8192),
    Param("num_layers", int, 2, "hidden layers in each network", low=1, high=8),
    Param("dropout", float, 0.3, "dropout after each discriminator hidden layer (0: off)", low=0.0, high=0.9),
    Param("leaky_slope", float, 0.2, "negative slope of the LeakyReLUs in both networks (0: plain ReLU)", low=0.0, high=1.0),
)
_OWNER = "architecture 'mlp'"


def build_generator(ctx: BuildContext) -> keras.Model:
    """MLP generator: ``z (batch, latent_dim) -> images (batch, H, W, C)`` in ``[-1, 1]``.

    Args:
        ctx: image shape, latent size and hyperparameters (missing ones take their defaults).
    """
    import keras
    from keras import layers

    hp = resolve_params(PARAMS, ctx.hparams, _OWNER)
    height, width, channels = ctx.image_shape
    z = keras.Input((ctx.latent_dim,), name="z")
    h = z
    for i in range(1, hp["num_layers"] + 1):
        h = layers.Dense(hp["hidden_units"], name=f"g_dense{i}")(h)
        h = layers.LeakyReLU(negative_slope=hp["leaky_slope"], name=f"g_dense{i}_lrelu")(h)
    h = layers.Dense(height * width * channels, name="g_to_pixels")(h)
    h = layers.Reshape((height, width, channels), name="g_reshape")(h)
    # Last, and float32, so mixed-precision runs still emit full-precision images
    # (any layer after it would cast back to the compute dtype).
    images = layers.Activation("tanh", dtype="float32", name="g_tanh")(h)
    return keras.Model(z, images, name="mlp_generator")


def build_discriminator(ctx: BuildContext) -> keras.Model:
    """MLP discriminator: ``images (batch, H, W, C) -> logits (batch, 1)``.

    Args:
        ctx: image shape and hyperparameters (missing ones take their defaults).
    """
    import keras
    from keras import layers

    hp = resolve_params(PARAMS, ctx.hparams, _OWNER)
    images = keras.Input(ctx.image_shape, name="images")
    h = layers.Flatten(name="d_flatten")(images)
    for i in range(1, hp["num_layers"] + 1):
        h = layers.Dense(hp["hidden_units"], name=f"d_dense{i}")(h)
        h = layers.LeakyReLU(negative_slope=hp["leaky_slope"], name=f"d_dense{i}_lrelu")(h)
        if hp["dropout"] > 0:
            h = layers.Dropout(hp["dropout"], name=f"d_dense{i}_dropout")(h)
    logit = layers.Dense(1, dtype="float32", name="d_logit")(h)
    return keras.Model(images, logit, name="mlp_discriminator")


SPEC = ArchitectureSpec(
    name="mlp",
    description="Fully connected generator and discriminator of the original GAN; any image shape",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    params=PARAMS,
    reference=REFERENCE,
)
