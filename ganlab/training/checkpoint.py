"""Checkpoints: every variable as numpy in one ``.npz`` plus a JSON state, written atomically.

One file per checkpoint (``checkpoints/latest.npz``, ``checkpoints/best.npz``)
holds the arrays and, under the key ``__state__``, the JSON of everything
else (step, data order, metrics). A single file can be replaced in one
``os.replace``: a crash mid-write leaves a stray temp file and the previous
checkpoint intact, never a half-written latest one. The format names no
backend: a checkpoint written on JAX loads on TensorFlow and vice versa.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.errors import ConfigError

STATE_KEY = "__state__"
FORMAT_VERSION = 1


def checkpoint_path(run_dir: str | os.PathLike[str], which: str = "latest") -> Path:
    """Where the ``latest`` or ``best`` checkpoint of a run lives."""
    return Path(run_dir) / "checkpoints" / f"{which}.npz"


def save_checkpoint(path: Path, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
    """Write ``arrays`` and ``state`` to ``path`` so that readers only ever see a complete file."""
    if STATE_KEY in arrays:
        raise ValueError(f"array name {STATE_KEY!r} is reserved")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload[STATE_KEY] = np.array(json.dumps({"format": FORMAT_VERSION, **state}, sort_keys=True))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class BackgroundSaver:
    """Writes checkpoints on one background thread, at most one in flight.

    A checkpoint of the seed DCGAN is 30 MB: serialising and fsyncing it takes
    tens of milliseconds that the training step need not wait for. The caller
    hands over arrays that no later step changes (a snapshot), and learns a
    write is durable from :meth:`wait`, which also re-raises a failed write
    (a full disk fails the run rather than leaving it without checkpoints).
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganlab-checkpoint")
        self._pending: Future[None] | None = None

    def save(self, paths: Sequence[Path], arrays: Mapping[str, np.ndarray], states: Sequence[Mapping[str, Any]]) -> None:
        """Start writing ``arrays`` to each of ``paths`` (with its state); waits for the previous write first."""
        self.wait()

        def write() -> None:
            for path, state in zip(paths, states):
                save_checkpoint(path, arrays, state)

        self._pending = self._pool.submit(write)

    def busy(self) -> bool:
        """Whether a write is still in flight (without waiting)."""
        return self._pending is not None and not self._pending.done()

    def wait(self) -> None:
        """Block until the last write is on disk; re-raises its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint back as ``(arrays, state)``; ConfigError if it is missing or unreadable."""
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}; train first, or pick another run dir")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        state = json.loads(str(arrays.pop(STATE_KEY)))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it to start over") from None
    return arrays, state


def pack(prefix: str, values: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Name a list of arrays ``prefix/0000``, ``prefix/0001``, ... (variable order is the build order)."""
    return {f"{prefix}/{i:04d}": np.asarray(v) for i, v in enumerate(values)}


def unpack(prefix: str, arrays: Mapping[str, np.ndarray], expected: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """The arrays saved under ``prefix``, checked against the shapes the rebuilt model expects."""
    keys = sorted(k for k in arrays if k.startswith(prefix + "/"))
    if len(keys) != len(expected):
        raise ConfigError(
            f"checkpoint holds {len(keys)} {prefix} variables but the model has {len(expected)}; "
            "it was written by a different architecture or configuration"
        )
    values = [arrays[k] for k in keys]
    for key, value, shape in zip(keys, values, expected):
        if tuple(value.shape) != tuple(shape):
            raise ConfigError(
                f"checkpoint variable {key} has shape {tuple(value.shape)} but the model expects {tuple(shape)}; "
                "it was written by a different architecture or configuration"
            )
    return values


def all_finite(arrays: Mapping[str, np.ndarray]) -> bool:
    """True when no floating-point array holds a NaN or an Inf."""
    return all(np.isfinite(a).all() for a in arrays.values() if np.issubdtype(a.dtype, np.floating))


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
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

