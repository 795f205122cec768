"""An architecture that fails on purpose, to test how the worker handles each kind of crash."""

import os
import signal

import ganlab


def _fail(ctx):
    fault = ctx.hparams["fault"]
    if fault == "raise":
        raise RuntimeError("injected failure while building the generator")
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "oom":
        raise MemoryError("injected: out of memory while allocating the generator")


def build_generator(ctx):
    _fail(ctx)
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
        name="faulty",
        description="tiny MLP pair that can fail on purpose",
        build_generator=build_generator,
        build_discriminator=build_discriminator,
        params=(ganlab.Param("fault", str, "none", "how to fail", choices=("none", "raise", "sigkill", "oom")),),
    ))
