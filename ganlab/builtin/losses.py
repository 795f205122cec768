"""Built-in adversarial losses: minimax, non-saturating (+R1), WGAN-GP, hinge, LSGAN.

Every loss takes raw discriminator outputs (logits), casts them to float32
first, averages over the batch and returns a float32 scalar. The cast comes
first because under a mixed precision policy the logits arrive as float16 or
bfloat16, where ``softplus`` of a large logit or a mean over a large batch
loses most of its digits (or overflows in float16).

Log-sigmoid terms are written with ``softplus``, which is stable for logits
of any size: ``-log sigmoid(x) = softplus(-x)`` and
``-log(1 - sigmoid(x)) = softplus(x)``.

Only ``keras.ops`` and ``keras.random`` are used, so the losses run on every
backend; input gradients for penalties come from ``ctx.input_gradient``,
which the engine implements per backend. Keras is imported inside functions:
listing plugins must not start a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ganlab.hookspecs import hookimpl
from ganlab.params import Param
from ganlab.specs import LossSpec, RegularizerContext, TrainingDefaults

__all__ = ["register_losses"]

# Used only when the engine supplies no seed. An int seed makes keras.random
# draw the same numbers on every call, so the engine should pass a fresh seed
# (a SeedGenerator, or a JAX key) each step; this keeps the loss usable
# stand-alone, e.g. in a notebook.
_FALLBACK_SEED = 1337

# Keeps the gradient of sqrt finite where an input gradient is exactly zero.
_NORM_EPS = 1e-12


def _f32(x: Any) -> Any:
    import keras

    return keras.ops.cast(x, "float32")


def _mean(x: Any) -> Any:
    import keras

    return keras.ops.mean(x)


def _zero() -> Any:
    import keras

    return keras.ops.convert_to_tensor(0.0, dtype="float32")


def _sum_sq_per_example(g: Any) -> Any:
    """``sum(g**2)`` over every axis but the batch axis, in float32."""
    import keras

    g = _f32(g)
    axes = tuple(range(1, len(g.shape)))
    return keras.ops.sum(keras.ops.square(g), axis=axes)


# ------------------------------------------------------------------- minimax


def minimax_d_loss(real: Any, fake: Any, params: Mapping[str, Any]) -> Any:
    """``-[log D(x) + log(1 - D(G(z)))]``, Goodfellow et al. 2014 (arXiv:1406.2661), eq. 1."""
    import keras

    real, fake = _f32(real), _f32(fake)
    return _mean(keras.ops.softplus(-real)) + _mean(keras.ops.softplus(fake))


def minimax_g_loss(fake: Any, params: Mapping[str, Any]) -> Any:
    """The saturating generator loss ``log(1 - D(G(z)))`` of Goodfellow et al. 2014.

    Its gradient with respect to the logit is ``-sigmoid(logit)``, which
    vanishes when the discriminator confidently rejects the samples: the
    reason the paper itself suggests the non-saturating form.
    """
    import keras

    return -_mean(keras.ops.softplus(_f32(fake)))


# ------------------------------------------------------------ non-saturating


def nonsat_d_loss(real: Any, fake: Any, params: Mapping[str, Any]) -> Any:
    """Binary cross-entropy with one-sided label smoothing on the real targets.

    With smoothing ``s`` the real target is ``1 - s`` (Salimans et al. 2016,
    arXiv:1606.03498, sec. 3.4): ``(1-s)*softplus(-r) + s*softplus(r)``. Fake
    targets stay 0; smoothing them too would reward the generator for
    samples the discriminator already finds fake.
    """
    import keras

    s = float(params.get("label_smoothing", 0.0))
    real, fake = _f32(real), _f32(fake)
    real_term = (1.0 - s) * keras.ops.softplus(-real)
    if s:
        real_term = real_term + s * keras.ops.softplus(real)
    return _mean(real_term) + _mean(keras.ops.softplus(fake))


def nonsat_g_loss(fake: Any, params: Mapping[str, Any]) -> Any:
    """``-log D(G(z))``, the generator loss Goodfellow et al. 2014 recommend in practice."""
    import keras

    return _mean(keras.ops.softplus(-_f32(fake)))


def r1_penalty(ctx: RegularizerContext, params: Mapping[str, Any]) -> Any:
    """R1: ``gamma/2 * E ||grad_x D(x_real)||^2`` (Mescheder et al. 2018, arXiv:1801.04406, eq. 9).

    With ``r1_gamma == 0`` it returns a constant zero without calling the
    discriminator or taking a gradient. Parameters are plain Python values,
    so the branch is decided once when the step is traced, and the compiled
    step holds no penalty computation at all.
    """
    gamma = float(params.get("r1_gamma", 0.0))
    if gamma == 0.0:
        return _zero()
    grad = ctx.input_gradient(ctx.discriminator, ctx.real)
    return (gamma / 2.0) * _mean(_sum_sq_per_example(grad))


# ------------------------------------------------------------------- WGAN-GP


def wgan_d_loss(real: Any, fake: Any, params: Mapping[str, Any]) -> Any:
    """Critic loss ``E[D(G(z))] - E[D(x)]`` (Arjovsky et al. 2017; Gulrajani et al. 2017, alg. 1)."""
    return _mean(_f32(fake)) - _mean(_f32(real))


def wgan_g_loss(fake: Any, params: Mapping[str, Any]) -> Any:
    """Generator loss ``-E[D(G(z))]``."""
    return -_mean(_f32(fake))


def gradient_penalty(ctx: RegularizerContext, params: Mapping[str, Any]) -> Any:
    """``lambda * E(||grad D(x_hat)|| - 1)^2`` on random interpolates (Gulrajani et al. 2017, arXiv:1704.00028, eq. 3).

    ``x_hat = real + eps * (fake - real)`` with one ``eps ~ U[0, 1]`` per
    example. The interpolates are built in the images' own dtype so the
    discriminator sees what it sees in training under a mixed policy; the
    norm is taken in float32.
    """
    import keras

    weight = float(params.get("gp_weight", 10.0))
    if weight == 0.0:
        return _zero()
    real, fake = ctx.real, ctx.fake
    ndim = len(real.shape)
    batch = keras.ops.shape(real)[0]
    seed = ctx.seed if ctx.seed is not None else _FALLBACK_SEED
    eps = keras.random.uniform((batch,) + (1,) * (ndim - 1), dtype="float32", seed=seed)
    eps = keras.ops.cast(eps, real.dtype)
    x_hat = real + eps * (keras.ops.cast(fake, real.dtype) - real)
    grad = ctx.input_gradient(ctx.discriminator, x_hat)
    norm = keras.ops.sqrt(_sum_sq_per_example(grad) + _NORM_EPS)
    return weight * _mean(keras.ops.square(norm - 1.0))


# --------------------------------------------------------------------- hinge


def hinge_d_loss(real: Any, fake: Any, params: Mapping[str, Any]) -> Any:
    """``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`` (Lim & Ye 2017, arXiv:1705.02894)."""
    import keras

    real, fake = _f32(real), _f32(fake)
    return _mean(keras.ops.relu(1.0 - real)) + _mean(keras.ops.relu(1.0 + fake))


def hinge_g_loss(fake: Any, params: Mapping[str, Any]) -> Any:
    """``-E[D(G(z))]``, as in Miyato et al. 2018 (arXiv:1802.05957) and later SAGAN/BigGAN."""
    return -_mean(_f32(fake))


# --------------------------------------------------------------------- LSGAN


def lsgan_d_loss(real: Any, fake: Any, params: Mapping[str, Any]) -> Any:
    """``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]`` (Mao et al. 2017, arXiv:1611.04076, eq. 2).

    ``D`` is the raw output: least squares replaces the sigmoid
    cross-entropy, so no sigmoid is applied.
    """
    import keras

    a, b = float(params.get("a", 0.0)), float(params.get("b", 1.0))
    real, fake = _f32(real), _f32(fake)
    return 0.5 * _mean(keras.ops.square(real - b)) + 0.5 * _mean(keras.ops.square(fake - a))


def lsgan_g_loss(fake: Any, params: Mapping[str, Any]) -> Any:
    """``1/2 E[(D(G(z)) - c)^2]`` (Mao et al. 2017, eq. 2)."""
    import keras

    c = float(params.get("c", 1.0))
    return 0.5 * _mean(keras.ops.square(_f32(fake) - c))


# ------------------------------------------------------------------ registry


# Adam as in DCGAN (Radford et al. 2016, arXiv:1511.06434): lr 2e-4, beta_1 0.5.
_DCGAN_ADAM = TrainingDefaults(n_critic=1, lr_g=2e-4, lr_d=2e-4, beta_1=0.5, beta_2=0.999)


def _specs() -> list[LossSpec]:
    return [
        LossSpec(
            name="minimax",
            description="original minimax GAN loss with the saturating generator objective log(1 - D(G(z)))",
            discriminator_loss=minimax_d_loss,
            generator_loss=minimax_g_loss,
            reference="Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661",
            defaults=_DCGAN_ADAM,
        ),
        LossSpec(
            name="non-saturating",
            description="standard GAN loss: G maximises log D(G(z)); optional label smoothing and R1 penalty",
            discriminator_loss=nonsat_d_loss,
            generator_loss=nonsat_g_loss,
            params=(
                Param(
                    "label_smoothing", float, 0.0,
                    "one-sided smoothing: D's real targets become 1 - label_smoothing",
                    low=0.0, high=0.5,
                ),
                Param(
                    "r1_gamma", float, 0.0,
                    "weight of the R1 penalty gamma/2 * E||grad D(x_real)||^2 (0: off, costs nothing)",
                    low=0.0, high=1e4,
                ),
            ),
            reference=(
                "Goodfellow et al. 2014, arXiv:1406.2661; "
                "R1: Mescheder et al. 2018, Which Training Methods for GANs do actually Converge?, arXiv:1801.04406"
            ),
            regularizer=r1_penalty,
            defaults=_DCGAN_ADAM,
        ),
        LossSpec(
            name="wgan-gp",
            description="Wasserstein critic loss with a gradient penalty on real/fake interpolates",
            discriminator_loss=wgan_d_loss,
            generator_loss=wgan_g_loss,
            params=(
                Param("gp_weight", float, 10.0, "lambda, weight of the gradient penalty", low=0.0, high=1e4),
            ),
            reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, arXiv:1704.00028",
            regularizer=gradient_penalty,
            # Algorithm 1 of the paper: n_critic 5, alpha 1e-4, beta_1 0, beta_2 0.9.
            defaults=TrainingDefaults(n_critic=5, lr_g=1e-4, lr_d=1e-4, beta_1=0.0, beta_2=0.9),
        ),
        LossSpec(
            name="hinge",
            description="hinge loss: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G minimises -D(G(z))",
            discriminator_loss=hinge_d_loss,
            generator_loss=hinge_g_loss,
            reference=(
                "Lim & Ye 2017, Geometric GAN, arXiv:1705.02894; "
                "Miyato et al. 2018, Spectral Normalization for GANs, arXiv:1802.05957"
            ),
            # The two-timescale setting SAGAN used with the hinge loss (Zhang et
            # al. 2019, arXiv:1805.08318): one D step per G step, lr_d 4e-4,
            # lr_g 1e-4, beta_1 0, beta_2 0.9.
            defaults=TrainingDefaults(n_critic=1, lr_g=1e-4, lr_d=4e-4, beta_1=0.0, beta_2=0.9),
        ),
        LossSpec(
            name="lsgan",
            description="least-squares GAN: D regresses real to b and fake to a, G pushes fakes to c",
            discriminator_loss=lsgan_d_loss,
            generator_loss=lsgan_g_loss,
            params=(
                Param("a", float, 0.0, "D's target for generated images", low=-10.0, high=10.0),
                Param("b", float, 1.0, "D's target for real images", low=-10.0, high=10.0),
                Param("c", float, 1.0, "the value G wants D to give its images (a=-1, b=1, c=0: Pearson chi2)",
                      low=-10.0, high=10.0),
            ),
            reference="Mao et al. 2017, Least Squares Generative Adversarial Networks, arXiv:1611.04076",
            # Adam with beta_1 0.5 as in the paper's experiments; lr 2e-4 as in DCGAN.
            defaults=_DCGAN_ADAM,
        ),
    ]


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register the five built-in losses."""
    for spec in _specs():
        register(spec)
