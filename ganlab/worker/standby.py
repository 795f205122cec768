"""A pre-started training child: framework imported, waiting for its experiment.

Starting a child costs seconds before the first training step (Python, then
Keras and its backend), and the GPU would sit idle for all of them between
experiments. So while an experiment trains, the worker starts the next
slot's process in advance: it imports the framework, then blocks reading one
line from stdin. When the worker assigns it an experiment (the job a fresh
child would read, plus where its log goes) it points its stdout and stderr at
the run's ``train.log`` and runs the very same job in-process
(:func:`ganlab.worker.child_main.run_job`).

It stays one process per experiment: a standby runs one experiment and exits,
so a crash or a leaked allocation still cannot reach the next run. The
standby is pinned to its slot's GPU and backend at start (both are fixed at
import); an experiment on another backend gets a fresh process instead. It
never outlives its worker: it watches the worker's lifeline
(:mod:`ganlab.worker.lifeline`) from its first line on, through its imports,
its rehearsal, the wait and the experiment it is handed; the write end then
passes from the standby to the child the worker tracks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganlab.training.report_pipe import ReportReader
from ganlab.worker import lifeline
from ganlab.worker.spawn import start_child


@dataclass
class Standby:
    """A waiting process as the worker holds it."""

    slot: str | None
    backend: str
    process: subprocess.Popen[bytes]
    report_fd: int  # the worker's read end of the report pipe
    child_report_fd: int  # the same pipe's write end, by its number inside the standby
    lifeline_fd: int  # the write end of its lifeline; whoever holds it keeps the standby alive

    def alive(self) -> bool:
        return self.process.poll() is None

    def assign(self, job: dict[str, Any], log: Path) -> tuple[subprocess.Popen[bytes], ReportReader, int] | None:
        """Hand over ``job`` (see :mod:`ganlab.worker.child_main`) with output to ``log``; None if the standby is gone.

        Its ``report_fd`` is set here: the pipe this standby was started with. With None, start a fresh process.

        Returns the process, its report reader and its lifeline's write end,
        which the caller now owns (closing it tells the process its worker is gone).
        """
        if not self.alive() or self.process.stdin is None:
            self.discard()
            return None
        line = json.dumps({**job, "report_fd": self.child_report_fd, "log": str(log)}) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            self.discard()
            return None
        handed, self.lifeline_fd = self.lifeline_fd, -1
        return self.process, ReportReader(self.report_fd), handed

    def discard(self) -> None:
        """Let it go: closing stdin makes it exit; a kill covers one stuck in its imports."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()
        try:
            os.close(self.report_fd)
        except OSError:
            pass
        lifeline.close_fd(self.lifeline_fd)
        self.lifeline_fd = -1


def start_standby(slot: str | None, backend: str, env: dict[str, str]) -> Standby:
    """Start a standby for ``slot`` with ``backend`` imported; ``env`` is the child environment of that slot."""
    read_fd, write_fd = os.pipe()
    life_read, life_write = lifeline.new_lifeline()
    process = start_child("ganlab.worker.standby", env, (read_fd, write_fd), (life_read, life_write))
    return Standby(slot, backend, process, read_fd, write_fd, life_write)


def _warm_up() -> None:
    """Import what a training child needs, then rehearse one step (the backend comes from $KERAS_BACKEND)."""
    from ganlab.training import keras_import

    keras_import.install(os.environ.get("KERAS_BACKEND"))
    import keras

    if keras.backend.backend() == "tensorflow":
        from ganlab.worker.gpu_share import apply_tf_memory_limit

        apply_tf_memory_limit()  # before the rehearsal touches the GPU

    import ganlab.metrics  # noqa: F401
    import ganlab.tblog.writer  # noqa: F401
    import ganlab.training.experiment  # noqa: F401
    import ganlab.training.report_pipe  # noqa: F401
    import ganlab.training.trainer  # noqa: F401

    try:
        _rehearse(keras.backend.backend())
    except Exception:  # noqa: BLE001 - a rehearsal only saves time; the real run reports real errors
        pass


def _rehearse(backend: str) -> None:
    """Train a tiny built-in GAN for one step and sample from it, discarding everything.

    The first step of a process pays one-time costs beyond its own compilation
    (about a second on the CPU with TensorFlow: tracing machinery, kernel
    set-up, the step code's conversion). Paying them here, before the
    experiment is known, takes them off the critical path. The real run seeds
    everything itself, so it is unaffected (a test checks the losses match).
    """
    import numpy as np

    from ganlab.config import Resolver
    from ganlab.registry import Registry
    from ganlab.specs import DataInfo
    from ganlab.training.models import build_gan
    from ganlab.training.step_common import StepSettings, make_step

    registry = Registry().load(entry_points=False, local=False)  # built-ins only: no user code runs here
    sets = {"size": 16, "base_filters": 8, "batch_size": 8, "latent_dim": 8, "backend": backend}
    config = Resolver(registry, check_data=False).resolve("dcgan", "digits", "non-saturating", sets)
    gan = build_gan(config, registry.architecture("dcgan"), DataInfo((16, 16, 1), None, 16))
    step = make_step(gan, StepSettings.from_config(config, registry.loss("non-saturating")), backend)
    out = step(np.zeros((1, 8, 16, 16, 1), np.uint8), None, 1)
    {k: float(np.asarray(v)) for k, v in out.items()}
    step.generate(np.zeros((8, 8), np.float32), None)


def _serve() -> int:
    # First, before the imports that take seconds: a worker that dies meanwhile ends this process at once.
    watch = lifeline.install_from_env()
    _warm_up()
    from ganlab.worker.child_main import read_job, run_job

    job = read_job(sys.stdin.buffer)
    if job is None:
        return 0  # the worker needs no more experiments (or went away)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(job.pop("log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return run_job(job, watch)


if __name__ == "__main__":
    sys.exit(_serve())
