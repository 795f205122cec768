"""A tiny dataset and GAN for training-engine tests: seconds per run on a CPU.

The dataset is 8x8 grey images of three classes (a horizontal bar, a vertical
bar, a diagonal) at random positions, so a generator can learn something in a
few hundred steps. The networks are small MLPs with the state that makes a
training loop hard to get right: batch norm statistics in G, dropout seeds in
D, and optionally a call counter in D that turns its output into NaN after a
given number of training calls (to test divergence at an exact step).
"""

from __future__ import annotations

import numpy as np

from ganlab import ArchitectureSpec, DatasetSpec, ImageData, Param, hookimpl


def make_images(n: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n).astype(np.int32)
    images = rng.integers(0, 40, size=(n, size, size, 1)).astype(np.uint8)
    pos = rng.integers(1, size - 1, size=n)
    for i, (label, p) in enumerate(zip(labels, pos)):
        if label == 0:
            images[i, p, :, 0] = 230
        elif label == 1:
            images[i, :, p, 0] = 230
        else:
            images[i, np.arange(size), np.arange(size), 0] = 230
    return images, labels


def load(params):
    images, labels = make_images(int(params["n"]), int(params["data_seed"]))
    return ImageData(images, labels, ("hbar", "vbar", "diag"))


ARCH_PARAMS = (
    Param("width", int, 16, "hidden units", low=1),
    Param("nan_after_calls", int, 0, "D returns NaN after this many training calls (0: never)", low=0),
    Param("frozen_g", bool, False, "G draws one grey image whatever its noise, and never learns"),
)


def _nan_after_layer(calls: int):
    import keras

    class NanAfter(keras.layers.Layer):
        """Counts training calls in a non-trainable variable; adds NaN once past ``calls``."""

        def __init__(self, calls: int, **kwargs):
            super().__init__(**kwargs)
            self.calls = calls

        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="count")

        def call(self, x, training=False):
            if training:
                self.count.assign(self.count + 1)
            # A constant branch: "x * nan" would make the gradient NaN even where it is not selected.
            return keras.ops.where(self.count > self.calls, float("nan"), x)

    return NanAfter(calls)


def build_generator(ctx):
    import keras
    from keras import layers

    width = ctx.hparams.get("width", 16)
    z = keras.Input((ctx.latent_dim,))
    inputs, h = z, z
    if ctx.num_classes:
        label = keras.Input((), dtype="int32")
        inputs = [z, label]
        h = layers.Concatenate()([z, layers.Embedding(ctx.num_classes, 4)(label)])
    h = layers.Dense(width)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Dense(int(np.prod(ctx.image_shape)), activation="tanh", dtype="float32")(h)
    if ctx.hparams.get("frozen_g", False):
        # Times zero: the same image for every z (collapse), a constant FD (no improvement), zero gradients.
        h = h * 0.0
    return keras.Model(inputs, layers.Reshape(ctx.image_shape)(h))


def build_discriminator(ctx):
    import keras
    from keras import layers

    width = ctx.hparams.get("width", 16)
    images = keras.Input(ctx.image_shape)
    inputs, h = images, layers.Flatten()(images)
    if ctx.num_classes:
        label = keras.Input((), dtype="int32")
        inputs = [images, label]
        h = layers.Concatenate()([h, layers.Embedding(ctx.num_classes, 4)(label)])
    h = layers.Dense(width)(h)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.Dropout(0.2)(h)
    h = layers.Dense(1, dtype="float32")(h)
    if ctx.hparams.get("nan_after_calls", 0):
        h = _nan_after_layer(int(ctx.hparams["nan_after_calls"]))(h)
    return keras.Model(inputs, h)


@hookimpl
def register_architectures(register):
    for name, conditional in (("tiny", False), ("tiny-cond", True)):
        register(
            ArchitectureSpec(
                name=name,
                description="two-layer MLPs for engine tests",
                build_generator=build_generator,
                build_discriminator=build_discriminator,
                params=ARCH_PARAMS,
                conditional=conditional,
            )
        )


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="tiny-bars",
            description="8x8 bars in three classes",
            load=load,
            params=(Param("n", int, 256, "images", low=1), Param("data_seed", int, 0, "seed of the generated images")),
        )
    )
