"""One live trainer per run directory: an exclusive lock on ``RUN_DIR/train.lock`` for the trainer's life.

The lock is ``flock(2)``: it belongs to the open file, so the kernel drops it
when the holder exits however it exits (``kill -9`` included) and a lock is
never stale. The file stays once created, and empty: unlinking a lock file
lets two processes lock two different files of one name, and writing in it
would change a run dir that a refused command must leave as it was. A
second trainer names the holder's pid from ``/proc/locks`` where it can. On
NFS, Linux maps ``flock`` to the server's byte-range locks, so trainers on
different hosts sharing a runs folder exclude each other too. Without ``fcntl`` (Windows)
there is no lock: one trainer per run dir is then up to the user.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ganlab.errors import RunDirBusy

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_POLL_S = 0.25


@contextlib.contextmanager
def hold_run_dir(lock_file: Path, wait_s: float = 0.0, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the run dir's lock (``lock_file``, created with its folder if needed) for the block.

    Args:
        lock_file: the run dir's ``train.lock``.
        wait_s: how long to wait for another holder to exit before giving up.
        say: told once, in a sentence, when the lock is taken and the wait begins.

    Raises:
        RunDirBusy: another process still holds the lock after ``wait_s``.
        OSError: the run dir or its lock file cannot be created.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, lock_file.parent, wait_s, say)
        yield
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: Path, wait_s: float, say: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + max(0.0, wait_s)
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            # A file system without locks (some NFS set-ups): train, but say the guard is off.
            if say is not None:
                say(f"warning: cannot lock the run dir {path} ({exc.strerror or exc}); "
                    "nothing stops a second trainer on this run dir")
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunDirBusy(f"run dir {path} is in use by another trainer ({_holder(fd)}); "
                             "wait for it to exit or stop it, then try again")
        if not told and say is not None:
            say(f"waiting up to {wait_s:g} s for the previous trainer of {path} ({_holder(fd)}) to exit")
            told = True
        time.sleep(min(_POLL_S, remaining))


def _holder(fd: int) -> str:
    """Who holds the lock on ``fd``'s file: its pid as Linux lists it, if it is a process of this host."""
    try:
        info = os.fstat(fd)
        key = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1474572 0 EOF"; a waiter's line has "->" after the number
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == key:
                return f"pid {int(fields[4])}"
    except (OSError, ValueError):
        pass
    return "another process, maybe on another host"
