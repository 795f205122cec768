"""An augmentation that halves the images' width (the discriminator would see another shape)."""

import ganlab


@ganlab.hookimpl
def register_augmentations(register):
    register(ganlab.AugmentationSpec(name="shrinkaug", description="halves the width",
                                     apply=lambda images, ctx: images[:, :, ::2, :]))
