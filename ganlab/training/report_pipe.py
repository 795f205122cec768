"""The report channel from a training child to its worker: JSON lines over a pipe.

The child writes one JSON object per line to an inherited file descriptor
(:class:`PipeReporter`); the worker reads them without blocking
(:class:`ReportReader`). A pipe rather than the database keeps the child free
of any store code and lets the worker stay the only writer of its
experiments' rows (it holds the fencing token).

A pack's child (:mod:`ganlab.training.pack_trainer`) shares one pipe among
its members: each event then carries the member's experiment ``id``.

Events: ``start`` (step, total), ``progress`` (step, losses, steps_per_s,
images_per_s), ``eval`` (step, metrics), ``checkpoint`` (step) and, last,
exactly one ``result``: how the run ended, the worker's one source for the
experiment's outcome. Its ``status`` is a key of
:data:`ganlab.training.report.EXIT_CODES`; with it come ``step``,
``metrics`` (final and ``best_*``), ``error`` and, for ``stopped``,
``stop_reason`` (the GAN-aware stop's). A run that ended before
training adds ``stage: "start"`` and says what stopped it in ``kind``:
``error`` (a ganlab error: ``error`` is its one-line message), ``exception``
(a bug: ``error`` is ``Type: first line``) or ``out_of_memory``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ganlab.errors import GanlabError, summary_line
from ganlab.names import printable
from ganlab.training.report import TrainResult

# How the frameworks and Python name running out of memory (TensorFlow's ResourceExhaustedError,
# XLA's RESOURCE_EXHAUSTED status inside a runtime error, Python's MemoryError).
_OOM_TYPES = ("ResourceExhaustedError", "MemoryError")
_OOM_WORDS = ("RESOURCE_EXHAUSTED", "out of memory", "OOM when allocating")


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the process ran out of (accelerator) memory: worth a retry, unlike a bug."""
    if any(cls.__name__ in _OOM_TYPES for cls in type(exc).__mro__):
        return True
    text = str(exc)
    return any(word.lower() in text.lower() for word in _OOM_WORDS)


class PipeReporter:
    """Child side: implements the trainer's reporter interface by writing events to ``fd``."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._broken = False
        self._tag: dict[str, Any] = {}

    def for_experiment(self, exp_id: int) -> PipeReporter:
        """A reporter over the same pipe whose events carry ``"id": exp_id`` (one per member of a pack)."""
        view = object.__new__(PipeReporter)
        view._file, view._broken, view._tag = self._file, False, {"id": exp_id}
        return view

    def _send(self, event: str, **data: Any) -> None:
        if self._broken:
            return
        try:
            self._file.write(json.dumps({"event": event, **self._tag, **data}, default=float) + "\n")
        except (BrokenPipeError, OSError, ValueError):
            # The worker is gone (or, for a pack member, the pipe closed); training goes on and
            # checkpoints, the lease decides ownership.
            self._broken = True

    def on_start(self, start_step: int, total_steps: int) -> None:
        self._send("start", step=start_step, total=total_steps)

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        self._send("progress", step=step, losses=dict(losses), steps_per_s=steps_per_s, images_per_s=images_per_s)

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        self._send("eval", step=step, metrics=dict(metrics))

    def on_checkpoint(self, step: int) -> None:
        self._send("checkpoint", step=step)

    def on_result(self, result: TrainResult) -> None:
        """The run's ending; the worker stores the metrics, so 'ganlab compare' shows final and best values."""
        best = {f"best_{k}": v for k, v in result.best_metrics.items()}
        # Only a stopped run has a stop reason: the event of every other ending stays as it was.
        stop = {"stop_reason": result.stop_reason} if result.stop_reason else {}
        cards = {"cards": result.cards} if result.cards else {}  # stored with the scores they describe
        self._send("result", status=result.status, step=result.step, metrics={**result.metrics, **best, **cards},
                   error=result.error, **stop)

    def on_start_failure(self, exc: BaseException) -> None:
        """The run ended before training, on ``exc``: say which ending it is and what went wrong."""
        if isinstance(exc, GanlabError):
            status, kind, error = getattr(exc, "ending", "failed"), "error", printable(str(exc))
        else:
            status, kind, error = "failed", "out_of_memory" if out_of_memory(exc) else "exception", summary_line(exc)
        self._send("result", status=status, step=0, metrics={}, error=error, stage="start", kind=kind)

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


class ReportReader:
    """Worker side: collects complete lines from the pipe without blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._buffer = b""
        self.closed = False

    def read(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while not self.closed:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn line from a child killed mid-write
            if isinstance(event, dict):
                events.append(event)
        return events

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.closed = True
