"""A tiny MLP GAN whose generator can take its time to build, to stop a worker's child at that stage."""

import sys
import time

import ganlab

BUILDING = "slow-build: building the generator"


def build_generator(ctx):
    seconds = float(ctx.hparams["build_s"])
    if seconds:
        print(BUILDING, file=sys.stderr, flush=True)  # the child's stderr is its run's train.log
        time.sleep(seconds)
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    h = layers.Dense(16, activation="relu")(z)
    h = layers.Dense(ctx.height * ctx.width * ctx.channels, activation="tanh")(h)
    return keras.Model(z, layers.Reshape(ctx.image_shape)(h))


def build_discriminator(ctx):
    import keras
    from keras import layers

    x = keras.Input(ctx.image_shape)
    h = layers.Dense(16)(layers.Flatten()(x))
    return keras.Model(x, layers.Dense(1)(layers.LeakyReLU(0.2)(h)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name="slow-build",
        description="tiny MLP pair whose generator build can sleep",
        build_generator=build_generator,
        build_discriminator=build_discriminator,
        params=(ganlab.Param("build_s", float, 0.0, "seconds the generator's build sleeps", low=0.0),),
    ))
