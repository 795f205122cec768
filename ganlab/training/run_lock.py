"""One live trainer per run directory: an exclusive lock on ``RUN_DIR/train.lock`` for the trainer's life.

The lock is ``flock(2)``: it belongs to the open file, so the kernel drops it
when the holder exits however it exits (``kill -9`` included) and a lock is
never stale. The file stays once created (unlinking a lock file lets two
processes lock two different files of one name); it holds the last holder's
pid and host, for the message a second trainer prints. On NFS, Linux maps
``flock`` to the server's byte-range locks, so trainers on different hosts
sharing a runs folder exclude each other too. Without ``fcntl`` (Windows)
there is no lock: one trainer per run dir is then up to the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
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
        _write_holder(fd)
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


def _write_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now().isoformat(timespec="seconds")}
    with contextlib.suppress(OSError):  # only a message depends on it
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it down."""
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        host, since = (("".join(c for c in str(info[k])[:100] if c.isprintable())) for k in ("host", "since"))
        return f"pid {int(info['pid'])} on {host}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
