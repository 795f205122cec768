"""An architecture whose discriminator returns 4 numbers per image instead of one logit."""

import ganlab


def _generator(ctx):
    import keras
    from keras import layers

    z = keras.Input((ctx.latent_dim,))
    x = layers.Dense(ctx.height * ctx.width * ctx.channels, activation="tanh")(z)
    return keras.Model(z, layers.Reshape(ctx.image_shape)(x))


def _discriminator(ctx):
    import keras
    from keras import layers

    images = keras.Input(ctx.image_shape)
    return keras.Model(images, layers.Dense(4)(layers.Flatten()(images)))


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name="baddisc", description="four logits per image", build_generator=_generator,
        build_discriminator=_discriminator,
    ))
