"""The report channel from a training child to its worker: JSON lines over a pipe.

The child writes one JSON object per line to an inherited file descriptor;
the worker reads without blocking. A pipe rather than the database keeps the
child free of any store code and lets the worker stay the only writer of its
experiments' rows (it holds the fencing token).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

#: Exit codes of ``ganlab train`` that the worker understands.
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_DIVERGED = 3
EXIT_STOPPED = 4  # checkpointed on request; resume later


class PipeReporter:
    """Child side: implements the trainer's reporter interface by writing events.

    ``worker_pid`` is the worker's pid as the worker handed it over (see
    :mod:`ganlab.worker.lifeline`); without it (``ganlab train --report-fd``
    run by hand) the parent seen now stands in for the worker.
    """

    def __init__(self, fd: int, worker_pid: int | None = None) -> None:
        self._file = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._broken = False
        self._parent = worker_pid if worker_pid is not None else os.getppid()

    def _send(self, event: str, **data: Any) -> None:
        if self._broken:
            return
        try:
            self._file.write(json.dumps({"event": event, **data}, default=float) + "\n")
        except (BrokenPipeError, OSError):
            # The worker is gone; training goes on and checkpoints, the lease decides ownership.
            self._broken = True

    def on_start(self, start_step: int, total_steps: int) -> None:
        self._send("start", step=start_step, total=total_steps)

    def on_progress(self, step: int, losses: Mapping[str, float], steps_per_s: float, images_per_s: float) -> None:
        self._send("progress", step=step, losses=dict(losses), steps_per_s=steps_per_s, images_per_s=images_per_s)

    def on_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        self._send("eval", step=step, metrics=dict(metrics))

    def on_checkpoint(self, step: int) -> None:
        self._send("checkpoint", step=step)

    def on_result(self, status: str, step: int, metrics: Mapping[str, Any], error: str | None) -> None:
        self._send("result", status=status, step=step, metrics=dict(metrics), error=error)

    def should_stop(self) -> bool:
        """Stop (checkpointing) once the worker is gone: its lease will lapse and another
        worker will resume this run, so two processes must not write one run directory."""
        return os.getppid() != self._parent

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
                events.append(json.loads(line))
            except ValueError:
                continue  # a torn line from a child killed mid-write
        return events

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.closed = True
