"""The training step on the JAX backend: a pure function under ``jax.jit``.

Keras 3's pattern for custom JAX loops: the models run through
``stateless_call`` on explicit lists of trainable and non-trainable values
(batch-norm statistics and dropout seed states are among the latter), and the
optimisers update through ``stateless_apply``. The values live here between
steps; :meth:`JaxStep.push` writes them back to the Keras variables before
anything reads those (checkpoints, export), :meth:`JaxStep.pull` reads them in
after a restore.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganlab.specs import RegularizerContext
from ganlab.training.augment import AUG_FAKE_STREAM, AUG_REAL_STREAM, attach_state, ema_decay
from ganlab.training.autodiff import input_gradient
from ganlab.training.models import Gan
from ganlab.training.step_common import (
    LABEL_STREAM,
    REG_STREAM,
    Z_STREAM,
    StepSettings,
    discriminator_objective,
    discriminator_outputs,
    gated_norm,
    generator_objective,
    loss_scale,
    normalise,
)

State = dict[str, list[Any]]


class JaxStep:
    """Compiled training step and sampler for the JAX backend."""

    def __init__(self, gan: Gan, settings: StepSettings) -> None:
        import jax

        self.gan = gan
        self.s = settings
        self.state: State = {}
        attach_state(gan, settings.augment)
        # The seed enters the compiled step as a key, not a constant, so that one compiled
        # step serves K seeds under jax.vmap (ganlab.training.step_pack).
        self.key = seed_key(settings.seed)
        self.pull()
        # No buffer donation: the EMA copies alias the generator's statistics, and
        # GAN weights are small next to the activations a step allocates.
        self._train = jax.jit(self._train_step)
        self._sample = jax.jit(self._sample_fn, static_argnums=0)

    # ---------------------------------------------------------------- public

    def __call__(self, images: np.ndarray, labels: np.ndarray | None, step: int, norms: bool = True) -> dict[str, Any]:
        """Run one step on ``images`` uint8 ``(n_critic, B, H, W, C)``; returns device scalars.

        Gradient norms are computed only with ``norms`` (0 otherwise).
        """
        self.state, out = self._train(self.state, images, labels, np.int32(step), np.bool_(norms), self.key)
        return out

    def generate(self, z: np.ndarray, labels: np.ndarray | None, ema: bool = True) -> np.ndarray:
        """Images float32 ``[-1, 1]`` from ``z`` (one call; the caller chunks)."""
        use_ema = ema and self.gan.ema_generator is not None
        tv = self.state["ema_tv" if use_ema else "g_tv"]
        ntv = self.state["ema_ntv" if use_ema else "g_ntv"]
        return np.asarray(self._sample(use_ema, tv, ntv, z, labels))

    def pull(self) -> None:
        """Read the Keras variables into the step's state (at start and after a restore)."""
        self.state = read_state(self.gan)

    def push(self) -> None:
        """Write the step's state back to the Keras variables."""
        write_state(self.gan, self.state)

    # --------------------------------------------------------------- compiled

    def _sample_fn(self, use_ema: bool, tv: list[Any], ntv: list[Any], z: Any, labels: Any) -> Any:
        import jax.numpy as jnp

        model = self.gan.ema_generator if use_ema else self.gan.generator
        images, _ = model.stateless_call(tv, ntv, self.gan.generator_inputs(z, labels), training=False)
        return images.astype(jnp.float32)

    def _train_step(
        self, state: State, images: Any, labels: Any, step: Any, norms: Any, seed_key: Any
    ) -> tuple[State, dict[str, Any]]:
        import jax

        state = dict(state)
        key = jax.random.fold_in(seed_key, step)
        out: dict[str, Any] = {}
        if self.s.n_critic == 1:
            out = self._joint_update(state, images[0], None if labels is None else labels[0], key, norms)
        else:
            state, out = self._critic_updates(state, images, labels, key, norms)
            out.update(self._g_update(state, jax.random.fold_in(key, self.s.n_critic), norms))
        self._update_ema(state, step)
        return state, out

    def _augment(self, state: State, images: Any, key: Any, stream: int) -> Any:
        """``images`` as the discriminator sees them, drawing from keys folded from ``(key, stream)``."""
        import jax

        augment = self.s.augment
        if augment is None:
            return images
        base = jax.random.fold_in(key, stream)
        draws = iter(range(1 << 30))

        def next_seed() -> Any:
            # A new key per draw; the count is fixed at trace time, so every step draws alike.
            return jax.random.fold_in(base, next(draws))

        p = state["aug_p"][0] if "aug_p" in state else None
        return augment.apply(images, next_seed, p)

    def _adapt(self, state: State, real_logits: Any) -> Any:
        """Move an adaptive augmentation's ``p`` in ``state``; returns the new value (None without one)."""
        if not self.s.adaptive:
            return None
        p = self.s.augment.adapt(state["aug_p"][0], real_logits)  # type: ignore[union-attr]
        state["aug_p"] = [p]
        return p

    def _critic_updates(self, state: State, images: Any, labels: Any, key: Any, norms: Any) -> tuple[State, dict[str, Any]]:
        """``n_critic`` discriminator updates as one ``lax.scan``; the last one's outputs.

        Unrolled, XLA would compile the update ``n_critic`` times over.
        """
        import jax
        import jax.numpy as jnp

        def update(state: State, xs: tuple[Any, Any, Any]) -> tuple[State, dict[str, Any]]:
            i, real_u8, real_labels = xs
            state = dict(state)
            return state, self._d_update(state, real_u8, real_labels, jax.random.fold_in(key, i), norms)

        state, outs = jax.lax.scan(update, state, (jnp.arange(self.s.n_critic), images, labels))
        return state, {name: value[-1] for name, value in outs.items()}

    def _noise(self, key: Any) -> tuple[Any, Any]:
        import jax

        z = jax.random.normal(jax.random.fold_in(key, Z_STREAM), (self.s.batch_size, self.s.latent_dim), dtype="float32")
        labels = None
        if self.gan.conditional:
            labels = jax.random.randint(
                jax.random.fold_in(key, LABEL_STREAM), (self.s.batch_size,), 0, self.gan.num_classes, dtype="int32"
            )
        return z, labels

    def _scaled(self, opt: Any, opt_values: list[Any], loss: Any) -> tuple[Any, Any]:
        """``(scaled loss, scale or None)`` read from the optimiser's current values, not its variables."""
        import keras

        with keras.StatelessScope(state_mapping=list(zip(opt.variables, opt_values))):
            scale = loss_scale(opt)
            return opt.scale_loss(loss), None if scale is None else keras.ops.convert_to_tensor(scale.value)

    def _regularizer_context(self, d_tv: list[Any], d_ntv: list[Any], real: Any, fake: Any, labels: Any, key: Any) -> Any:
        import jax

        gan = self.gan

        def make() -> RegularizerContext:
            def discriminator(x: Any) -> Any:
                return gan.discriminator.stateless_call(d_tv, d_ntv, gan.discriminator_inputs(x, labels), training=True)[0]

            return RegularizerContext(
                real=real,
                fake=fake,
                labels=labels,
                discriminator=discriminator,
                input_gradient=input_gradient,
                seed=jax.random.fold_in(key, REG_STREAM),
            )

        return make

    def _d_update(self, state: State, real_u8: Any, labels: Any, key: Any, norms: Any) -> dict[str, Any]:
        import jax

        gan, s = self.gan, self.s
        real = self._augment(state, normalise(real_u8), key, AUG_REAL_STREAM)
        z, fake_labels = self._noise(key)
        fake, state["g_ntv"] = gan.generator.stateless_call(
            state["g_tv"], state["g_ntv"], gan.generator_inputs(z, fake_labels), training=True
        )
        fake = self._augment(state, jax.lax.stop_gradient(fake), key, AUG_FAKE_STREAM)

        def loss_fn(d_tv: list[Any], d_ntv: list[Any]) -> tuple[Any, tuple[Any, ...]]:
            real_logits, d_ntv = gan.discriminator.stateless_call(d_tv, d_ntv, gan.discriminator_inputs(real, labels), training=True)
            fake_logits, d_ntv = gan.discriminator.stateless_call(d_tv, d_ntv, gan.discriminator_inputs(fake, fake_labels), training=True)
            d_loss, penalty = discriminator_objective(
                s, real_logits, fake_logits, self._regularizer_context(d_tv, d_ntv, real, fake, labels, key)
            )
            scaled, scale = self._scaled(gan.d_opt, state["d_opt"], d_loss + penalty)
            return scaled, (d_ntv, d_loss, penalty, real_logits, fake_logits, scale)

        grads, (d_ntv, d_loss, penalty, real_logits, fake_logits, scale) = jax.grad(loss_fn, has_aux=True)(
            state["d_tv"], state["d_ntv"]
        )
        norm = _unscaled(gated_norm(norms, grads), scale)
        state["d_tv"], state["d_opt"] = gan.d_opt.stateless_apply(state["d_opt"], grads, state["d_tv"])
        state["d_ntv"] = d_ntv
        p = self._adapt(state, real_logits)
        return discriminator_outputs(self.s, d_loss, penalty, real_logits, fake_logits, norm, p)

    def _g_update(self, state: State, key: Any, norms: Any) -> dict[str, Any]:
        import jax

        gan, s = self.gan, self.s
        z, fake_labels = self._noise(key)

        def loss_fn(g_tv: list[Any], g_ntv: list[Any], d_ntv: list[Any]) -> tuple[Any, tuple[Any, ...]]:
            fake, g_ntv = gan.generator.stateless_call(g_tv, g_ntv, gan.generator_inputs(z, fake_labels), training=True)
            fake = self._augment(state, fake, key, AUG_FAKE_STREAM)
            fake_logits, d_ntv = gan.discriminator.stateless_call(
                state["d_tv"], d_ntv, gan.discriminator_inputs(fake, fake_labels), training=True
            )
            g_loss = generator_objective(s, fake_logits)
            scaled, scale = self._scaled(gan.g_opt, state["g_opt"], g_loss)
            return scaled, (g_ntv, d_ntv, g_loss, scale)

        grads, (g_ntv, d_ntv, g_loss, scale) = jax.grad(loss_fn, has_aux=True)(state["g_tv"], state["g_ntv"], state["d_ntv"])
        norm = _unscaled(gated_norm(norms, grads), scale)
        state["g_tv"], state["g_opt"] = gan.g_opt.stateless_apply(state["g_opt"], grads, state["g_tv"])
        state["g_ntv"], state["d_ntv"] = g_ntv, d_ntv
        return {"loss/generator": g_loss, "grad_norm/generator": norm}

    def _joint_update(self, state: State, real_u8: Any, labels: Any, key: Any, norms: Any) -> dict[str, Any]:
        import jax
        import jax.numpy as jnp

        gan, s = self.gan, self.s
        real = self._augment(state, normalise(real_u8), key, AUG_REAL_STREAM)
        z, fake_labels = self._noise(key)

        def forward(g_tv: list[Any], d_tv: list[Any]) -> tuple[tuple[Any, Any], tuple[Any, ...]]:
            fake, g_ntv = gan.generator.stateless_call(g_tv, state["g_ntv"], gan.generator_inputs(z, fake_labels), training=True)
            fake = self._augment(state, fake, key, AUG_FAKE_STREAM)
            real_logits, d_ntv = gan.discriminator.stateless_call(
                d_tv, state["d_ntv"], gan.discriminator_inputs(real, labels), training=True
            )
            fake_logits, d_ntv = gan.discriminator.stateless_call(d_tv, d_ntv, gan.discriminator_inputs(fake, fake_labels), training=True)
            d_loss, penalty = discriminator_objective(
                s, real_logits, fake_logits, self._regularizer_context(d_tv, d_ntv, real, fake, labels, key)
            )
            g_loss = generator_objective(s, fake_logits)
            d_scaled, d_scale = self._scaled(gan.d_opt, state["d_opt"], d_loss + penalty)
            g_scaled, g_scale = self._scaled(gan.g_opt, state["g_opt"], g_loss)
            aux = (g_ntv, d_ntv, d_loss, penalty, g_loss, real_logits, fake_logits, d_scale, g_scale)
            return (d_scaled, g_scaled), aux

        (d_scaled, g_scaled), pullback, aux = jax.vjp(forward, state["g_tv"], state["d_tv"], has_aux=True)
        g_ntv, d_ntv, d_loss, penalty, g_loss, real_logits, fake_logits, d_scale, g_scale = aux
        # One forward pass, two backward passes: each network's gradient of its own loss.
        _, d_grads = pullback((jnp.ones_like(d_scaled), jnp.zeros_like(g_scaled)))
        g_grads, _ = pullback((jnp.zeros_like(d_scaled), jnp.ones_like(g_scaled)))
        d_norm = _unscaled(gated_norm(norms, d_grads), d_scale)
        g_norm = _unscaled(gated_norm(norms, g_grads), g_scale)
        state["g_tv"], state["g_opt"] = gan.g_opt.stateless_apply(state["g_opt"], g_grads, state["g_tv"])
        state["d_tv"], state["d_opt"] = gan.d_opt.stateless_apply(state["d_opt"], d_grads, state["d_tv"])
        state["g_ntv"], state["d_ntv"] = g_ntv, d_ntv
        p = self._adapt(state, real_logits)
        out = discriminator_outputs(self.s, d_loss, penalty, real_logits, fake_logits, d_norm, p)
        out.update({"loss/generator": g_loss, "grad_norm/generator": g_norm})
        return out

    def _update_ema(self, state: State, step: Any) -> None:
        if self.gan.ema_generator is None:
            return
        decay = ema_decay(self.s.ema, step)
        state["ema_tv"] = [decay * e + (1.0 - decay) * w for e, w in zip(state["ema_tv"], state["g_tv"])]
        # Batch-norm statistics and seed states are copied, not averaged.
        state["ema_ntv"] = list(state["g_ntv"])


