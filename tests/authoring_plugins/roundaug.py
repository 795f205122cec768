"""An augmentation that rounds pixels: no gradient reaches the generator through it."""

import ganlab


def _round(images, ctx):
    from keras import ops

    return ops.round(images * 4.0) / 4.0


@ganlab.hookimpl
def register_augmentations(register):
    register(ganlab.AugmentationSpec(name="roundaug", description="rounds pixels", apply=_round))
