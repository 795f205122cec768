"""Input gradients for the active Keras backend.

Gradient penalties and R1 need d D(x) / dx, which ``keras.ops`` cannot
express. The compiled GAN step hands this function to loss regularisers through
:class:`ganlab.RegularizerContext`, so loss plugins stay backend-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def input_gradient(fn: Callable[[Any], Any], x: Any) -> Any:
    """Gradient of ``sum(fn(x))`` with respect to ``x``, differentiable again (for the outer step)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.cast(fn(x), tf.float32))
        return tape.gradient(y, x)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return jax.grad(lambda t: jnp.sum(fn(t).astype(jnp.float32)))(x)
    raise NotImplementedError(f"input gradients are not implemented for the {backend!r} backend")