def seed_key(seed: int) -> np.ndarray:
    """The run's base random key, as host data (the same bits ``PRNGKey(seed)`` gives inside a trace)."""
    import jax

    return np.asarray(jax.random.PRNGKey(seed))


def _groups(gan: Gan) -> list[tuple[str, list[Any]]]:
    """The state's keys and the Keras variables each one mirrors, in a fixed order."""
    pairs = [
        ("g_tv", gan.generator.trainable_variables),
        ("g_ntv", gan.generator.non_trainable_variables),
        ("d_tv", gan.discriminator.trainable_variables),
        ("d_ntv", gan.discriminator.non_trainable_variables),
        ("g_opt", gan.g_opt.variables),
        ("d_opt", gan.d_opt.variables),
    ]
    if gan.ema_generator is not None:
        pairs += [("ema_tv", gan.ema_generator.trainable_variables), ("ema_ntv", gan.ema_generator.non_trainable_variables)]
    if gan.augment_p is not None:
        pairs.append(("aug_p", [gan.augment_p]))
    return pairs


def read_state(gan: Gan) -> State:
    """``gan``'s variables as a step state."""
    import jax.numpy as jnp

    # Copies, so the arrays the step replaces are never the ones the variables hold.
    return {key: [jnp.array(v.value, copy=True) for v in variables] for key, variables in _groups(gan)}


def write_state(gan: Gan, state: State) -> None:
    """Assign a step state to ``gan``'s variables."""
    import jax.numpy as jnp

    for key, variables in _groups(gan):
        for variable, value in zip(variables, state[key]):
            variable.assign(jnp.array(value, copy=True))


def _unscaled(norm: Any, scale: Any) -> Any:
    return norm if scale is None else norm / scale
