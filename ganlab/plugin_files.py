"""Local plugin files: who may have written them, their exact bytes, and their hashes.

A local plugin file is code that ganlab executes, so it is treated like an
ssh key file: it, and the folder holding it, must be owned by the user
running ganlab (or root) and writable by nobody else. Each file is read once,
through one open file descriptor whose owner and mode are checked; the bytes
read are hashed and are exactly the bytes executed, so nothing can be swapped
in between the check and the import.

An experiment records the files it uses at enqueue (:class:`PluginFile`); a
worker child later loads only those, each verified against its recorded
hash (:class:`PinnedFile`) before any of them runs.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import os
import stat
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from ganlab.errors import PluginError, PluginRefused

_SHA256_HEX = frozenset("0123456789abcdef")


class PluginFile(NamedTuple):
    """A local plugin file an experiment uses, as recorded at enqueue (a NamedTuple: hashable, cheap)."""

    kind: str
    name: str
    path: str  # absolute, as it was loaded when the experiment was queued
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return self._asdict()


@dataclass(frozen=True)
class PinnedFile:
    """A file a worker child may load, only if its bytes still hash to ``sha256``."""

    path: Path
    sha256: str

    @classmethod
    def parse(cls, value: str) -> PinnedFile:
        """``SHA256:PATH`` (the hash first, so a path holding ``:`` is no problem)."""
        sha, sep, path = value.partition(":")
        if not sep or len(sha) != 64 or not set(sha) <= _SHA256_HEX or not os.path.isabs(path):
            raise PluginRefused(
                f"the experiment's record of its plugin files is malformed ({value[:200]!r}); nothing of it ran. "
                "Queue it again with 'ganlab queue add'"
            )
        return cls(Path(os.path.abspath(path)), sha)


@dataclass(frozen=True)
class SourceFile:
    """The bytes of a plugin file as read (and checked) once, with their hash."""

    path: Path  # absolute
    source: bytes
    sha256: str


#: At most this many helper files (``_name.py``, see :mod:`ganlab.plugin_helpers`) per experiment.
MAX_HELPERS = 32
#: At most one plugin file per plugin kind (architecture, dataset, loss, augmentation), one per metric
#: (16, ganlab.metrics.selection.MAX_METRICS), and the helpers they import.
MAX_RECORDED = 4 + 16 + MAX_HELPERS
_MAX_PATH = 4096
MALFORMED = "malformed"


def pin_values(recorded: Any) -> list[str]:
    """``SHA256:PATH`` for each recorded file of a queue row (untrusted: junk becomes one refused value).

    Never raises: the worker must not die on a tampered row; its child refuses the value instead.
    """
    if recorded is None:
        return []
    if not isinstance(recorded, list) or len(recorded) > MAX_RECORDED:
        return [MALFORMED]
    out: list[str] = []
    for item in recorded:
        sha = item.get("sha256") if isinstance(item, dict) else None
        path = item.get("path") if isinstance(item, dict) else None
        if not (isinstance(sha, str) and isinstance(path, str)):
            return [MALFORMED]
        if len(sha) != 64 or len(path) > _MAX_PATH or "\0" in path + sha:  # argv limits: never crash the worker
            return [MALFORMED]
        out.append(f"{sha}:{path}")
    return list(dict.fromkeys(out))


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute without resolving symlinks: the path a user would recognise."""
    return Path(os.path.abspath(path))


def _uid_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _private_group(st: os.stat_result) -> bool:
    """True when the group is the owner's own (named after them, theirs alone): umask 002 is harmless there."""
    try:
        import grp
        import pwd

        owner = pwd.getpwuid(st.st_uid)
        group = grp.getgrgid(st.st_gid)
    except (ImportError, KeyError):
        return False
    return group.gr_name == owner.pw_name and owner.pw_gid == st.st_gid and set(group.gr_mem) <= {owner.pw_name}


