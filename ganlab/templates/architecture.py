"""A ganlab architecture plugin: a generator and a discriminator.

Check it with:  ganlab plugins check my-architecture
Queue it with:  ganlab queue add --arch my-architecture --dataset digits --steps 200
"""

import ganlab

NAME = "my-architecture"


def build_generator(ctx):
    """z (batch, latent_dim) -> images (batch, H, W, C) in [-1, 1]."""
    import keras  # imported here: 'ganlab plugins' lists plugins without starting Keras
    from keras import layers

    height, width, channels = ctx.image_shape  # the dataset's shape: the generator must make exactly this
    z = keras.Input((ctx.latent_dim,))
    x = layers.Dense(ctx.hparams["units"])(z)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(height * width * channels)(x)
    x = layers.Reshape((height, width, channels))(x)
    # tanh keeps images in [-1, 1], the range real images are scaled to; float32 even under mixed precision.
    images = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(z, images, name=f"{NAME}_generator")


def build_discriminator(ctx):
    """images (batch, H, W, C) -> one logit per image, shape (batch, 1); no sigmoid, the loss applies it."""
    import keras
    from keras import layers

    images = keras.Input(ctx.image_shape)
    x = layers.Flatten()(images)
    x = layers.Dense(ctx.hparams["units"])(x)
    x = layers.LeakyReLU(0.2)(x)
    logits = layers.Dense(1, dtype="float32")(x)
    return keras.Model(images, logits, name=f"{NAME}_discriminator")


@ganlab.hookimpl
def register_architectures(register):
    register(ganlab.ArchitectureSpec(
        name=NAME,
        description="dense generator and discriminator (edit me)",
        build_generator=build_generator,
        build_discriminator=build_discriminator,
        # Every knob is declared: 'queue add --set units=64' is checked against it; builders read ctx.hparams.
        params=(ganlab.Param("units", int, 128, "hidden units of each network", low=4, high=4096),),
    ))
