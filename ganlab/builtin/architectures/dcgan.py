"""DCGAN: the deep convolutional GAN of Radford, Metz and Chintala.

Reference:
    Radford, Metz, Chintala. "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016, arXiv:1511.06434.

Both networks are sized from the dataset's image shape: the generator grows a
small grid to exactly ``(H, W, C)`` in stride-2 steps and the discriminator
shrinks that same shape back down, so the two can never disagree about the
images (a hand-written 28x28x3 generator facing a 28x28x1 discriminator is
the classic mistake this rules out). :func:`plan_upsampling` and the two
``*_body`` functions are shared with the conditional variant in
:mod:`ganlab.builtin.architectures.cdcgan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ganlab.errors import ConfigError
from ganlab.params import Param, resolve_params
from ganlab.specs import ArchitectureSpec, BuildContext

if TYPE_CHECKING:  # keras is imported inside the builders: listing plugins must not start a backend
    import keras

REFERENCE = "Radford, Metz, Chintala 2016, arXiv:1511.06434"

# Halving stops once a side would drop below MIN_START; a grid still larger than
# MAX_START after that means the Dense projection would do most of the work
# (e.g. 34 = 17*2), which is no longer a convolutional generator.
MIN_START = 4
MAX_START = 16
# Coarse levels double the width of finer ones (as in the paper's 1024-512-256-128
# stack), capped so that many upsamplings (256 px and up) do not explode the width.
MAX_WIDTH_MULTIPLIER = 8

PARAMS: tuple[Param, ...] = (
    Param("base_filters", int, 64, "filters at the finest resolution; coarser levels double it (up to 8x)", low=4, high=1024),
    Param("kernel_size", int, 5, "side of every convolution kernel", choices=(3, 4, 5)),
    Param("dropout", float, 0.3, "dropout after each discriminator block (0: off, as in the paper)", low=0.0, high=0.9),
    Param("leaky_slope", float, 0.2, "negative slope of the discriminator's LeakyReLUs", low=0.0, high=1.0),
    Param("d_batchnorm", bool, False,
          "batch norm in the discriminator after its first block (the paper's choice; "
          "leave off for gradient-penalty losses, which need per-sample gradients)"),
)


@dataclass(frozen=True)
class UpsamplingPlan:
    """How a generator reaches an image size by doubling a small grid.

    Attributes:
        start_height: rows of the grid the latent vector is projected to.
        start_width: columns of that grid.
        steps: number of stride-2 layers; ``start * 2**steps`` is the image size.
    """

    start_height: int
    start_width: int
    steps: int

    def level_filters(self, base_filters: int) -> list[int]:
        """Filters of the feature maps from the start grid (index 0) to the finest level before the image.

        Args:
            base_filters: width at the finest level; each coarser level doubles it,
                capped at ``MAX_WIDTH_MULTIPLIER * base_filters``.
        """
        return [
            base_filters * min(2 ** (self.steps - 1 - level), MAX_WIDTH_MULTIPLIER)
            for level in range(self.steps)
        ]


def plan_upsampling(height: int, width: int, *, name: str = "dcgan") -> UpsamplingPlan:
    """Factor ``height`` and ``width`` as ``start * 2**steps`` with a shared number of steps.

    Examples: 28x28 -> 7x7 and 2 steps, 32x32 -> 4x4 and 3, 64x64 -> 4x4 and 4,
    8x8 -> 4x4 and 1, 32x64 -> 4x8 and 3.

    Args:
        height: image rows.
        width: image columns.
        name: architecture name used in the error message.

    Raises:
        ConfigError: with a one-line reason when the size cannot be reached.
    """
    h, w, steps = height, width, 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= MIN_START and w // 2 >= MIN_START:
        h, w, steps = h // 2, w // 2, steps + 1
    if steps == 0:
        if height < 2 * MIN_START or width < 2 * MIN_START:
            raise ConfigError(f"{name} needs images of at least {2 * MIN_START}x{2 * MIN_START}, got {height}x{width}")
        raise ConfigError(
            f"{name} doubles the image size at every generator layer, so height and width must both be even; "
            f"got {height}x{width} (crop or resize the images)"
        )
    if h > MAX_START or w > MAX_START:
        raise ConfigError(
            f"{name} cannot grow {height}x{width} from a small grid: it halves only to {h}x{w} "
            f"(at most {MAX_START} per side allowed); use sizes like 28 (7*2^2), 32 (4*2^3) or 64 (4*2^4)"
        )
    return UpsamplingPlan(h, w, steps)


def shape_problem(image_shape: tuple[int, int, int], *, name: str = "dcgan") -> str | None:
    """Why ``image_shape`` cannot be built, in one line, or ``None`` if it can.

    Args:
        image_shape: ``(H, W, C)`` of the dataset.
        name: architecture name used in the message.
    """
    height, width, channels = image_shape
    if channels < 1:
        return f"{name} needs images with at least one channel, got shape {tuple(image_shape)}"
    try:
        plan_upsampling(height, width, name=name)
    except ConfigError as exc:
        return str(exc)
    return None


def generator_body(x: keras.KerasTensor, ctx: BuildContext, hp: Mapping[str, Any], name: str) -> keras.KerasTensor:
    """Project a vector to the start grid and upsample it to a ``tanh`` image of ``ctx.image_shape``.

    Args:
        x: ``(batch, features)`` input: ``z``, or ``z`` joined with a label embedding.
        ctx: the build context; its image shape fixes the output.
        hp: resolved hyperparameters (``base_filters``, ``kernel_size``).
        name: architecture name, for error messages.
    """
    from keras import layers

    height, width, channels = ctx.image_shape
    plan = plan_upsampling(height, width, name=name)
    filters = plan.level_filters(hp["base_filters"])
    kernel = hp["kernel_size"]

    # Biases are dropped before batch norm: its shift makes them redundant.
    h = layers.Dense(plan.start_height * plan.start_width * filters[0], use_bias=False, name="g_project")(x)
    h = layers.BatchNormalization(name="g_project_bn")(h)
    h = layers.ReLU(name="g_project_relu")(h)
    h = layers.Reshape((plan.start_height, plan.start_width, filters[0]), name="g_reshape")(h)
    for level in range(1, plan.steps):
        h = layers.Conv2DTranspose(filters[level], kernel, strides=2, padding="same", use_bias=False, name=f"g_up{level}")(h)
        h = layers.BatchNormalization(name=f"g_up{level}_bn")(h)
        h = layers.ReLU(name=f"g_up{level}_relu")(h)
    # The last stride-2 layer lands exactly on (H, W, C); no batch norm on the output (paper, section 3).
    h = layers.Conv2DTranspose(channels, kernel, strides=2, padding="same", name="g_to_image")(h)
    # float32 so mixed-precision runs still emit images in full precision.
    return layers.Activation("tanh", dtype="float32", name="g_tanh")(h)


def discriminator_body(images: keras.KerasTensor, ctx: BuildContext, hp: Mapping[str, Any], name: str) -> keras.KerasTensor:
    """Strided convolutions from the image down to the generator's start grid.

    Mirrors :func:`generator_body`: the same number of stride-2 steps and the
    same widths in reverse, so both networks have comparable capacity.

    Args:
        images: ``(batch, H, W, C)`` input.
        ctx: the build context.
        hp: resolved hyperparameters (``base_filters``, ``kernel_size``,
            ``leaky_slope``, ``dropout``, ``d_batchnorm``).
        name: architecture name, for error messages.

    Returns:
        The ``(batch, start_height, start_width, filters)`` feature map.
    """
    from keras import layers

    plan = plan_upsampling(ctx.height, ctx.width, name=name)
    filters = plan.level_filters(hp["base_filters"])[::-1]
    h = images
    for block in range(plan.steps):
        label = f"d_down{block + 1}"
        h = layers.Conv2D(filters[block], hp["kernel_size"], strides=2, padding="same", name=label)(h)
        # The paper leaves the input layer without batch norm.
        if hp["d_batchnorm"] and block > 0:
            h = layers.BatchNormalization(name=f"{label}_bn")(h)
        h = layers.LeakyReLU(negative_slope=hp["leaky_slope"], name=f"{label}_lrelu")(h)
        if hp["dropout"] > 0:
            h = layers.Dropout(hp["dropout"], name=f"{label}_dropout")(h)
    return h


def build_generator(ctx: BuildContext) -> keras.Model:
    """DCGAN generator: ``z (batch, latent_dim) -> images (batch, H, W, C)`` in ``[-1, 1]``.

    Args:
        ctx: image shape, latent size and hyperparameters (missing ones take their defaults).
    """
    import keras

    hp = resolve_params(PARAMS, ctx.hparams, "architecture 'dcgan'")
    z = keras.Input((ctx.latent_dim,), name="z")
    return keras.Model(z, generator_body(z, ctx, hp, "dcgan"), name="dcgan_generator")


def build_discriminator(ctx: BuildContext) -> keras.Model:
    """DCGAN discriminator: ``images (batch, H, W, C) -> logits (batch, 1)``.

    Args:
        ctx: image shape and hyperparameters (missing ones take their defaults).
    """
    import keras
    from keras import layers

    hp = resolve_params(PARAMS, ctx.hparams, "architecture 'dcgan'")
    images = keras.Input(ctx.image_shape, name="images")
    h = discriminator_body(images, ctx, hp, "dcgan")
    h = layers.Flatten(name="d_flatten")(h)
    logit = layers.Dense(1, dtype="float32", name="d_logit")(h)
    return keras.Model(images, logit, name="dcgan_discriminator")


def check_shape(image_shape: tuple[int, int, int]) -> str | None:
    """Why DCGAN cannot make images of ``image_shape``, or ``None``."""
    return shape_problem(image_shape, name="dcgan")


SPEC = ArchitectureSpec(
    name="dcgan",
    description="Deep convolutional GAN: transposed-conv generator, strided-conv discriminator, sized to the data",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    params=PARAMS,
    reference=REFERENCE,
    check_shape=check_shape,
)
