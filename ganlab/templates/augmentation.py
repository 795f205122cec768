"""A ganlab augmentation plugin: random horizontal flips and brightness, on everything the discriminator sees.

Check it with:  ganlab plugins check my-augment
Queue it with:  ganlab queue add --augment my-augment --arch mlp --steps 200 --set augment.flip=0.5
"""

import ganlab

NAME = "my-augment"


def apply(images, ctx):
    """Images (B, H, W, C) in [-1, 1] in, the same shape and dtype out; differentiable, keras.ops only."""
    import keras
    from keras import ops

    batch = images.shape[0]
    # Every random draw takes ctx.next_seed(): a run (and its resume) draws the same numbers on every backend.
    flip = keras.random.uniform((batch, 1, 1, 1), seed=ctx.next_seed()) < ctx.params["flip"]
    images = ops.where(flip, ops.flip(images, axis=2), images)
    shift = keras.random.uniform((batch, 1, 1, 1), -1.0, 1.0, seed=ctx.next_seed()) * ctx.params["brightness"]
    return images + ops.cast(shift, images.dtype)


@ganlab.hookimpl
def register_augmentations(register):
    register(ganlab.AugmentationSpec(
        name=NAME,
        description="random horizontal flips and brightness (edit me)",
        apply=apply,
        params=(
            ganlab.Param("flip", float, 0.5, "probability of flipping an image left to right", low=0.0, high=1.0),
            ganlab.Param("brightness", float, 0.2, "add U(-b, b) to every pixel of an image", low=0.0, high=1.0),
        ),
    ))
