"""SNGAN: a worked example of a ganlab architecture plugin.

This file is not part of ganlab. It is what you would write yourself to add
an architecture: drop a ``*.py`` file into ``./plugins`` (or point
``--plugins-dir`` / ``GANLAB_PLUGINS_DIR`` at another folder) and ganlab
loads it next to the built-ins. ``ganlab plugins`` then lists ``sngan`` with
this file as its source, and ``--arch sngan`` trains it.

The recipe, in four parts:

1. Declare the hyperparameters with ``ganlab.Param``. The queue checks every
   ``--set`` value against them before an experiment is stored.
2. Write two builders, ``ctx -> keras.Model``. ``ctx`` is a
   ``ganlab.BuildContext``: the dataset's image shape, the latent size and
   your resolved hyperparameters.
3. Optionally write ``check_shape``, so an image size you cannot handle is
   refused at enqueue time with your reason instead of failing on the GPU.
4. Register a ``ganlab.ArchitectureSpec`` from the ``register_architectures`` hook.

The model itself follows Miyato et al.: a DCGAN-like generator, and a
discriminator whose every weight layer is divided by its largest singular
value (spectral normalisation), which bounds the discriminator's Lipschitz
constant without a gradient penalty.

Reference:
    Miyato, Kataoka, Koyama, Yoshida. "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018, arXiv:1802.05957.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Only the public API: everything a plugin needs is exported by ``ganlab``.
import ganlab

# Keep keras out of the module's top level. ganlab imports every plugin just to
# list it, and importing keras would start TensorFlow or JAX for a simple
# ``ganlab plugins``. The builders import it when a model is actually built;
# the import below only serves type checkers and never runs.
if TYPE_CHECKING:
    import keras

PARAMS = (
    ganlab.Param("base_filters", int, 64, "discriminator filters at full resolution; doubles at each halving", low=4, high=512),
    ganlab.Param("leaky_slope", float, 0.1, "negative slope of the discriminator's LeakyReLUs (0.1 in the paper)", low=0.0, high=1.0),
    ganlab.Param("power_iterations", int, 1, "power-iteration steps per call to estimate each singular value", low=1, high=10),
)

# The paper's CIFAR networks upsample 4x4 -> 32x32 in three steps; we stop
# after three doublings too, and never start from a grid smaller than 4x4.
MAX_STEPS = 3
MIN_START = 4


def _hparams(ctx: ganlab.BuildContext) -> dict[str, Any]:
    # The engine fills in defaults, but filling them here as well lets you call
    # the builders by hand with only the values you care about.
    return {p.name: p.default for p in PARAMS} | dict(ctx.hparams)


def _plan(height: int, width: int) -> tuple[int, int, int]:
    """Return ``(start_height, start_width, steps)`` with ``start * 2**steps == size``."""
    steps = 0
    while steps < MAX_STEPS and height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= MIN_START:
        height, width, steps = height // 2, width // 2, steps + 1
    return height, width, steps


def check_shape(image_shape: tuple[int, int, int]) -> str | None:
    """Return why sngan cannot make images of this shape, or ``None`` if it can.

    The reason is shown to the user as is, so make it one line that says what
    to change.
    """
    height, width, _ = image_shape
    if _plan(height, width)[2] == 0:
        return f"sngan needs even height and width of at least {2 * MIN_START}, got {height}x{width}"
    return None


def _checked_plan(ctx: ganlab.BuildContext) -> tuple[int, int, int]:
    # The queue calls check_shape before storing an experiment, but a builder
    # may also be called by hand: fail with the same reason, as a ganlab error.
    why = check_shape(ctx.image_shape)
    if why:
        raise ganlab.ConfigError(why)
    return _plan(ctx.height, ctx.width)


def build_generator(ctx: ganlab.BuildContext) -> keras.Model:
    """``z (batch, latent_dim) -> images (batch, H, W, C)`` in ``[-1, 1]``.

    The generator is not spectrally normalised: the paper constrains only the
    discriminator. Width follows the discriminator's so the two stay balanced.
    """
    import keras
    from keras import layers

    hp = _hparams(ctx)
    height, width, channels = ctx.image_shape
    start_h, start_w, steps = _checked_plan(ctx)
    filters = hp["base_filters"] * 2**steps

    z = keras.Input((ctx.latent_dim,), name="z")
    h = layers.Dense(start_h * start_w * filters, name="g_project")(z)
    h = layers.Reshape((start_h, start_w, filters), name="g_reshape")(h)
    for step in range(1, steps + 1):
        filters //= 2
        h = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"g_up{step}")(h)
        h = layers.BatchNormalization(name=f"g_up{step}_bn")(h)
        h = layers.ReLU(name=f"g_up{step}_relu")(h)
    # A stride-1 3x3 convolution maps the features to the dataset's channels.
    h = layers.Conv2D(channels, 3, padding="same", name="g_to_image")(h)
    # float32 keeps images in full precision when training in mixed precision.
    images = layers.Activation("tanh", dtype="float32", name="g_tanh")(h)
    return keras.Model(z, images, name="sngan_generator")


def build_discriminator(ctx: ganlab.BuildContext) -> keras.Model:
    """``images (batch, H, W, C) -> logits (batch, 1)``, every weight layer spectrally normalised.

    Each resolution has a 3x3 stride-1 convolution followed by a 4x4 stride-2
    one, as in the paper's "standard CNN"; the last block runs at the
    generator's start grid.
    """
    import keras
    from keras import layers

    hp = _hparams(ctx)
    _, _, steps = _checked_plan(ctx)

    def sn(layer: keras.layers.Layer) -> keras.layers.Layer:
        # SpectralNormalization wraps a layer and rescales its kernel on every
        # training call. The wrapper casts its output back to its own input
        # dtype, so it takes the wrapped layer's dtype policy: otherwise the
        # float32 logit layer would hand float16 back under mixed precision.
        return layers.SpectralNormalization(
            layer, power_iterations=hp["power_iterations"], dtype=layer.dtype_policy, name=f"{layer.name}_sn"
        )

    def lrelu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
        return layers.LeakyReLU(negative_slope=hp["leaky_slope"], name=name)(x)

    images = keras.Input(ctx.image_shape, name="images")
    h = images
    filters = hp["base_filters"]
    for step in range(1, steps + 1):
        h = lrelu(sn(layers.Conv2D(filters, 3, padding="same", name=f"d_conv{step}a"))(h), f"d_conv{step}a_lrelu")
        h = lrelu(sn(layers.Conv2D(filters, 4, strides=2, padding="same", name=f"d_conv{step}b"))(h), f"d_conv{step}b_lrelu")
        filters *= 2
    h = lrelu(sn(layers.Conv2D(filters, 3, padding="same", name="d_conv_top"))(h), "d_conv_top_lrelu")
    h = layers.Flatten(name="d_flatten")(h)
    logit = sn(layers.Dense(1, dtype="float32", name="d_logit"))(h)
    return keras.Model(images, logit, name="sngan_discriminator")


# The hook: ganlab calls it once and hands you ``register``. Call it for each
# architecture this file provides, and return nothing.
@ganlab.hookimpl
def register_architectures(register: Callable[[ganlab.ArchitectureSpec], None]) -> None:
    register(
        ganlab.ArchitectureSpec(
            name="sngan",
            description="DCGAN-like generator, spectrally normalised discriminator (example user plugin)",
            build_generator=build_generator,
            build_discriminator=build_discriminator,
            params=PARAMS,
            reference="Miyato et al. 2018, arXiv:1802.05957",
            check_shape=check_shape,
        )
    )
