"""Checking a loss plugin: its terms on random logits (scalar, finite) and its regulariser's gradient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ganlab.plugin_check.report import CheckFailed, Report
from ganlab.registry import Registry
from ganlab.specs import LossSpec, RegularizerContext

_BATCH = 16
_IMAGE = (8, 8, 1)  # the regulariser's probe discriminator works on small images


def check_loss(registry: Registry, name: str, params: Mapping[str, Any], report: Report) -> None:
    """Fill ``report``; raise CheckFailed at the first problem."""
    import keras

    spec = registry.loss(name)
    rng = np.random.default_rng(0)
    # Logits of a discriminator that is neither sure nor lost: both signs, a few units wide.
    real = keras.ops.convert_to_tensor(rng.normal(1.0, 2.0, (_BATCH, 1)).astype("float32"))
    fake = keras.ops.convert_to_tensor(rng.normal(-1.0, 2.0, (_BATCH, 1)).astype("float32"))
    d_value = _scalar(name, "discriminator_loss", lambda: spec.discriminator_loss(real, fake, params))
    g_value = _scalar(name, "generator_loss", lambda: spec.generator_loss(fake, params))
    report.facts["discriminator loss"] = f"{d_value:.4g} on random logits ({_BATCH}, 1)"
    report.facts["generator loss"] = f"{g_value:.4g}"
    d = spec.defaults
    report.facts["recommended"] = f"n_critic={d.n_critic} lr_g={d.lr_g:g} lr_d={d.lr_d:g} beta_1={d.beta_1:g} beta_2={d.beta_2:g}"
    if spec.regularizer is None:
        report.facts["regulariser"] = "none"
        return
    value, norm = _regulariser(spec, params, rng)
    report.facts["regulariser"] = f"{value:.4g}, gradient norm w.r.t. a probe discriminator's weights {norm:.4g}"


def _scalar(loss: str, term: str, compute: Any) -> float:
    try:
        value = np.asarray(compute(), dtype="float64")
    except Exception as exc:  # noqa: BLE001 - the plugin's error, named in one line
        raise CheckFailed(f"loss {loss!r}: {term} failed on random logits: {type(exc).__name__}: {exc}") from exc
    if value.shape != ():
        raise CheckFailed(f"loss {loss!r}: {term} returns shape {value.shape}; it must return one scalar (use keras.ops.mean)")
    if not np.isfinite(value):
        raise CheckFailed(f"loss {loss!r}: {term} returns {float(value)} on random logits; it must be finite")
    return float(value)


def _probe_discriminator() -> Any:
    import keras

    images = keras.Input(_IMAGE)
    h = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(images))
    return keras.Model(images, keras.layers.Dense(1)(h), name="probe_discriminator")


def _regulariser(spec: LossSpec, params: Mapping[str, Any], rng: np.random.Generator) -> tuple[float, float]:
    """The regulariser's value and the norm of its gradient with respect to the discriminator's weights."""
    import keras

    from ganlab.training.autodiff import input_gradient

    disc = _probe_discriminator()
    real = rng.uniform(-1, 1, (_BATCH, *_IMAGE)).astype("float32")
    fake = rng.uniform(-1, 1, (_BATCH, *_IMAGE)).astype("float32")

    def context(discriminator: Any, seed: Any) -> RegularizerContext:
        return RegularizerContext(real=real, fake=fake, labels=None, discriminator=discriminator,
                                  input_gradient=input_gradient, seed=seed)

    try:
        if keras.backend.backend() == "jax":
            import jax

            ntv = [v.value for v in disc.non_trainable_variables]

            def value_of(tv: list[Any]) -> Any:
                ctx = context(lambda x: disc.stateless_call(tv, ntv, x, training=True)[0], jax.random.key(0))
                return keras.ops.cast(spec.regularizer(ctx, params), "float32")

            value, grads = jax.value_and_grad(value_of)([v.value for v in disc.trainable_variables])
        else:
            import tensorflow as tf

            seed = keras.random.SeedGenerator(0)

            @tf.function  # as in training: some second-order gradients exist only in a traced graph
            def value_and_grad() -> tuple[Any, Any]:
                with tf.GradientTape() as tape:
                    value = spec.regularizer(context(lambda x: disc(x, training=True), seed), params)
                return value, tape.gradient(value, disc.trainable_variables)

            value, grads = value_and_grad()
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"loss {spec.name!r}: the regulariser failed: {type(exc).__name__}: {exc}") from exc
    value = np.asarray(value, dtype="float64")
    if value.shape != ():
        raise CheckFailed(f"loss {spec.name!r}: the regulariser returns shape {value.shape}; it must return one scalar")
    if not np.isfinite(value):
        raise CheckFailed(f"loss {spec.name!r}: the regulariser returns {float(value)}; it must be finite")
    squares = [float(np.sum(np.square(np.asarray(g, dtype="float64")))) for g in grads if g is not None]
    norm = float(np.sqrt(sum(squares)))
    if not np.isfinite(norm):
        raise CheckFailed(
            f"loss {spec.name!r}: the regulariser's gradient with respect to the discriminator's weights is not "
            "finite; guard square roots and divisions (e.g. sqrt(x + 1e-12))"
        )
    return float(value), norm


__all__ = ["check_loss"]
