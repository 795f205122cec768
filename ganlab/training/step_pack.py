"""K seeds of one experiment trained by one compiled step: the JAX step under ``jax.vmap`` (or a compiled loop on the CPU).

A pack's members differ only in their seed, so their networks have the same
structure and their steps the same code. :class:`PackedJaxStep` stacks the K
step states along a new leading axis and maps :class:`JaxStep`'s pure step
function over it: one dispatch and one XLA program per step for all K, which
is what fills an accelerator that one small GAN leaves idle. On the CPU the
members' steps run one after another inside the one program instead
(:data:`PACK_MODES`). Each member keeps its own step count and base key, so members
resumed from checkpoints of different steps still step together.

:meth:`PackedJaxStep.member` gives each member an object with the single
step's ``generate``/``push`` interface over its slice of the stack, so the
trainer's per-run code (samples, evaluation, checkpoints) is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ganlab.errors import ConfigError
from ganlab.training.augment import attach_state
from ganlab.training.models import Gan
from ganlab.training.step_common import StepSettings
from ganlab.training.step_jax import JaxStep, State, read_state, seed_key, write_state


#: How the K steps run inside the one program. ``vmap`` batches them (each convolution becomes a grouped
#: one): what fills an accelerator. ``map`` runs them one after another in a compiled loop
#: (``jax.lax.map``): on a CPU, where one member's convolutions already use every core, XLA runs grouped
#: convolutions more slowly than K plain ones, and a pack gains only the per-step dispatch it saves.
PACK_MODES = ("vmap", "map")


def default_pack_mode() -> str:
    """``$GANLAB_PACK_MODE`` if set, else ``vmap`` on an accelerator and ``map`` on the CPU (see :data:`PACK_MODES`)."""
    import jax

    chosen = os.environ.get("GANLAB_PACK_MODE", "").strip()
    if chosen:
        return chosen
    return "map" if jax.default_backend() == "cpu" else "vmap"


class PackedJaxStep:
    """The training step of K same-shaped GANs, one XLA program (vmapped, or a compiled loop on the CPU)."""

    def __init__(self, gans: Sequence[Gan], settings: Sequence[StepSettings], mode: str | None = None) -> None:
        import jax

        if not gans or len(gans) != len(settings):
            raise ValueError("a pack needs one StepSettings per GAN, and at least one GAN")
        mode = mode or default_pack_mode()
        if mode not in PACK_MODES:
            raise ConfigError(f"unknown pack mode {mode!r} (GANLAB_PACK_MODE); use one of: {', '.join(PACK_MODES)}")
        self.mode = mode
        self.gans = list(gans)
        for gan, s in zip(self.gans, settings):
            attach_state(gan, s.augment)
        # Member 0's step supplies the traced code; the weights it runs on are whichever are passed in.
        self.template = JaxStep(self.gans[0], settings[0])
        self.keys = np.stack([seed_key(s.seed) for s in settings])
        self.state: State = {}
        self.pull()
        # Per member: state, images, labels, step and key; the norms flag is one for the pack
        # (computed when any member logs; the others ignore theirs).
        if mode == "vmap":
            self._train = jax.jit(jax.vmap(self.template._train_step, in_axes=(0, 0, 0, 0, None, 0)))
        else:
            self._train = jax.jit(self._mapped)

    def _mapped(self, state: State, images: Any, labels: Any, steps: Any, norms: Any, keys: Any) -> tuple[State, Any]:
        import jax

        def one(member: tuple[State, Any, Any, Any, Any]) -> tuple[State, Any]:
            m_state, m_images, m_labels, m_step, m_key = member
            return self.template._train_step(m_state, m_images, m_labels, m_step, norms, m_key)

        return jax.lax.map(one, (state, images, labels, steps, keys))

    @property
    def size(self) -> int:
        return len(self.gans)

    def __call__(self, images: np.ndarray, labels: np.ndarray | None, steps: np.ndarray, norms: bool = True) -> dict[str, Any]:
        """One step of every member: ``images`` ``(K, n_critic, B, H, W, C)``, ``steps`` ``(K,)`` int32.

        Returns device arrays of shape ``(K,)`` per output.
        """
        self.state, out = self._train(self.state, images, labels, np.asarray(steps, np.int32), np.bool_(norms), self.keys)
        return out

    def pull(self) -> None:
        """Stack every member's Keras variables into the step state (at start and after restores)."""
        import jax
        import jax.numpy as jnp

        self.state = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[read_state(g) for g in self.gans])

    def member_state(self, index: int) -> State:
        return {key: [value[index] for value in values] for key, values in self.state.items()}

    def member(self, index: int) -> MemberStep:
        return MemberStep(self, index)


class MemberStep:
    """One member's view of a pack: what the trainer's loop calls besides the step itself."""

    def __init__(self, pack: PackedJaxStep, index: int) -> None:
        self.pack = pack
        self.index = index

    def generate(self, z: np.ndarray, labels: np.ndarray | None, ema: bool = True) -> np.ndarray:
        """Images from this member's generator (its EMA copy if it has one)."""
        template = self.pack.template
        use_ema = ema and template.gan.ema_generator is not None
        state = self.pack.member_state(self.index)
        tv = state["ema_tv" if use_ema else "g_tv"]
        ntv = state["ema_ntv" if use_ema else "g_ntv"]
        return np.asarray(template._sample(use_ema, tv, ntv, z, labels))

    def push(self) -> None:
        """Write this member's slice back to its own Keras variables (before a checkpoint reads them)."""
        write_state(self.pack.gans[self.index], self.pack.member_state(self.index))

    def pull(self) -> None:
        self.pack.pull()
