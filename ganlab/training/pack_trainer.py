"""Training a pack: K seeds of one experiment in one process, one compiled step (JAX only).

Each member is a run of its own in every way a user sees: its own run dir
(locked, checkpointed, resumed), TensorBoard run with HParams, metrics,
samples, progress reporter and result. Only the step is shared
(:class:`ganlab.training.step_pack.PackedJaxStep`). A member that diverges
or fails ends with its own result while the others go on; its slice of the
stack keeps being computed (dropping it would recompile the step) but is
no longer read.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.registry import Registry, load_plugins
from ganlab.training.backend import activate_backend, dtype_policy
from ganlab.training.models import build_gan
from ganlab.training.report import BaseReporter, Reporter, TrainResult
from ganlab.training.run_dir import RunDir
from ganlab.training.run_lock import hold_run_dir
from ganlab.training.step_pack import PackedJaxStep
from ganlab.training.trainer import Trainer, _Loop, _note


def pack_difference(configs: Sequence[ExperimentConfig]) -> str | None:
    """Why ``configs`` cannot train as one pack (None if they can): same experiment, seeds differ, JAX."""
    if len(configs) < 1:
        return "a pack needs at least one experiment"
    first = configs[0]
    if first.train.get("backend") != "jax":
        return f"packed seeds train on the JAX backend only (this experiment uses {first.train.get('backend')!r})"

    def without_seed(config: ExperimentConfig) -> dict[str, Any]:
        data = config.to_dict()
        data["train"] = {k: v for k, v in data["train"].items() if k != "seed"}
        return data

    reference = without_seed(first)
    for config in configs[1:]:
        if without_seed(config) != reference:
            return "the experiments of a pack must differ only in their seed"
    seeds = [int(c.train["seed"]) for c in configs]
    if len(set(seeds)) != len(seeds):
        return "the experiments of a pack must each have a different seed"
    return None


def train_pack(
    configs: Sequence[ExperimentConfig],
    run_dirs: Sequence[str | os.PathLike[str]],
    reporters: Sequence[Reporter] | None = None,
    *,
    resume: bool = False,
    registry: Registry | None = None,
    wait_s: float = 0.0,
    on_member_end: Callable[[int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train the seeds ``configs`` together, each in its run dir; one result per member, in order.

    ``on_member_end(index, result)`` is called as each member ends, its files
    all written, while the others may go on (a worker records it at once).

    Raises ConfigError when the configs are not one experiment over seeds on
    JAX, and what :func:`ganlab.training.train` raises before training starts
    (for any member: the pack starts whole or not at all).
    """
    if len(run_dirs) != len(configs) or (reporters is not None and len(reporters) != len(configs)):
        raise ValueError("train_pack needs one run dir (and one reporter, if any) per config")
    problem = pack_difference(configs)
    if problem:
        raise ConfigError(problem)
    activate_backend("jax")
    registry = registry or load_plugins()
    reps = list(reporters) if reporters is not None else [BaseReporter() for _ in configs]
    trainers = [Trainer(c, RunDir(d), registry, r) for c, d, r in zip(configs, run_dirs, reps)]
    with contextlib.ExitStack() as locks:
        for t in trainers:
            locks.enter_context(hold_run_dir(t.run_dir.output(t.run_dir.lock_file), wait_s, say=_note))
        return _start(trainers, resume, on_member_end)


def _start(trainers: list[Trainer], resume: bool, on_member_end: Any) -> list[TrainResult]:
    points = [t.checkpoint_to_resume(resume) for t in trainers]
    lead = trainers[0]
    data = lead._load_data()  # one dataset for all: the members differ only in seed
    with dtype_policy(lead.train_params["precision"]):
        gans = [build_gan(t.config, t.arch_spec, data.info()) for t in trainers]
        pack = PackedJaxStep(gans, [t.settings for t in trainers])
        loops = []
        for i, (t, gan, point) in enumerate(zip(trainers, gans, points)):
            state, fixed_z, fixed_labels = t.restore(gan, pack.member(i), point)
            loops.append(_Loop(t, data, gan, pack.member(i), state, fixed_z, fixed_labels, t.start_warnings_now()))
        return PackLoop(pack, loops, on_member_end).run()


