"""Class-conditional DCGAN with a projection discriminator.

References:
    Radford, Metz, Chintala. "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016, arXiv:1511.06434.
    Miyato, Koyama. "cGANs with Projection Discriminator", ICLR 2018,
    arXiv:1802.05637.

The generator joins a learned label embedding to ``z`` before the DCGAN
stack. The discriminator scores ``linear(phi(x)) + <embed(y), phi(x)>``,
where ``phi(x)`` is the DCGAN feature map summed over space: the label
enters as an inner product with the features rather than being concatenated
to the input, which Miyato and Koyama found gives better class-conditional
samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ganlab.builtin.architectures import dcgan
from ganlab.errors import ConfigError
from ganlab.params import Param, resolve_params
from ganlab.specs import ArchitectureSpec, BuildContext

if TYPE_CHECKING:  # keras is imported inside the builders: listing plugins must not start a backend
    import keras

REFERENCE = "Radford et al. 2016, arXiv:1511.06434; projection discriminator: Miyato & Koyama 2018, arXiv:1802.05637"

PARAMS: tuple[Param, ...] = dcgan.PARAMS + (
    Param("label_embed_dim", int, 50, "length of the label embedding joined to z in the generator", low=1, high=1024),
)
_OWNER = "architecture 'cdcgan'"


def _num_classes(ctx: BuildContext) -> int:
    if ctx.num_classes is None or ctx.num_classes < 1:
        raise ConfigError("architecture 'cdcgan' is class-conditional; it needs a dataset with labels (num_classes is None)")
    return ctx.num_classes


def _label_input() -> keras.KerasTensor:
    import keras

    # Integer ids of shape (batch,), as the spec's calling convention says.
    return keras.Input((), dtype="int32", name="labels")


def build_generator(ctx: BuildContext) -> keras.Model:
    """Conditional generator: ``[z (batch, latent_dim), labels (batch,)] -> images (batch, H, W, C)``.

    Args:
        ctx: image shape, number of classes, latent size and hyperparameters.
    """
    import keras
    from keras import layers

    hp = resolve_params(PARAMS, ctx.hparams, _OWNER)
    z = keras.Input((ctx.latent_dim,), name="z")
    labels = _label_input()
    embedded = layers.Embedding(_num_classes(ctx), hp["label_embed_dim"], name="g_label_embed")(labels)
    joined = layers.Concatenate(name="g_z_label")([z, embedded])
    images = dcgan.generator_body(joined, ctx, hp, "cdcgan")
    return keras.Model([z, labels], images, name="cdcgan_generator")


def build_discriminator(ctx: BuildContext) -> keras.Model:
    """Projection discriminator: ``[images (batch, H, W, C), labels (batch,)] -> logits (batch, 1)``.

    Args:
        ctx: image shape, number of classes and hyperparameters.
    """
    import keras
    from keras import layers

    hp = resolve_params(PARAMS, ctx.hparams, _OWNER)
    num_classes = _num_classes(ctx)
    images = keras.Input(ctx.image_shape, name="images")
    labels = _label_input()
    features = dcgan.discriminator_body(images, ctx, hp, "cdcgan")
    # Global sum pooling, as in the paper: phi(x) has one entry per channel.
    phi = keras.ops.sum(features, axis=(1, 2))
    # The head runs in float32 so mixed-precision logits keep their resolution.
    unconditional = layers.Dense(1, dtype="float32", name="d_linear")(phi)
    class_embedding = layers.Embedding(num_classes, features.shape[-1], dtype="float32", name="d_class_embed")(labels)
    projection = layers.Dot(axes=1, dtype="float32", name="d_projection")([class_embedding, phi])
    logit = layers.Add(dtype="float32", name="d_logit")([unconditional, projection])
    return keras.Model([images, labels], logit, name="cdcgan_discriminator")


def check_shape(image_shape: tuple[int, int, int]) -> str | None:
    """Why cDCGAN cannot make images of ``image_shape``, or ``None``."""
    return dcgan.shape_problem(image_shape, name="cdcgan")


SPEC = ArchitectureSpec(
    name="cdcgan",
    description="Class-conditional DCGAN: label-embedding generator, projection discriminator",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    params=PARAMS,
    reference=REFERENCE,
    conditional=True,
    check_shape=check_shape,
)
