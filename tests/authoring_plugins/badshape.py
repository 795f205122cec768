"""An architecture whose generator always makes 8x8 images, whatever the data set's shape."""

import ganlab


def _generator(ctx):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    x = layers.Dense(8 * 8 * ctx.channels, activation="tanh")(layers.Dense(ctx.hparams["units"])(z))
    return keras.Model(z, layers.Reshape((8, 8, ctx.channels))(x))


def _discriminator(ctx):
    import keras
    from keras import layers

    images = keras.Input(ctx.image_shape)
    return keras.Model(images, layers.Dense(1)(layers.Flatten()(images)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name="badshape", description="makes 8x8 images", build_generator=_generator, build_discriminator=_discriminator,
        params=(ganlab.Param("units", int, 16, "hidden units", low=1, high=256),),
    ))