def check_writers(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse ``path`` unless only its owner (you or root) can write it, as ssh does for key files."""
    if not hasattr(os, "geteuid"):
        return  # no POSIX owners (Windows): nothing to compare
    me = os.geteuid()
    fix = "or turn local plugins off with --no-local-plugins"
    if st.st_uid not in (me, 0):
        raise PluginError(
            f"{what} {path} is owned by {_uid_name(st.st_uid)}, not by you ({_uid_name(me)}) or root, so its "
            f"owner could change the code ganlab runs; refusing it. Copy it to a folder of your own {fix}"
        )
    writers = []
    if st.st_mode & stat.S_IWGRP and not _private_group(st):
        writers.append("its group")
    if st.st_mode & stat.S_IWOTH:
        writers.append("everyone")
    if writers:
        raise PluginError(
            f"{what} {path} is writable by {' and '.join(writers)} (mode {stat.S_IMODE(st.st_mode):04o}), so others "
            f"could change the code ganlab runs; refusing it. Fix it with: chmod go-w {path} ({fix})"
        )


def check_folder(directory: Path) -> None:
    """The plugins folder itself: whoever can write it can add or replace plugin files."""
    try:
        st = os.stat(directory)
    except OSError as exc:
        raise PluginError(
            f"cannot read plugins folder {directory} ({exc.strerror}); check it, or turn local plugins off with "
            "--no-local-plugins"
        ) from None
    check_writers(directory, st, "plugins folder")


def read_source(path: Path, what: str = "plugin file") -> SourceFile:
    """Read a plugin file once: owner and mode checked on the open descriptor, bytes hashed.

    Raises PluginError for loose permissions, OSError when it cannot be read.
    """
    # O_NONBLOCK: a FIFO named like a plugin must not hang the command at open().
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PluginError(f"{what} {path} is not a regular file; remove it from the plugins folder")
        check_writers(path, st, what)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    source = b"".join(chunks)
    return SourceFile(absolute(path), source, hashlib.sha256(source).hexdigest())


class _VerifiedSourceLoader(importlib.abc.InspectLoader):
    """Executes bytes already read and checked, never the file as it may be now."""

    def __init__(self, file: SourceFile) -> None:
        self.file = file

    def get_source(self, fullname: str) -> str:
        # inspect.getsource() and friends get the text that ran, whatever the file holds now.
        return importlib.util.decode_source(self.file.source)

    def get_code(self, fullname: str) -> Any:
        return compile(self.file.source, str(self.file.path), "exec", dont_inherit=True)

    def exec_module(self, module: ModuleType) -> None:
        exec(self.get_code(module.__name__), module.__dict__)  # noqa: S102 - the verified bytes, see read_source


def verified_spec(file: SourceFile, modname: str) -> ModuleSpec:
    """An import spec that runs ``file``'s checked bytes as module ``modname`` (for an import finder)."""
    spec = importlib.util.spec_from_file_location(modname, file.path, loader=_VerifiedSourceLoader(file))
    assert spec is not None
    return spec


def execute(file: SourceFile, modname: str) -> ModuleType:
    """Run a checked source file as module ``modname``; on any failure the module is forgotten."""
    spec = verified_spec(file, modname)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def verified_pins(directory: Path | None, pinned: tuple[PinnedFile, ...]) -> tuple[list[tuple[Path, SourceFile]], list[SourceFile]]:
    """A worker child's recorded files, each verified: in this folder, safely owned, with the recorded bytes.

    Returns the plugin files (to run) and the helper files (``_name.py``, to import from these
    verified bytes only). Raises PluginRefused (nothing of any file has run yet) naming the file
    and what to do.
    """
    unique = list({p.path: p for p in pinned}.values())
    if not unique:
        return [], []
    if directory is None:
        raise PluginRefused(
            f"this experiment uses plugin file {unique[0].path}, but local plugins are off here "
            f"(--no-local-plugins, or no plugins folder where the worker started); run it on a worker "
            f"started with --plugins-dir {unique[0].path.parent}"
        )
    folder = absolute(directory)
    check_folder(folder)
    plugins: list[tuple[Path, SourceFile]] = []
    helpers: list[SourceFile] = []
    for pin in unique:
        if pin.path.parent != folder or pin.path.suffix != ".py":
            raise PluginRefused(
                f"this experiment uses plugin file {pin.path}, which is not a plugin file of this worker's "
                f"plugins folder {folder}; run it on a worker started with --plugins-dir {pin.path.parent}"
            )
        helper = pin.path.name.startswith("_")
        what = "helper file" if helper else "plugin file"
        try:
            file = read_source(pin.path, what)
        except OSError as exc:
            raise PluginRefused(
                f"{what} {pin.path}, recorded when this experiment was queued, cannot be read "
                f"({exc.strerror}), so none of it ran; restore it"
            ) from None
        except PluginError as exc:
            raise PluginRefused(str(exc)) from None
        if file.sha256 != pin.sha256:
            raise PluginRefused(
                f"{what} {pin.path} changed since this experiment was queued "
                f"(sha256 {pin.sha256} -> {file.sha256}), so none of it ran; check the change"
            )
        if helper:
            helpers.append(file)
        else:
            plugins.append((pin.path, file))
    return plugins, helpers


__all__ = [
    "MAX_HELPERS",
    "MAX_RECORDED",
    "PinnedFile",
    "PluginFile",
    "SourceFile",
    "absolute",
    "check_folder",
    "check_writers",
    "execute",
    "pin_values",
    "read_source",
    "verified_spec",
    "verified_pins",
]
