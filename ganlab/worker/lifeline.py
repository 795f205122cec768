"""How a worker's child learns that its worker is gone, at any moment of its life.

At spawn the worker hands each child, and each pre-started process, its own
pid (``GANLAB_WORKER_PID``) and the read end of a pipe whose only write end
the worker keeps until it has settled the child (``GANLAB_LIFELINE_FD``).
Nothing is ever written into that pipe: when the worker dies, however it
dies, the kernel closes its end and the child's read returns end-of-file.
That cannot be missed by looking too late, unlike a parent pid noted when
some object is created (a child orphaned while it still imported once took
init for its worker and trained on for ever): a child that starts watching
after its worker died sees the end-of-file at once.

What the child does then depends on how far it got:

* starting up (imports, plugins, data, models, waiting for the run dir's
  lock): nothing is worth saving, so it exits at once. On Linux the kernel
  also kills it in this phase (``PR_SET_PDEATHSIG``), should Python be stuck
  in a long call that keeps the watching thread from running;
* training (from the trainer's ``on_start``): ``should_stop`` turns true, so
  the trainer checkpoints at its next step and exits "released"; a
  run still alive ``grace_s`` later (a long evaluation or checkpoint write)
  exits anyway. Checkpoints are replaced atomically, so the last complete
  one stays on disk for the worker that resumes the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
import time

from ganlab.training.report import EXIT_CODES

WORKER_PID_ENV = "GANLAB_WORKER_PID"
LIFELINE_FD_ENV = "GANLAB_LIFELINE_FD"

#: A child whose worker died gets this long to checkpoint and exit (as long as a
#: child the worker asks to stop: ganlab.worker.loop.STOP_GRACE_S).
ORPHAN_GRACE_S = 60.0

#: Exit status of a child that left because its worker was gone (resumable: "released").
EXIT_ORPHANED = EXIT_CODES["released"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def new_lifeline() -> tuple[int, int]:
    """Worker side: ``(read end for the child, write end the worker keeps until the child is settled)``.

    Both ends are non-inheritable, so no other child gets a copy of the write
    end (which would keep the pipe open after the worker died); the child's
    end is passed explicitly with ``pass_fds``.
    """
    return os.pipe()


def lifeline_env(read_fd: int) -> dict[str, str]:
    """Worker side: the environment entries that tell a child who its worker is."""
    return {WORKER_PID_ENV: str(os.getpid()), LIFELINE_FD_ENV: str(read_fd)}


def close_fd(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


class WorkerWatch:
    """Child side: watches the lifeline from a daemon thread and acts on the worker's death."""

    def __init__(self, worker_pid: int, fd: int | None, grace_s: float = ORPHAN_GRACE_S) -> None:
        self.worker_pid = worker_pid
        self.grace_s = grace_s
        self._fd = fd
        self._gone = threading.Event()
        self._training = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start watching; exits at once if the worker is already gone."""
        _set_parent_death_signal(signal.SIGKILL)
        # The signal only covers deaths after the call above: check for one before it.
        if os.getppid() != self.worker_pid:
            self._lost()
        if self._fd is not None:
            threading.Thread(target=self._wait, name="ganlab-lifeline", daemon=True).start()

    def training_started(self) -> None:
        """From now on the worker's death means "checkpoint and stop", no longer "exit at once"."""
        with self._lock:
            self._training = True
        _set_parent_death_signal(0)
        if os.getppid() != self.worker_pid:
            self._gone.set()  # reparented while switching: the lifeline thread follows with the deadline

    def gone(self) -> bool:
        """True once the worker is known to be dead (read by the trainer between steps)."""
        if not self._gone.is_set() and os.getppid() != self.worker_pid:
            self._gone.set()
        return self._gone.is_set()

    # As a reporter (ganlab.training.report.Reporter) beside the others: the trainer tells it when
    # training begins and asks it whether to stop.

    def on_start(self, start_step: int, total_steps: int) -> None:
        self.training_started()

    def should_stop(self) -> bool:
        return self.gone()

    def _wait(self) -> None:
        assert self._fd is not None
        try:
            while os.read(self._fd, 1):
                pass  # the worker never writes; tolerate it should it ever do
        except OSError:
            return  # not a lifeline after all: the parent pid check still stands
        self._lost()

    def _lost(self) -> None:
        with self._lock:
            self._gone.set()
            training = self._training
        if not training:
            _say(f"worker {self.worker_pid} is gone; exiting before training started (nothing to save)")
            os._exit(EXIT_ORPHANED)
        _say(f"worker {self.worker_pid} is gone; checkpointing and stopping (the next worker resumes this run)")
        time.sleep(self.grace_s)
        _say(f"worker {self.worker_pid} is gone and this run did not stop within {self.grace_s:g} s; exiting "
             "(the last complete checkpoint stays)")
        os._exit(EXIT_ORPHANED)


_installed: WorkerWatch | None = None


def install_from_env() -> WorkerWatch | None:
    """Child side: start watching the worker named in the environment (once per process).

    The entries are removed from the environment so that a process this child
    starts does not take the worker for its own.
    """
    global _installed
    if _installed is not None:
        return _installed
    pid_text = os.environ.pop(WORKER_PID_ENV, None)
    fd_text = os.environ.pop(LIFELINE_FD_ENV, None)
    try:
        worker_pid = int(pid_text) if pid_text else None
    except ValueError:
        worker_pid = None
    if worker_pid is None:
        return None
    _installed = WorkerWatch(worker_pid, _pipe_fd(fd_text))
    _installed.start()
    return _installed


def _pipe_fd(text: str | None) -> int | None:
    """The lifeline's descriptor, if ``text`` names an open pipe (anything else is not ours to read)."""
    try:
        fd = int(text) if text else -1
        return fd if fd >= 0 and stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (ValueError, OSError):
        return None


def _set_parent_death_signal(sig: int) -> None:
    """Linux: have the kernel send ``sig`` when the parent dies (0 turns it off); elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the lifeline alone still covers every phase


def _say(message: str) -> None:
    # os.write, not print: the main thread may hold the lock of sys.stderr.
    with contextlib.suppress(OSError):
        os.write(2, f"ganlab: {message}\n".encode())
