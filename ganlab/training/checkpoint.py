"""Checkpoints: every variable as numpy in one ``.npz`` plus a JSON state, written atomically.

One file per checkpoint (``checkpoints/latest.npz``, ``checkpoints/best.npz``)
holds the arrays and, under the key ``__state__``, the JSON of everything
else (step, data order, metrics) and a manifest of the arrays' shapes and dtypes. A
single file can be replaced in one ``os.replace``: a crash mid-write leaves a
stray temp file and the previous checkpoint intact, never a half-written latest
one. The latest checkpoint's prior version is kept as ``previous.npz``, so a
latest one damaged after it was written (a full disk, a copy cut short) still
leaves a checkpoint to resume from. The format names no backend: a checkpoint
written on JAX loads on TensorFlow and vice versa.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.atomicfile import atomic_write, fsync_dir
from ganlab.errors import ConfigError

STATE_KEY = "__state__"
FORMAT_VERSION = 1
#: Checkpoints whose prior version is kept, and under which name.
KEEP_PREVIOUS = {"latest": "previous"}
#: Where a resume looks, in this order; after ``latest``, the intact one with the highest step wins.
RESUME_FROM = ("latest", "previous", "best")
#: Suffix a damaged checkpoint gets when a resume skips it.
DAMAGED_SUFFIX = ".damaged"


class CheckpointDamaged(ConfigError):
    """A checkpoint file is there but incomplete or corrupt (truncated, a bad CRC, arrays missing)."""


def checkpoint_path(run_dir: str | os.PathLike[str], which: str = "latest") -> Path:
    """Where the ``latest``, ``previous`` or ``best`` checkpoint of a run lives."""
    return Path(run_dir) / "checkpoints" / f"{which}.npz"


def save_checkpoint(path: Path, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
    """Write ``arrays`` and ``state`` to ``path`` so that readers only ever see a complete file.

    Writing ``latest.npz`` keeps the file it replaces as ``previous.npz``.
    """
    if STATE_KEY in arrays:
        raise ValueError(f"array name {STATE_KEY!r} is reserved")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    # The manifest lets a reader prove every array came back whole, without the model at hand.
    manifest = {k: [list(v.shape), v.dtype.str] for k, v in payload.items()}
    payload[STATE_KEY] = np.array(json.dumps({"format": FORMAT_VERSION, **state, "manifest": manifest}, sort_keys=True))
    with atomic_write(path) as fh:
        np.savez(fh, **payload)
        # Only once the new file is complete: a failed write must not push out a good previous one.
        if path.stem in KEEP_PREVIOUS and path.is_file():
            _share(path, path.with_name(f"{KEEP_PREVIOUS[path.stem]}.npz"))


def _share(source: Path, target: Path) -> None:
    """Replace ``target`` by the current content of ``source``, leaving ``source`` in place."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        os.link(source, tmp)  # a second name for the same file: no copy
    except OSError:
        # A file system without hard links: copy (checkpoints are written on the saver's thread anyway).
        with atomic_write(target) as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        return
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


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
    """Read a checkpoint back as ``(arrays, state)``, verified whole.

    Raises CheckpointDamaged when the file is truncated or corrupt (the zip's CRCs,
    the state, the manifest's arrays and shapes), ConfigError when it is missing
    or the system refuses to read it; both messages name the file.
    """
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}; train first, or pick another run dir")
    try:
        # Reading each array to its end makes zipfile check that member's CRC.
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except OSError as exc:
        raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc.strerror or exc})") from None
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointDamaged(f"checkpoint {path} is damaged or incomplete ({type(exc).__name__}: {exc})") from None
    try:
        state = json.loads(str(arrays.pop(STATE_KEY)))
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise ValueError("its state records no step")
        _check_manifest(arrays, state.pop("manifest", None))
    except (KeyError, ValueError, TypeError) as exc:
        what = "it has no state" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointDamaged(f"checkpoint {path} is damaged or incomplete ({what})") from None
    return arrays, state


