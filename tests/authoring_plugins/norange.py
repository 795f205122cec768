"""An architecture whose generator has no tanh: its pixels leave [-1, 1]."""

import ganlab


def _generator(ctx):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    x = layers.Dense(ctx.height * ctx.width * ctx.channels, kernel_initializer="ones")(z)  # linear, large values
    return keras.Model(z, layers.Reshape(ctx.image_shape)(x))


def _discriminator(ctx):
    import keras
    from keras import layers

    images = keras.Input(ctx.image_shape)
    return keras.Model(images, layers.Dense(1)(layers.Flatten()(images)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name="norange", description="no tanh", build_generator=_generator, build_discriminator=_discriminator,
    ))
