"""How a training run talks to whoever started it: a reporter in, a result out.

The trainer never imports the worker or the CLI. Both hand it an object with
the :class:`Reporter` methods (:class:`BaseReporter` gives no-op defaults to
subclass) and read back a :class:`TrainResult`. Around the trainer,
:func:`ganlab.training.experiment.run_experiment` also calls two optional
methods: ``on_end()`` once training is over (a display closes there, before
the result line is printed) and ``on_result(result)`` after that line.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Status = Literal["succeeded", "diverged", "stopped", "released", "failed"]

#: Exit status of ``ganlab train`` and of a worker's child for each ending: the one table. The worker
#: reads the ending from the child's result event and falls back on this only for a child that died
#: without one. ``refused``: a local plugin file the worker pinned changed, nothing ran
#: (:class:`ganlab.errors.PluginRefused`); ``busy``: another process trains the run dir
#: (:class:`ganlab.errors.RunDirBusy`).
#: ``stopped``, a GAN-aware stop, is an ending the run's own settings asked for: 0, like ``succeeded``.
#: ``released``: stopped on request (a signal, the worker), checkpointed, to be resumed.
EXIT_CODES: dict[str, int] = {"succeeded": 0, "stopped": 0, "failed": 1, "diverged": 3, "released": 4, "refused": 5,
                              "busy": 6}


def exit_code(error: BaseException) -> int:
    """The exit status for a run that could not start because of ``error`` (its ``ending``, else failed)."""
    return EXIT_CODES.get(getattr(error, "ending", "failed"), EXIT_CODES["failed"])


@runtime_checkable
class Reporter(Protocol):
    """Progress callbacks; every method is called from the training thread."""

    def on_start(self, start_step: int, total_steps: int) -> None:
        """Training begins at ``start_step`` (0, or the resumed step) of ``total_steps``."""

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        """Called every ``log_every`` steps with the latest scalars."""

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        """Metrics (``fd``, ``kid``, floors, bests) computed at ``step``."""

    def on_checkpoint(self, step: int) -> None:
        """The latest checkpoint now holds ``step``."""

    def should_stop(self) -> bool:
        """Polled once per step: True makes the trainer checkpoint and return ``released``."""


class BaseReporter:
    """A reporter that ignores everything; subclass and override what you need."""

    def on_start(self, start_step: int, total_steps: int) -> None:
        pass

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        pass

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def on_checkpoint(self, step: int) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass
class TrainResult:
    """How a run ended.

    Attributes:
        status: ``succeeded``, ``stopped`` (a GAN-aware stop fired: see ``stop_reason``;
            checkpointed, final), ``diverged`` (NaN/Inf loss), ``released`` (stopped on
            request: checkpointed, to be resumed) or ``failed`` (an exception; see ``error``).
        step: the last completed step; for ``diverged``, the step whose loss was not finite.
        metrics: the last evaluation's metrics (empty if none ran).
        best_metrics: the best value of each metric so far, plus ``step`` of the best ``fd``.
        error: one line saying what went wrong, or ``None``.
        traceback: the full traceback of a ``failed`` run.
        warnings: problems that did not stop the run (e.g. an evaluation that failed).
        run_dir: where the run's files are.
        start_step: the step this process started (or resumed) from.
        stop_reason: why a GAN-aware stop ended a ``stopped`` run (see :mod:`ganlab.training.stops`).
        cards: ``metric name -> metric card`` of the scores in ``metrics`` (see docs/metrics.md).
    """

    status: Status
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    run_dir: str | None = None
    start_step: int = 0
    stop_reason: str | None = None
    cards: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MultiReporter(BaseReporter):
    """Forwards every event to several reporters; stops when any of them, or ``stop``, asks to."""

    def __init__(self, *reporters: object, stop: StopFlag | None = None) -> None:
        self.reporters = reporters
        self.stop = stop

    def _each(self, method: str, *args: Any) -> None:
        for r in self.reporters:
            fn = getattr(r, method, None)
            if fn is not None:
                fn(*args)

    def on_start(self, start_step: int, total_steps: int) -> None:
        self._each("on_start", start_step, total_steps)

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        self._each("on_progress", step, losses, steps_per_s, images_per_s)

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        self._each("on_eval", step, metrics)

    def on_checkpoint(self, step: int) -> None:
        self._each("on_checkpoint", step)

    def on_end(self) -> None:
        self._each("on_end")

    def on_result(self, result: TrainResult) -> None:
        self._each("on_result", result)

    def should_stop(self) -> bool:
        if self.stop is not None and self.stop:
            return True
        return any(getattr(r, "should_stop", lambda: False)() for r in self.reporters)


class StopFlag:
    """Set by a signal handler, read by :meth:`Reporter.should_stop`.

    The first signal asks for a clean stop (checkpoint, then return); a second
    one restores the default handlers and is raised as usual, for a user who
    really wants out now. A second one within :attr:`REPEAT_S` of the first
    is the same request delivered twice: SLURM signals every process of a
    job, and the worker forwards the signal to its children too.
    """

    REPEAT_S = 2.0

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None
        self._set_at = 0.0

    def set(self, name: str = "request") -> None:
        self.signal_name = name
        self._set_at = time.monotonic()
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def on_signals(self, signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[StopFlag]:
        """Install handlers for ``signals`` (main thread only) and restore the old ones after."""
        signals = list(signals)
        previous = {s: signal.getsignal(s) for s in signals}

        def handler(signum: int, frame: Any) -> None:
            if self and time.monotonic() - self._set_at < self.REPEAT_S:
                return
            if self:
                for s, old in previous.items():
                    signal.signal(s, old)
                signal.raise_signal(signum)
                return
            self.set(signal.Signals(signum).name)

        for s in signals:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
