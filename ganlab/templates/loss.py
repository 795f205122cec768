"""A ganlab loss plugin: least squares (Mao et al. 2017) with an optional R1 penalty (Mescheder et al. 2018).

Check it with:  ganlab plugins check my-loss
Queue it with:  ganlab queue add --loss my-loss --arch mlp --steps 200
"""

import ganlab

NAME = "my-loss"


def discriminator_loss(real_logits, fake_logits, params):
    """Real logits towards 1, fake ones towards 0; returns a float32 scalar."""
    from keras import ops

    # Cast first: under mixed precision the logits arrive as float16 or bfloat16.
    real, fake = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    return 0.5 * (ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake)))


def generator_loss(fake_logits, params):
    """Fake logits towards 1."""
    from keras import ops

    return 0.5 * ops.mean(ops.square(ops.cast(fake_logits, "float32") - 1.0))


def regularizer(ctx, params):
    """R1: gamma / 2 * E|grad_x D(x)|^2 on real images, added to the discriminator's loss."""
    from keras import ops

    if params["r1_gamma"] == 0:
        return ops.zeros((), dtype="float32")
    grads = ops.cast(ctx.input_gradient(ctx.discriminator, ctx.real), "float32")  # the engine's, any backend
    per_image = ops.sum(ops.square(grads), axis=tuple(range(1, len(grads.shape))))
    return 0.5 * params["r1_gamma"] * ops.mean(per_image)


@ganlab.hookimpl
def register_losses(register):
    register(ganlab.LossSpec(
        name=NAME,
        description="least squares with an optional R1 penalty (edit me)",
        discriminator_loss=discriminator_loss,
        generator_loss=generator_loss,
        regularizer=regularizer,
        params=(ganlab.Param("r1_gamma", float, 1.0, "weight of the R1 penalty (0: off)", low=0.0, high=1000.0),),
        # Recommended optimiser settings; users can still --set them.
        defaults=ganlab.TrainingDefaults(n_critic=1, lr_g=2e-4, lr_d=2e-4, beta_1=0.5, beta_2=0.999),
    ))
