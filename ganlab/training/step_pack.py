"""K seeds of one experiment trained by one compiled step: the JAX step under ``jax.vmap``.

A pack's members differ only in their seed, so their networks have the same
structure and their steps the same code. :class:`PackedJaxStep` stacks the K
step states along a new leading axis and maps :class:`JaxStep`'s pure step
function over it: one dispatch and one XLA program per step for all K, which
is what fills an accelerator (and the CPU's vector units) that one small GAN
leaves idle. Each member keeps its own step count and base key, so members
resumed from checkpoints of different steps still step together.

:meth:`PackedJaxStep.member` gives each member an object with the single
step's ``generate``/``push`` interface over its slice of the stack, so the
trainer's per-run code (samples, evaluation, checkpoints) is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ganlab.training.augment import attach_state
from ganlab.training.models import Gan
from ganlab.training.step_common import StepSettings
from ganlab.training.step_jax import JaxStep, State, read_state, seed_key, write_state


class PackedJaxStep:
    """The training step of K same-shaped GANs, one vmapped XLA program."""

    def __init__(self, gans: Sequence[Gan], settings: Sequence[StepSettings]) -> None:
        import jax

        if not gans or len(gans) != len(settings):
            raise ValueError("a pack needs one StepSettings per GAN, and at least one GAN")
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
        self._train = jax.jit(jax.vmap(self.template._train_step, in_axes=(0, 0, 0, 0, None, 0)))

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
