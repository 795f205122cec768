"""Helper modules beside local plugin files: ``plugins/_common.py`` imported as ``from _common import x``.

Files of the plugins folder whose names start with ``_`` are not plugins, but
a plugin (or another helper) may import them by their module name. They are
code ganlab runs, so they get the plugin files' treatment
(:mod:`ganlab.plugin_files`): each is read once through one checked
descriptor (owned by you or root, writable by nobody else) and exactly the
bytes hashed are executed. An experiment records, beside its plugin files,
the helpers they import (found in their source: ``import _x`` and
``from _x import …`` statements, wherever they are, followed through helpers
that import helpers); a worker's child verifies those against their hashes
before any plugin runs and refuses any other helper of the folder.

One :class:`HelperFinder` sits at the front of ``sys.meta_path`` while a
plugins folder is in use. It only answers for names that start with ``_``,
have a ``.py`` file in the folder, and are neither in the standard library
nor installed elsewhere: a helper can never stand in for a real module.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from ganlab.errors import PluginError, PluginRefused
from ganlab.plugin_files import MAX_HELPERS, SourceFile, absolute, read_source, verified_spec


def is_helper_name(name: str) -> bool:
    """A module name a helper file may have: ``_`` first, a plain identifier, not a standard module."""
    return (name.startswith("_") and name.isidentifier() and name not in sys.stdlib_module_names
            and name not in sys.builtin_module_names)


def imported_helper_names(source: bytes, filename: str) -> list[str]:
    """The helper names a module's source imports: ``import _x`` and ``from _x import y`` (relative imports are not helpers).

    Imports anywhere count, inside functions too: a helper imported lazily still runs in the worker.
    A source that does not parse imports nothing here (it fails when it is imported).
    """
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError, RecursionError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return [n for n in dict.fromkeys(names) if is_helper_name(n)]


class HelperFinder(importlib.abc.MetaPathFinder):
    """Imports the helper files of one plugins folder, checked, and (for a worker's child) only the pinned ones.

    ``pinned``: None to allow every helper of the folder (read and checked on first
    import); otherwise the only helpers allowed, already verified against their hashes.
    """

    def __init__(self, folder: Path, pinned: Sequence[SourceFile] | None = None) -> None:
        self.folder = absolute(folder)
        self.pinned = pinned is not None
        self._files: dict[str, SourceFile] = {f.path.stem: f for f in pinned or ()}
        self.loaded: list[str] = []

    def _path(self, name: str) -> Path | None:
        """The folder's file for module ``name``, if it is a helper this finder answers for."""
        if not is_helper_name(name):
            return None
        path = self.folder / f"{name}.py"
        if name not in self._files and not path.is_file():
            return None
        elsewhere = importlib.machinery.PathFinder.find_spec(name)
        if elsewhere is not None and elsewhere.origin and absolute(elsewhere.origin).parent != self.folder:
            return None  # an installed module of that name: it is what the import means
        return path

    def source(self, name: str) -> SourceFile | None:
        """The checked bytes of helper ``name`` (read once), or None if the folder has no such helper."""
        path = self._path(name)
        if path is None:
            return None
        if name not in self._files:
            if self.pinned:
                raise PluginRefused(
                    f"helper file {path} was not recorded when this experiment was queued, so it cannot run here; "
                    "queue the experiment again with 'ganlab queue add' (helpers are found in import statements)"
                )
            try:
                self._files[name] = read_source(path, "helper file")
            except OSError as exc:
                raise PluginError(f"helper file {path} cannot be read: {exc.strerror}") from None
        return self._files[name]

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
                  ) -> ModuleSpec | None:
        if path is not None:
            return None  # a submodule of a package: never a helper
        file = self.source(fullname)
        if file is None:
            return None
        self.loaded.append(fullname)
        return verified_spec(file, fullname)

    def closure(self, files: Iterable[SourceFile]) -> list[SourceFile]:
        """The helpers ``files`` import, directly or through other helpers, in a stable order."""
        found: dict[str, SourceFile] = {}
        todo = [name for f in files for name in imported_helper_names(f.source, str(f.path))]
        while todo:
            name = todo.pop(0)
            if name in found:
                continue
            helper = self.source(name)
            if helper is None:
                continue  # not a file of this folder: an optional import that fails, or another module
            found[name] = helper
            todo += imported_helper_names(helper.source, str(helper.path))
        if len(found) > MAX_HELPERS:
            raise PluginError(f"the plugins of {self.folder} import {len(found)} helper files; at most "
                              f"{MAX_HELPERS} are recorded with an experiment: merge some of them")
        return sorted(found.values(), key=lambda f: f.path.name)


_active: list[HelperFinder] = []


def activate(folder: Path, pinned: Sequence[SourceFile] | None = None) -> HelperFinder:
    """Make ``folder``'s helpers importable (and only ``pinned`` ones, if given); returns the finder.

    One folder at a time: helpers of a folder used before are forgotten.
    """
    deactivate()
    finder = HelperFinder(folder, pinned)
    sys.meta_path.insert(0, finder)
    _active.append(finder)
    return finder


def deactivate() -> None:
    """Remove the finder and forget the helper modules it imported (tests, or another folder)."""
    while _active:
        finder = _active.pop()
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in finder.loaded:
            module = sys.modules.get(name)
            if module is not None and Path(getattr(module, "__file__", None) or "/").parent == finder.folder:
                del sys.modules[name]


__all__ = ["HelperFinder", "activate", "deactivate", "imported_helper_names", "is_helper_name"]
