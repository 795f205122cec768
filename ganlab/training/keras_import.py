"""Importing Keras without the optional packages it would load for nothing.

When they are installed, TensorFlow's ``tf.lite`` imports JAX and Keras's
``keras.wrappers`` imports scikit-learn, both eagerly, while ``import keras``
runs. A training process uses neither through Keras (ganlab reads the digits
file without importing scikit-learn and fits its feature net only on a cache
miss), yet on a 2-core CPU they cost 2-3 s of every process start: about a
third of ``import keras`` with TensorFlow and a quarter with JAX
(docs/performance.md). Every worker child, pre-started process and
``ganlab train`` pays that start.

Both imports sit inside ``try/except ImportError``, so hiding the two packages
while Keras (or TensorFlow) runs its package ``__init__`` skips them. Only that
first package import is affected: afterwards both import as usual, and a
version of either library that needs them after all gets them on a second try.

The guard leans on how two libraries lay out their package set-up, so it acts
only with the Keras and TensorFlow versions it was measured and tested with
(``TESTED``); with any other version it steps aside and Keras imports the plain
way. Moving to a new version means measuring it again
(benchmarks/bench_startup.py) and adding it there.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

#: The packages whose first import is guarded: whichever of them a process imports first pulls in the other.
ROOTS = ("keras", "tensorflow")


def hidden_for(backend: str | None) -> tuple[str, ...]:
    """What to hide while Keras imports for ``backend`` (JAX is kept unless TensorFlow is known to be the backend)."""
    return ("jax", "sklearn") if backend == "tensorflow" else ("sklearn",)


#: Release series (major.minor) the guard was measured and tested with; a missing TensorFlow (a JAX-only install) is fine.
TESTED = {"keras": ("3.15",), "tensorflow": ("2.21",)}


def installed_versions() -> dict[str, str | None]:
    """The installed Keras and TensorFlow versions from package metadata, None where absent (nothing is imported).

    A package importable under another distribution's name (``tensorflow-cpu``, a nightly) reads as
    ``"unknown"``, which no tested series matches.
    """
    versions: dict[str, str | None] = {}
    for name in TESTED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown" if importlib.util.find_spec(name) is not None else None
    return versions


def is_tested(versions: Mapping[str, str | None]) -> bool:
    """Whether ``versions`` (as from ``installed_versions``) are ones the guard was tested with."""
    keras, tensorflow = versions.get("keras"), versions.get("tensorflow")
    return (keras is not None and _series(keras) in TESTED["keras"]
            and (tensorflow is None or _series(tensorflow) in TESTED["tensorflow"]))


def _series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def install(backend: str | None) -> None:
    """Guard the first import of Keras and TensorFlow in this process (idempotent; no effect once imported).

    With untested Keras or TensorFlow versions nothing is installed: Keras imports the plain way.
    """
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, LeanFinder)]
    if not all(root in sys.modules for root in ROOTS) and is_tested(installed_versions()):
        sys.meta_path.insert(0, LeanFinder(ROOTS, hidden_for(backend)))


class LeanFinder(importlib.abc.MetaPathFinder):
    """Finds ``roots`` through the other finders and wraps their loaders so that ``hidden`` stays unimported."""

    def __init__(self, roots: Sequence[str], hidden: Sequence[str]) -> None:
        self.roots = tuple(roots)
        self.hidden = tuple(hidden)

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname not in self.roots:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _HidingLoader(spec.loader, self.hidden)
                return spec
        return None


class _HidingLoader:
    """Runs the real loader's ``exec_module`` with ``hidden`` packages unimportable, then steps aside."""

    def __init__(self, loader: Any, hidden: Sequence[str]) -> None:
        self._loader = loader
        self._hidden = hidden

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # None in sys.modules makes `import name` raise ModuleNotFoundError, which the optional imports catch.
        hidden = [name for name in self._hidden if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            try:
                self._loader.exec_module(module)
            except ImportError as exc:
                if exc.name not in hidden:
                    raise
                # This version needs the package after all: import it as usual.
                _unhide(hidden)
                self._loader.exec_module(module)
        finally:
            _unhide(hidden)
            # Nothing that inspects the module later (resources, reloads) should meet this wrapper.
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _unhide(names: list[str]) -> None:
    for name in names:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
