"""A loss whose discriminator term is NaN (the log of a negative number)."""

import ganlab


def _d_loss(real, fake, params):
    from keras import ops

    return ops.mean(ops.log(-ops.abs(ops.cast(real, "float32")) - 1.0))


def _g_loss(fake, params):
    from keras import ops

    return ops.mean(ops.softplus(-ops.cast(fake, "float32")))


@ganlab.hookimpl
def register_losses(register):
    register(ganlab.LossSpec(name="nanloss", description="NaN", discriminator_loss=_d_loss, generator_loss=_g_loss))
