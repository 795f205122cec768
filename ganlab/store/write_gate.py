"""Queueing this host's writers to one SQLite file on an OS file lock."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]


class WriteGate:
    """Queues this host's writers to one SQLite file on an OS file lock (``FILE-lock``).

    SQLite makes a writer that finds the database locked sleep and retry, up
    to 100 ms at a time, so under contention a claim can wait hundreds of
    milliseconds while the lock sits free. A blocking ``flock`` is handed to
    the next waiter as soon as it is released, and the releaser yields its
    CPU so that waiter gets it before the releaser's own next write. SQLite's
    own locking still guarantees correctness (other tools, a folder where the
    lock file cannot be created); the gate only removes the idle waiting.

    The lock file belongs to the database once a write has gone through; a
    write that is refused (an unknown id, a lifecycle rule) removes the lock
    file it created itself, so a rejected command leaves the folder as it was.
    """

    def __init__(self, db_path: Path | None) -> None:
        self._path = Path(f"{db_path}-lock") if db_path is not None and fcntl is not None else None
        self._fd: int | None = None
        self._created = False  # this process created the lock file and no write has gone through yet
        self._local = threading.RLock()
        self._depth = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._local:  # threads of one process share the file descriptor, so they queue here
            fd = self._open() if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            failed = True
            try:
                yield
                failed = False
            finally:
                self._depth -= 1
                if fd is not None:
                    # Unlinking while holding the lock is safe: a process that opened the file
                    # meanwhile locks an orphan inode, and SQLite's own lock still orders it.
                    discard = failed and self._created
                    if discard:
                        self._unlink()
                    self._created = False
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    if discard:
                        os.close(fd)
                        self._fd = None  # the next write opens (and creates) the lock file afresh
                    # Let a woken waiter run before this process comes back for its next write:
                    # otherwise the releaser, still on the CPU, usually re-takes the lock first,
                    # and on a busy host some claims wait behind many others (benchmark p99: 24 -> 12-15 ms).
                    os.sched_yield()

    def _open(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None:
            try:
                try:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                    self._created = True
                except FileExistsError:
                    self._fd = os.open(self._path, os.O_RDWR)
            except OSError:
                self._path = None  # read-only folder: rely on SQLite's busy handler
                return None
        return self._fd

    def _unlink(self) -> None:
        try:
            if self._path is not None:
                self._path.unlink()
        except OSError:
            pass  # gone already, or the folder turned read-only: an empty lock file is harmless

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
