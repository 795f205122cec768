"""The one entry for running an experiment: ``ganlab train``, a worker's child and a pre-started process.

:func:`run_experiment` trains a resolved config in its run dir and ends the
same way for every caller: the stop flag on SIGINT/SIGTERM, the result line
printed (the last line of a worker's ``train.log``), then the result handed
to the reporter (a worker's child sends it to its worker, which reads the
experiment's outcome from it). Callers only choose the reporter and how
long to wait for a run dir another process still trains.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, TextIO

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.registry import Registry
from ganlab.training.report import MultiReporter, StopFlag, TrainResult


def run_experiment(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    reporter: object | None = None,
    *,
    registry: Registry | None = None,
    resume: bool = False,
    wait_s: float = 0.0,
    watch: Any = None,
    extend: bool = False,
) -> TrainResult:
    """Train ``config`` in ``run_dir``, print how it ended and hand the result to ``reporter``.

    Args:
        reporter: progress callbacks (:class:`ganlab.training.report.Reporter`), plus the
            optional ``on_end()`` (training is over; a display closes) and ``on_result(result)``.
        registry: where the plugins come from; the default plugin set if omitted.
        resume: continue from the run dir's latest checkpoint (see :func:`ganlab.training.train`).
        wait_s: how long to wait for another process training ``run_dir`` to exit.
        extend: accept a run dir whose run had fewer steps (see :func:`ganlab.training.train`).
        watch: a worker's child's lifeline (:class:`ganlab.worker.lifeline.WorkerWatch`): its
            worker's death stops the run, and a run that then ends says "released" instead.

    Raises what :func:`ganlab.training.train` raises before training starts; a
    failure to write the run dir's files becomes a one-line ConfigError.
    """
    from ganlab.training.backend import activate_backend
    from ganlab.training.trainer import train

    activate_backend(config.train["backend"])
    stop = StopFlag()
    chain = MultiReporter(*(r for r in (reporter, watch) if r is not None), stop=stop)
    try:
        with stop.on_signals((signal.SIGINT, signal.SIGTERM)), _run_dir_errors(Path(run_dir)):
            result = train(config, run_dir, resume=resume, reporter=chain, registry=registry, wait_s=wait_s,
                           extend=extend)
    finally:
        chain.on_end()
    orphaned = watch is not None and watch.gone()
    if orphaned and result.status in ("succeeded", "stopped"):
        # Nobody is left to record it: the worker that resumes the run records it (at once, all steps
        # being done or its stop having fired), so the log says how it ended once, for the attempt that counts.
        result.status = "released"
    # The line first: once a worker has the result it may record it and be killed with this process
    # at any moment, and a row marked succeeded must never have a log that does not say so.
    print_result(result, stop.signal_name, orphaned)
    chain.on_result(result)
    return result


def run_pack_experiment(
    configs: Sequence[ExperimentConfig],
    run_dirs: Sequence[str | os.PathLike[str]],
    reporters: Sequence[object],
    logs: Sequence[TextIO],
    *,
    registry: Registry | None = None,
    wait_s: float = 0.0,
    watch: Any = None,
) -> list[TrainResult]:
    """Train a pack (:func:`ganlab.training.pack_trainer.train_pack`) the way :func:`run_experiment` trains one run.

    Each member ends on its own: as soon as it does, its result line goes to
    its ``logs`` stream (its train.log) and its result to its reporter, while
    the others train on. Always resumes.
    """
    from ganlab.training.backend import activate_backend
    from ganlab.training.pack_trainer import train_pack

    activate_backend("jax")
    stop = StopFlag()
    chains = [MultiReporter(*(r for r in (reporter, watch) if r is not None), stop=stop) for reporter in reporters]

    def ended(index: int, result: TrainResult) -> None:
        orphaned = watch is not None and watch.gone()
        if orphaned and result.status in ("succeeded", "stopped"):
            result.status = "released"  # as in run_experiment: the worker that resumes it records it
        chains[index].on_end()
        with redirect_stdout(logs[index]), redirect_stderr(logs[index]):
            print_result(result, stop.signal_name, orphaned)
        chains[index].on_result(result)

    with stop.on_signals((signal.SIGINT, signal.SIGTERM)), _run_dir_errors(Path(run_dirs[0]).parent):
        return train_pack(configs, run_dirs, chains, resume=True, registry=registry, wait_s=wait_s,
                          on_member_end=ended)


@contextmanager
def _run_dir_errors(directory: Path) -> Iterator[None]:
    """Turn a failure to create the run dir's files (a full disk, a race with the checks) into one line."""
    try:
        yield
    except OSError as exc:
        where = os.path.abspath(exc.filename) if isinstance(exc.filename, str) else None
        if where is None or not Path(where).is_relative_to(os.path.abspath(directory)):
            raise
        raise ConfigError(f"cannot write the run dir {directory}: {exc.strerror} ({where})") from None


def print_result(result: TrainResult, signal_name: str | None = None, orphaned: bool = False) -> None:
    """The run's last lines: warnings, then how it ended (stdout) or what went wrong (stderr)."""
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    where = result.run_dir
    metrics = "  ".join(f"{k} {result.metrics[k]:.4g}" for k in ("fd", "fd_floor", "kid") if k in result.metrics)
    if result.status == "succeeded" and result.start_step >= result.step > 0:
        # A resume of a finished run (its worker died before recording it): this process trained nothing.
        print(f"already complete at step {result.step}, nothing left to train  {metrics}  ({where})")
    elif result.status == "succeeded":
        print(f"succeeded at step {result.step}  {metrics}  ({where})")
    elif result.status == "stopped" and result.start_step >= result.step > 0:
        print(f"already stopped at step {result.step}: {result.stop_reason}  {metrics}  ({where})")
    elif result.status == "stopped":
        print(f"stopped at step {result.step}: {result.stop_reason}  {metrics}  ({where})")
    elif result.status == "released":
        why = " (its worker is gone)" if orphaned else f" on {signal_name}" if signal_name else ""
        print(f"stopped{why} at step {result.step}, checkpoint written; continue with: "
              f"ganlab train --resume --run-dir {shlex.quote(str(where))}")
    elif result.status == "diverged":
        print(f"diverged: {result.error} ({where})", file=sys.stderr)
    else:
        if result.traceback:
            print(result.traceback.rstrip(), file=sys.stderr)
        print(f"Error: training failed at step {result.step}: {result.error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
