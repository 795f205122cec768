"""Training one experiment: data, compiled step, checkpoints, metrics and TensorBoard, in one loop.

:func:`train` is what :func:`ganlab.training.experiment.run_experiment`, the
entry shared by ``ganlab train`` and the worker's child process, calls. Errors in the arguments, the run directory, the dataset or the
plugins' networks are raised before training starts (GanlabError for user
mistakes); once the loop runs, every ending is a :class:`TrainResult`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError, summary_line
from ganlab.metrics.card import cards_markdown
from ganlab.metrics.selection import metric_specs
from ganlab.registry import Registry, load_plugins
from ganlab.specs import ImageData
from ganlab.training.augment import augment_for
from ganlab.training.backend import activate_backend, dtype_policy
from ganlab.training.checkpoint import BackgroundSaver, all_finite
from ganlab.training.data import BatchStream
from ganlab.training.evaluation import MetricsTracker
from ganlab.training.models import Gan, build_gan
from ganlab.training.precision import cpu_flags, on_accelerator, precision_warning
from ganlab.training.report import BaseReporter, Reporter, TrainResult
from ganlab.training.run_dir import RunDir
from ganlab.training.run_lock import hold_run_dir
from ganlab.training.sampling import EVAL_STREAM, GRID_SIZE, GRID_STREAM, generate_all, noise
from ganlab.training.step_common import StepSettings, make_step
from ganlab.training.stops import EarlyStops


def train(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
    registry: Registry | None = None,
    wait_s: float = 0.0,
    extend: bool = False,
) -> TrainResult:
    """Train ``config`` in ``run_dir`` and say how it ended.

    Only one process trains a run directory at a time: the trainer holds the
    directory's lock (``train.lock``) from before it reads the checkpoint
    until its last write.

    Args:
        config: a resolved experiment (see :class:`ganlab.config.Resolver`).
        run_dir: the run's directory; created if missing.
        resume: continue from ``run_dir``'s latest checkpoint (from step 0 if it
            has none yet). Without it, a directory that already holds a run is refused.
        reporter: progress callbacks and the stop request (see :class:`Reporter`).
        registry: where the plugins come from; the default plugin set if omitted.
        wait_s: how long to wait for another process training ``run_dir`` to exit.
        extend: with ``resume``, also accept a run dir whose run is ``config`` with fewer
            ``train.steps`` (one given more steps by ``ganlab queue extend``) and continue it.

    Raises:
        RunDirBusy: another process still trains ``run_dir`` after ``wait_s``.
        GanlabError: the run cannot start (wrong backend, run dir taken or
            holding another experiment, dataset unavailable, bad network).
    """
    activate_backend(config.train["backend"])
    trainer = Trainer(config, RunDir(run_dir), registry or load_plugins(), reporter or BaseReporter())
    return trainer.run(resume=resume, wait_s=wait_s, extend=extend)


class _Diverged(Exception):
    def __init__(self, step: int, what: str) -> None:
        super().__init__(what)
        self.step = step
        self.what = what


class Trainer:
    """One training run; use :func:`train` rather than this class directly."""

    def __init__(self, config: ExperimentConfig, run_dir: RunDir, registry: Registry, reporter: Reporter) -> None:
        self.config = config
        self.train_params = config.train
        self.run_dir = run_dir
        self.registry = registry
        self.reporter = reporter
        self.loss_spec = registry.loss(config.loss)
        self.arch_spec = registry.architecture(config.architecture)
        self.data_spec = registry.dataset(config.dataset)
        self.settings = StepSettings.from_config(config, self.loss_spec, augment_for(config, registry))
        self.start_warnings: list[str] = []

    # --------------------------------------------------------------- set-up

    def _load_data(self) -> ImageData:
        data = self.data_spec.load(self.config.dataset_params)
        if self.arch_spec.conditional and data.labels is None:
            raise ConfigError(
                f"architecture {self.arch_spec.name!r} is class-conditional but dataset {self.config.dataset!r} has no labels"
            )
        if len(data.images) < 2:
            raise ConfigError(f"dataset {self.config.dataset!r} has {len(data.images)} image(s); training needs at least 2")
        return data

    def run(self, resume: bool = False, wait_s: float = 0.0, extend: bool = False) -> TrainResult:
        # Held until the last write: a previous trainer (say, one whose worker died) may still be
        # writing its final checkpoint, which is the one to read.
        with hold_run_dir(self.run_dir.output(self.run_dir.lock_file), wait_s, say=_note):
            return self._run(resume, extend)

    def _run(self, resume: bool, extend: bool) -> TrainResult:
        point = self.checkpoint_to_resume(resume, extend)
        data = self._load_data()
        params = self.train_params
        with dtype_policy(params["precision"]):
            gan = build_gan(self.config, self.arch_spec, data.info())
            gan_step = make_step(gan, self.settings, params["backend"])
            state, fixed_z, fixed_labels = self.restore(gan, gan_step, point)
            warnings = self.start_warnings_now()
            return _Loop(self, data, gan, gan_step, state, fixed_z, fixed_labels, warnings).run()

    # The set-up in steps, shared with a pack's trainer (ganlab.training.pack_trainer).

    def checkpoint_to_resume(self, resume: bool, extend: bool = False) -> Any:
        """Claim the run dir for this config; the checkpoint to resume from, if any (``extend``: see :func:`train`)."""
        point = self.run_dir.claim(self.config, resume, extend=extend)
        if point is not None and point.warning:
            # Said at once, not only in the result: the user may prefer to stop and look.
            print(f"warning: {point.warning}", file=sys.stderr, flush=True)
            self.start_warnings.append(point.warning)
        return point

    def restore(self, gan: Gan, gan_step: Any, point: Any) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
        """Load ``point`` (if any) into ``gan`` and its step: ``(loop state, fixed z, fixed labels)``."""
        params = self.train_params
        state: dict[str, Any] = {}
        fixed_z, fixed_labels = noise(GRID_SIZE, gan.latent_dim, gan.num_classes, params["seed"], GRID_STREAM)
        if point is not None:
            arrays, state = point.arrays, point.state
            gan.load_arrays(arrays)
            gan_step.pull()
            fixed_z = arrays.get("fixed/z", fixed_z)
            fixed_labels = arrays.get("fixed/labels", fixed_labels)
        return state, fixed_z, fixed_labels

    def start_warnings_now(self) -> list[str]:
        """Write the config (only now: a run that could not even start leaves the directory free); the warnings."""
        params = self.train_params
        self.run_dir.save_config(self.config)
        warning = precision_warning(params["precision"], on_accelerator(params["backend"]), cpu_flags())
        if warning:
            # Said now, not in the result hours later: the run is still cheap to stop.
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        return self.start_warnings + ([warning] if warning else [])


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Loop:
    """The state of one process's training loop."""

    def __init__(
        self,
        trainer: Trainer,
        data: ImageData,
        gan: Gan,
        gan_step: Any,
        state: Mapping[str, Any],
        fixed_z: np.ndarray,
        fixed_labels: np.ndarray | None,
        warnings: list[str],
    ) -> None:
        from ganlab.tblog import RunWriter

        self.trainer = trainer
        self.train_params = params = trainer.train_params
        self.run_dir = trainer.run_dir
        self.reporter = trainer.reporter
        self.gan = gan
        self.gan_step = gan_step
        self.fixed_z, self.fixed_labels = fixed_z, fixed_labels
        self.start = int(state.get("step", 0))
        self.step = self.start
        self.checkpoint_step = self.start if state else None  # the last checkpoint known to be on disk
        self.saver = BackgroundSaver()
        self._saving: tuple[int, bool] | None = None  # (step, is it 'latest') of the write in flight
        self.stream = BatchStream(data, int(params["batch_size"]), int(params["seed"]), int(state.get("batches_taken", 0)))
        self.tracker = MetricsTracker(data, int(params["eval_samples"]), int(params["seed"]), state.get("metrics"),
                                      metric_specs(trainer.registry, trainer.config))
        self.eval_z, self.eval_labels = self._eval_noise(data)
        self.stops = EarlyStops(params, state.get("stops"))
        self.stop_reason: str | None = None  # set by a GAN-aware stop; the loop ends the run at its next turn
        self._cards_logged: dict[str, Any] = {}
        self.last: dict[str, float] = dict(state.get("last_losses", {}))
        # Lets 'ganlab sample' rebuild the generator without the dataset.
        self.data_info = {
            "image_shape": list(data.image_shape),
            "num_classes": gan.num_classes,
            "class_names": list(data.class_names) if data.class_names else None,
        }
        self.chunk = max(int(params["batch_size"]), 64)
        self.warnings = list(warnings)
        if self.start:
            self.run_dir.truncate_metrics(self.start)
        # After a resume, TensorBoard drops what the dead process logged past the checkpoint's step.
        self.writer = RunWriter(self.run_dir.path, resume_step=self.start + 1 if self.start else None)

    def _eval_noise(self, data: ImageData) -> tuple[np.ndarray, np.ndarray | None]:
        params = self.train_params
        z, labels = noise(int(params["eval_samples"]), self.gan.latent_dim, None, params["seed"], EVAL_STREAM)
        if self.gan.conditional:
            # Labels drawn like the data's, so class balance matches the real side of the comparison.
            rng = np.random.default_rng([int(params["seed"]), EVAL_STREAM, 1])
            labels = rng.choice(np.asarray(data.labels), size=len(z)).astype(np.int32)
        return z, labels

    # ------------------------------------------------------------------ run

    def run(self) -> TrainResult:
        total = int(self.train_params["steps"])
        try:
            done = self.open(total)
            return done if done is not None else self._train_until(total)
        except Exception as exc:  # noqa: BLE001 - a failed run is a result the caller records
            return self.ended_by(exc)
        finally:
            self.close()

    def open(self, total: int) -> TrainResult | None:
        """Start the session; the result already, for a run with no step left."""
        self._open_session()
        self.reporter.on_start(self.start, total)
        if self.start:
            self._report_resumed_evaluation()
        if self.stops.fired:
            # Its stop fired before a crash kept it from being recorded: it ends the same way again.
            return self.end_stopped(self.stops.fired, said=True)
        if self.step >= total:
            return self._finish("succeeded")
        self.begin_training(total)
        return None

    def _report_resumed_evaluation(self) -> None:
        """Say again the evaluations up to the checkpoint's step: the process that made them may have died
        before its worker heard of them, and a search's pruner must see every one (its store keeps one
        value per step, so hearing one twice is harmless)."""
        for record in self.run_dir.read_metrics():  # truncated to the checkpoint's step already
            if "error" in record or int(record.get("step", -1)) > self.start:
                continue
            scores = {k: v for k, v in record.items()
                      if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.reporter.on_eval(int(record["step"]), scores)

    def ended_by(self, exc: Exception) -> TrainResult:
        """The result of a run that ``exc`` ended: diverged, or failed."""
        self._settle_saves(quietly=True)
        self.writer.hparams_end("failure")
        if isinstance(exc, _Diverged):
            kept = (f"the last good checkpoint is step {self.checkpoint_step}" if self.checkpoint_step is not None
                    else "no checkpoint was written")
            return self._result("diverged", exc.step, error=f"{exc.what} at step {exc.step}; {kept}")
        tb = "".join(traceback.format_exception(exc))
        return self._result("failed", self.step, error=summary_line(exc), tb=tb)

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        with contextlib.suppress(Exception):  # a failed write was already reported in the result
            self.saver.close()
        self.writer.close()

    def _open_session(self) -> None:
        config = self.trainer.config
        if self.start == 0:
            hparams = {k: v for k, v in config.flat().items() if v is not None}
            self.writer.hparams_start(hparams)
        body = json.dumps(config.to_dict(), indent=2, sort_keys=True)
        # Four-space indentation makes the JSON a code block in the Text dashboard's markdown.
        self.writer.text("config", "\n".join("    " + line for line in body.splitlines()), self.start)
        for message in self.warnings:
            self.writer.text("warnings", message, self.start)
        self.writer.hparams_end("running")

    def _train_until(self, total: int) -> TrainResult:
        while self.step < total:
            if self.reporter.should_stop():
                return self.stop_now()
            started = time.perf_counter()
            images, labels, logs = self.next_batch()
            out = self.gan_step(images, labels, self.step + 1, norms=logs)
            self.after_step(out, logs, started)
            if self.stop_reason is not None:
                return self.end_stopped(self.stop_reason)
        return self._finish("succeeded")

    # The pieces of one step, shared with a pack's loop (ganlab.training.pack_trainer), which
    # runs the step itself once for all its members.

    def begin_training(self, total: int) -> None:
        params = self.train_params
        self.total = total
        self.n_critic = int(params["n_critic"])
        self.images_per_step = int(params["batch_size"]) * self.n_critic
        self.every = {k: int(params[k]) for k in ("log_every", "sample_every", "eval_every", "checkpoint_every")}
        self.window_steps, self.window_time = 0, 0.0
        self.compiled = False
        self.pending: tuple[int, Mapping[str, Any], bool] | None = None

    def next_batch(self) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """The next step's data and whether it logs (so computes gradient norms)."""
        images, labels = self.stream.next(self.n_critic)
        logs = (self.step + 1) % self.every["log_every"] == 0 or self.step + 1 == self.total
        return images, labels, logs

    def stop_now(self) -> TrainResult:
        """Checkpoint where training is and end ``released`` (back to the queue, to resume later)."""
        if self.pending is not None:
            self._fetch(*self.pending)
        self._settle_saves()
        if self.checkpoint_step != self.step:
            self._save(("latest",))
            self._settle_saves()
        self.writer.hparams_end("unknown")
        return self._result("released", self.step)

    def end_stopped(self, reason: str, said: bool = False) -> TrainResult:
        """End on a GAN-aware stop: checkpointed (its state says the stop fired), said in the Text dashboard.

        ``said``: the process that stopped it already wrote the checkpoint and the text.
        """
        if getattr(self, "pending", None) is not None:  # none before the first step
            self._fetch(*self.pending)
            self.pending = None
        self._settle_saves()
        if self.checkpoint_step != self.step:
            self._save(("latest",))
            self._settle_saves()
        if not said:
            self.writer.text("stop_reason", f"stopped at step {self.step}: {reason}", self.step)
        # Not a failure: the run ended as its settings asked; the Text dashboard says why.
        self.writer.hparams_end("success")
        return self._result("stopped", self.step, stop_reason=reason)

    def after_step(self, out: Mapping[str, Any], logs: bool, started: float) -> None:
        """Everything after the step ran: losses, logs, samples, evaluation, checkpoints (may raise _Diverged)."""
        every = self.every
        self.step += 1
        # Read the previous step's losses while this one runs (JAX dispatches asynchronously).
        if self.pending is not None:
            self._fetch(*self.pending)
        self.pending = (self.step, out, logs)
        due = {k for k, n in every.items() if self.step % n == 0}
        final = self.step == self.total
        if due or final:
            self._fetch(*self.pending)
            self.pending = None
        if self.compiled:  # the first step of a process is mostly compilation
            self.window_time += time.perf_counter() - started
            self.window_steps += 1
        self.compiled = True
        if "log_every" in due or final:
            rate = self.window_steps / self.window_time if self.window_time > 0 else math.nan
            self._log(rate, rate * self.images_per_step)
            self.window_steps, self.window_time = 0, 0.0
        if "sample_every" in due or final:
            self._log_samples()
        improved = False
        if "eval_every" in due or final:
            improved = self._evaluate()
        which = (("latest",) if "checkpoint_every" in due or final else ()) + (("best",) if improved else ())
        if which:
            self._save(which)
        elif self._saving is not None and not self.saver.busy():
            self._settle_saves()

    def _finish(self, status: str) -> TrainResult:
        self._settle_saves()
        self.writer.hparams_end("success")
        return self._result(status, self.step)

    def _result(self, status: str, step: int, error: str | None = None, tb: str | None = None,
                stop_reason: str | None = None) -> TrainResult:
        best = {k: v for k, v in self.tracker.best.items()}
        return TrainResult(
            status=status,  # type: ignore[arg-type]
            step=step,
            metrics=dict(self.tracker.last),
            best_metrics=best,
            error=error,
            traceback=tb,
            warnings=list(self.warnings),
            run_dir=str(self.run_dir.path),
            start_step=self.start,
            stop_reason=stop_reason,
            cards=dict(self.tracker.cards),
        )

    # ----------------------------------------------------------- per-event

    def _fetch(self, step: int, out: Mapping[str, Any], norms: bool = True) -> None:
        # Without norms the step reports 0 for them: keep the last computed ones instead.
        values = {k: float(np.asarray(v)) for k, v in out.items() if norms or not k.startswith("grad_norm/")}
        bad = [k for k, v in values.items() if k.startswith("loss/") and not math.isfinite(v)]
        if bad:
            self.writer.scalars(values, step)
            raise _Diverged(step, f"{bad[0]} became {values[bad[0]]}")
        self.last = {**self.last, **values}
        reason = self.stops.after_step(step, values)
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason

    def _log(self, steps_per_s: float, images_per_s: float) -> None:
        scalars = dict(self.last)
        scalars["lr/generator"] = float(self.train_params["lr_g"])
        scalars["lr/discriminator"] = float(self.train_params["lr_d"])
        if math.isfinite(steps_per_s):
            scalars["perf/steps_per_s"] = steps_per_s
            scalars["perf/images_per_s"] = images_per_s
        self.writer.scalars(scalars, self.step)
        self.reporter.on_progress(self.step, dict(self.last), steps_per_s, images_per_s)

    def _log_samples(self) -> None:
        from ganlab.tblog import image_grid, save_png

        images = generate_all(self.gan_step.generate, self.fixed_z, self.fixed_labels, len(self.fixed_z))
        grid = image_grid(images, ncols=int(math.sqrt(len(images))) or None)
        self.writer.image("samples", grid, self.step)
        self.run_dir.samples_png.parent.mkdir(parents=True, exist_ok=True)
        save_png(grid, self.run_dir.output(self.run_dir.samples_png))  # atomic itself

    def _evaluate(self) -> bool:
        fake = generate_all(self.gan_step.generate, self.eval_z, self.eval_labels, self.chunk)
        try:
            record, improved = self.tracker.evaluate(self.step, fake)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            # A metric that cannot be computed (e.g. degenerate samples) must not end a long run;
            # it is reported in the result, the Text dashboard and metrics.jsonl instead.
            message = f"evaluation at step {self.step} failed: {type(exc).__name__}: {exc}"
            self.warnings.append(message)
            self.writer.text("warnings", message, self.step)
            self.run_dir.append_metrics({"step": self.step, "error": message})
            return False
        extra: dict[str, float] = {}
        if self.stops.wants_diversity:
            extra["diversity"] = self.tracker.diversity(fake)
        reason = self.stops.after_eval(self.step, record, extra.get("diversity"))
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason
        self.writer.scalars({**self.tracker.scalars(), **{f"metrics/{k}": v for k, v in extra.items()}}, self.step)
        if self.tracker.cards != self._cards_logged:
            # Once per run (and again if they change): how every score was computed, beside the curves.
            self.writer.text("metric_cards", cards_markdown(self.tracker.cards), self.step)
            self._cards_logged = dict(self.tracker.cards)
        self.writer.flush()
        self.run_dir.append_metrics(
            {"step": self.step, **record, **extra, "ema": self.gan.ema_generator is not None,
             "protocol": self.tracker.protocol, "cards": self.tracker.cards}
        )
        self.reporter.on_eval(self.step, {**record, **{f"best_{k}": v for k, v in self.tracker.best.items()}})
        return improved

    def _save(self, which: tuple[str, ...]) -> None:
        self.gan_step.push()
        arrays = self.gan.to_arrays()
        if not all_finite(arrays):
            raise _Diverged(self.step, "a weight became NaN or Inf")
        arrays["fixed/z"] = self.fixed_z
        if self.fixed_labels is not None:
            arrays["fixed/labels"] = self.fixed_labels
        state = {
            "step": self.step,
            "batches_taken": self.stream.batches_taken,
            "config_hash": self.trainer.config.hash,
            "backend": self.train_params["backend"],
            "data": self.data_info,
            "metrics": self.tracker.state(),
            "last_losses": self.last,
            "stops": self.stops.state(),
            "saved_at": time.time(),
        }
        self._settle_saves()
        # Written in the background while training goes on: the arrays are a snapshot no step changes.
        self.saver.save([self.run_dir.output(self.run_dir.checkpoint(name)) for name in which], arrays,
                        [{**state, "kind": name} for name in which])
        self._saving = (self.step, "latest" in which)
        self.writer.flush()

    def _settle_saves(self, quietly: bool = False) -> None:
        """Wait for the checkpoint in flight; once on disk it is the one to resume from."""
        try:
            self.saver.wait()
        except Exception:
            if not quietly:
                raise
            return
        if self._saving is not None:
            step, latest = self._saving
            self._saving = None
            if latest:
                self.checkpoint_step = step
                self.reporter.on_checkpoint(step)