def _check_manifest(arrays: Mapping[str, np.ndarray], manifest: Any) -> None:
    if manifest is None:
        return  # written before checkpoints carried one
    if not isinstance(manifest, dict):
        raise ValueError("its manifest is not a table")
    missing = sorted(set(manifest) - set(arrays))
    if missing:
        raise ValueError(f"{len(missing)} of its {len(manifest)} arrays are missing, e.g. {missing[0]}")
    for name, (shape, dtype) in manifest.items():
        value = arrays[name]
        if list(value.shape) != list(shape) or value.dtype.str != dtype:
            raise ValueError(f"array {name} is {value.dtype.str}{list(value.shape)}, the manifest says {dtype}{shape}")


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resumed run starts from, and what was skipped to find it."""

    arrays: dict[str, np.ndarray]
    state: dict[str, Any]
    path: Path
    #: Set when it is not the latest checkpoint: one line saying why, naming the files.
    warning: str | None = None


def resume_point(run_dir: str | os.PathLike[str]) -> ResumePoint | None:
    """The newest intact checkpoint of ``run_dir``: ``latest``, else the later of ``previous`` and ``best``.

    None when the run has no checkpoint yet (it starts at step 0). When it is not
    the latest one, each damaged checkpoint is renamed ``NAME.npz.damaged`` (kept for
    a look, never loaded or kept as the previous one again), the one chosen becomes
    ``latest.npz``, and the warning names them all. When checkpoints exist but none
    is intact, raises CheckpointDamaged and changes nothing: hours of training should
    not restart from zero without the user saying so.
    """
    paths = [checkpoint_path(run_dir, which) for which in RESUME_FROM]
    present = [p for p in paths if p.is_file()]
    if not present:
        return None
    damaged: list[tuple[Path, CheckpointDamaged]] = []
    intact: list[tuple[Path, dict[str, np.ndarray], dict[str, Any]]] = []
    for path in present:
        try:
            arrays, state = load_checkpoint(path)
        except CheckpointDamaged as exc:
            damaged.append((path, exc))
            continue
        if path == paths[0]:
            return ResumePoint(arrays, state, path)
        intact.append((path, arrays, state))
    if not intact:
        listed = "; ".join(str(exc) for _, exc in damaged)
        raise CheckpointDamaged(
            f"no intact checkpoint to resume {run_dir} from: {listed}; nothing was changed. "
            f"To train it again from step 0, move {paths[0].parent} aside"
        )
    path, arrays, state = max(intact, key=lambda item: int(item[2]["step"]))
    reasons = [f"{paths[0].name} is missing"] if paths[0] not in present else []
    for bad, exc in damaged:
        os.replace(bad, bad.with_name(bad.name + DAMAGED_SUFFIX))
        reasons.append(f"{exc}, renamed to {bad.name + DAMAGED_SUFFIX}")
    # The starting point becomes the latest again: 'ganlab sample' finds it even when the run
    # was already complete and writes nothing more, and the next save keeps it as the previous one.
    _share(path, paths[0])
    warning = f"resuming from {path} at step {state['step']}: " + "; ".join(reasons)
    return ResumePoint(arrays, state, path, warning)


def pack(prefix: str, values: Sequence[np.ndarray], paths: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Name arrays ``prefix/0000/PATH``, ``prefix/0001/PATH``, ... in the variables' build order.

    The number keeps the order (what a load relies on); the variable's path
    (``dense/kernel``) tells a reader of the ``.npz`` which weight it is.
    """
    names = [_key_part(p) for p in paths] if paths is not None else [""] * len(values)
    return {f"{prefix}/{i:04d}" + (f"/{n}" if n else ""): np.asarray(v) for i, (v, n) in enumerate(zip(values, names))}


#: Objects Keras creates inside layers (Dropout's seed generator) and numbers per process
#: (``seed_generator_2`` in a process that built a model before): a plugin cannot name them.
_PROCESS_NUMBERED = re.compile(r"(?<![^/])(seed_generator)_\d+(?=/|$)")


def _key_part(path: str) -> str:
    # Keras paths are letters, digits, "_" and "/"; anything else would make an odd name in the zip.
    clean = "".join(c if c.isascii() and (c.isalnum() or c in "_/-.") else "_" for c in path).strip("/")
    # The same model gets the same keys in every process; the build-order number keeps them unique.
    return _PROCESS_NUMBERED.sub(r"\1", clean)


def unpack(prefix: str, arrays: Mapping[str, np.ndarray], expected: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """The arrays saved under ``prefix`` in build order, checked against the shapes the rebuilt model expects.

    Reads both key forms: ``prefix/0003/dense/kernel`` and the older bare ``prefix/0003``.
    """
    keys = sorted((k for k in arrays if k.startswith(prefix + "/")), key=_order)
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


def _order(key: str) -> tuple[int, str]:
    # The build-order number, compared as a number (0999 < 1000) without trusting it to be one.
    number = key.split("/", 2)[1]
    return (len(number.lstrip("0")), number.lstrip("0"))


def all_finite(arrays: Mapping[str, np.ndarray]) -> bool:
    """True when no floating-point array holds a NaN or an Inf."""
    return all(np.isfinite(a).all() for a in arrays.values() if np.issubdtype(a.dtype, np.floating))
