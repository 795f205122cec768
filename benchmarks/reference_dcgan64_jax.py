"""A hand-written 64x64 DCGAN training step on Keras 3's JAX backend: the second reference pair of issue #18.

The networks are the DCGAN paper's 64x64 ones (Radford et al. 2016), layer for
layer what ganlab's built-in ``dcgan`` builds for 64x64x1 images with
``base_filters=64 kernel_size=4 dropout=0 d_batchnorm=true``:

- generator: Dense 4x4x512 + BN + ReLU, then stride-2 4x4 transposed convolutions
  to 256, 128, 64 channels (BN + ReLU each) and to the image (bias, tanh);
- discriminator: stride-2 4x4 convolutions to 64, 128, 256, 512 channels
  (LeakyReLU 0.2; BN on all but the first), Flatten, Dense 1;
- non-saturating loss, Adam(2e-4, beta_1=0.5), as the paper.

One ``jax.jit`` step (discriminator update, then generator update) over a
fixed random batch already on the device, so it measures the step alone.
Prints ``reference_dcgan64_jax images_per_s X step_ms Y``, like the shared
references, and then the two networks' parameter counts
(``reference_dcgan64_jax params generator N discriminator M``), which
``bench_training.py`` checks against ganlab's before it reports a ratio.
Environment: BATCH (128, the paper's), STEPS (20).
"""

import os
import time

os.environ["KERAS_BACKEND"] = "jax"

import jax
import keras
from keras import layers, ops

BATCH = int(os.environ.get("BATCH", 128))
STEPS = int(os.environ.get("STEPS", 20))
LATENT = 100
SIZE, CHANNELS = 64, 1


def generator() -> keras.Model:
    z = keras.Input((LATENT,))
    h = layers.Dense(4 * 4 * 512, use_bias=False)(z)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.Reshape((4, 4, 512))(h)
    for width in (256, 128, 64):
        h = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(h)
        h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.Conv2DTranspose(CHANNELS, 4, strides=2, padding="same")(h)
    return keras.Model(z, layers.Activation("tanh")(h))


def discriminator() -> keras.Model:
    x = keras.Input((SIZE, SIZE, CHANNELS))
    h = x
    for i, width in enumerate((64, 128, 256, 512)):
        h = layers.Conv2D(width, 4, strides=2, padding="same")(h)
        if i > 0:
            h = layers.BatchNormalization()(h)
        h = layers.LeakyReLU(negative_slope=0.2)(h)
    return keras.Model(x, layers.Dense(1)(layers.Flatten()(h)))


gen, disc = generator(), discriminator()
g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
g_opt.build(gen.trainable_variables)
d_opt.build(disc.trainable_variables)


def softplus_mean(x):
    return ops.mean(ops.softplus(x))


def d_loss(d_train, d_rest, g_train, g_rest, real, z):
    fake, g_rest = gen.stateless_call(g_train, g_rest, z, training=True)
    real_logits, d_rest = disc.stateless_call(d_train, d_rest, real, training=True)
    fake_logits, d_rest = disc.stateless_call(d_train, d_rest, fake, training=True)
    # -log sigmoid(r) - log(1 - sigmoid(f)), written with softplus for stability
    return softplus_mean(-real_logits) + softplus_mean(fake_logits), (d_rest, g_rest)


def g_loss(g_train, g_rest, d_train, d_rest, z):
    fake, g_rest = gen.stateless_call(g_train, g_rest, z, training=True)
    fake_logits, d_rest = disc.stateless_call(d_train, d_rest, fake, training=True)
    return softplus_mean(-fake_logits), (g_rest, d_rest)


@jax.jit
def train_step(state, real, key):
    g_train, g_rest, d_train, d_rest, g_slots, d_slots = state
    kd, kg = jax.random.split(key)
    (dl, (d_rest, g_rest)), d_grads = jax.value_and_grad(d_loss, has_aux=True)(
        d_train, d_rest, g_train, g_rest, real, jax.random.normal(kd, (BATCH, LATENT)))
    d_train, d_slots = d_opt.stateless_apply(d_slots, d_grads, d_train)
    (gl, (g_rest, d_rest)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(
        g_train, g_rest, d_train, d_rest, jax.random.normal(kg, (BATCH, LATENT)))
    g_train, g_slots = g_opt.stateless_apply(g_slots, g_grads, g_train)
    return (g_train, g_rest, d_train, d_rest, g_slots, d_slots), gl, dl


def values(variables):
    return [v.value for v in variables]


state = (values(gen.trainable_variables), values(gen.non_trainable_variables),
         values(disc.trainable_variables), values(disc.non_trainable_variables),
         values(g_opt.variables), values(d_opt.variables))
real = jax.random.uniform(jax.random.PRNGKey(0), (BATCH, SIZE, SIZE, CHANNELS), minval=-1.0, maxval=1.0)
key = jax.random.PRNGKey(1)
for i in range(3):  # compile and warm up
    state, gl, dl = train_step(state, real, jax.random.fold_in(key, i))
gl.block_until_ready()
start = time.perf_counter()
for i in range(STEPS):
    state, gl, dl = train_step(state, real, jax.random.fold_in(key, 1000 + i))
gl.block_until_ready()
elapsed = time.perf_counter() - start
print(f"reference_dcgan64_jax images_per_s {BATCH * STEPS / elapsed:.1f} step_ms {1000 * elapsed / STEPS:.1f}")
print(f"reference_dcgan64_jax params generator {gen.count_params()} discriminator {disc.count_params()}")
