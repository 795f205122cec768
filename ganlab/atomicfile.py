"""Replacing a file in one step, with the permissions the user's umask gives every other file.

``tempfile.mkstemp`` creates its file mode 0600 whatever the umask, and
``os.replace`` keeps that mode: a checkpoint or cached feature net written that
way is unreadable to the rest of a team sharing the folder, while the run's
other files are 0644. Here the temporary file is created with mode 0666 and the
process umask applies, exactly as for ``open(path, "wb")``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_ATTEMPTS = 100


@contextlib.contextmanager
def atomic_write(path: Path, *, durable: bool = True, temp_prefix: str | None = None) -> Iterator[BinaryIO]:
    """A new file in ``path``'s folder to write into; once the block ends it is moved over ``path``.

    Readers see the old file or the complete new one, never a half-written one;
    if the block raises, the temporary file is removed and ``path`` is untouched.
    ``durable``: fsync the file and the folder, so the new content survives a
    power cut; off for files that are rewritten soon anyway (previews, a copy
    written again at every start). ``temp_prefix`` (default ``.NAME.``) names
    the temporary file, for folders whose readers pick files by name.
    """
    fh, tmp = _create_temp(path.parent, temp_prefix if temp_prefix is not None else f".{path.name}.")
    try:
        with fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def _create_temp(directory: Path, prefix: str) -> tuple[BinaryIO, Path]:
    # O_EXCL and a random name, as mkstemp does, but mode 0666 so that the umask decides.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = directory / f"{prefix}{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        return os.fdopen(fd, "wb"), tmp
    raise FileExistsError(f"no free temporary name in {directory} after {_ATTEMPTS} tries")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a no-op where a directory cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