class PackLoop:
    """Steps every live member at once; each member's bookkeeping is its own :class:`_Loop`'s."""

    def __init__(self, pack: PackedJaxStep, loops: list[_Loop],
                 on_member_end: Callable[[int, TrainResult], None] | None = None) -> None:
        self.pack = pack
        self.loops = loops
        self.on_member_end = on_member_end
        self.results: list[TrainResult | None] = [None] * len(loops)

    def run(self) -> list[TrainResult]:
        try:
            total = int(self.loops[0].train_params["steps"])
            for i, loop in enumerate(self.loops):
                self._guard(i, lambda loop=loop: loop.open(total))
            self._train()
        finally:
            for loop in self.loops:
                loop.close()
        return [r for r in self.results if r is not None]

    def _guard(self, i: int, work: Any) -> None:
        """Run one member's part; an exception ends that member only (diverged or failed)."""
        try:
            done = work()
        except Exception as exc:  # noqa: BLE001 - one member's end is a result, the others go on
            done = self.loops[i].ended_by(exc)
        if isinstance(done, TrainResult):
            self.results[i] = done
            self.loops[i].close()  # its TensorBoard file and checkpoints complete before anyone is told
            if self.on_member_end is not None:
                self.on_member_end(i, done)

    def _live(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r is None]

    def _train(self) -> None:
        while live := self._live():
            for i in live:
                if self.loops[i].reporter.should_stop():
                    self._guard(i, self.loops[i].stop_now)
            live = self._live()
            if not live:
                return
            started = time.perf_counter()
            batches: dict[int, tuple[np.ndarray, np.ndarray | None, bool]] = {}
            for i in live:
                self._guard(i, lambda i=i, b=batches: b.__setitem__(i, self.loops[i].next_batch()))
            if not batches:
                continue
            images, labels = self._stack(batches)
            steps = np.array([loop.step + 1 for loop in self.loops], np.int32)
            logs = any(b[2] for b in batches.values())
            try:
                out = self.pack(images, labels, steps, norms=logs)
            except Exception as exc:  # noqa: BLE001 - the shared step failed: every live member with it
                for i in batches:
                    self._guard(i, lambda exc=exc: _raise(exc))
                return
            shared_s = time.perf_counter() - started
            for i, batch in batches.items():
                member_out = {name: value[i] for name, value in out.items()}
                # Each member's rate counts the shared step and its own work, not the others' evaluations.
                own_start = time.perf_counter() - shared_s
                self._guard(i, lambda i=i, o=member_out, b=batch, t=own_start: self._after(i, o, b[2], t))

    def _after(self, i: int, out: dict[str, Any], logs: bool, started: float) -> TrainResult | None:
        loop = self.loops[i]
        loop.after_step(out, logs, started)
        if loop.stop_reason is not None:  # a GAN-aware stop ends this member only
            return loop.end_stopped(loop.stop_reason)
        if loop.step >= loop.total:
            return loop._finish("succeeded")
        return None

    def _stack(self, batches: dict[int, tuple[np.ndarray, np.ndarray | None, bool]]) -> tuple[np.ndarray, np.ndarray | None]:
        """Every member's batch in pack order; members that ended get a zero batch (their slice is not read)."""
        some_images, some_labels, _ = next(iter(batches.values()))
        images = np.stack([batches[i][0] if i in batches else np.zeros_like(some_images) for i in range(len(self.loops))])
        if some_labels is None:
            return images, None
        labels = np.stack([batches[i][1] if i in batches else np.zeros_like(some_labels) for i in range(len(self.loops))])
        return images, labels


def _raise(exc: Exception) -> None:
    raise exc
