"""The plugin engine: finds plugins, collects their specs, answers look-ups.

Three routes, all through one pluggy ``PluginManager``:

1. built-in plugins (``ganlab.builtin.DEFAULT_PLUGINS``), registered exactly
   like third-party ones;
2. installed packages exposing the entry-point group ``ganlab``;
3. every ``*.py`` file in a local plugins folder (``./plugins`` by default,
   ``--plugins-dir`` or ``GANLAB_PLUGINS_DIR``; an empty value turns local
   plugins off), loaded by path after the checks in :mod:`ganlab.plugin_files`;
   its ``_name.py`` files are helpers the plugins import (:mod:`ganlab.plugin_helpers`).

Nothing happens at import time: :func:`load_plugins` does the work once.
A plugin that fails to import (whatever it raises, ``SystemExit`` included),
misspells a hook or registers a bad spec is recorded as a problem instead of
taking the others down; asking for a name it may have provided raises that
problem's message. A worker child instead loads only the files its
experiment recorded (``pinned``), each verified against its hash first.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from ganlab import hookspecs
from ganlab.errors import PluginError, PluginValidationError, first_line, summary_line
from ganlab.params import suggest
from ganlab.plugin_files import PinnedFile, PluginFile, SourceFile, check_folder, execute, read_source, verified_pins
from ganlab.plugin_helpers import HelperFinder, activate, deactivate
from ganlab.specs import ArchitectureSpec, AugmentationSpec, DatasetSpec, LossSpec, MetricSpec

Spec = ArchitectureSpec | DatasetSpec | LossSpec | AugmentationSpec | MetricSpec
KINDS: dict[str, tuple[str, type]] = {
    "architecture": ("register_architectures", ArchitectureSpec),
    "dataset": ("register_datasets", DatasetSpec),
    "loss": ("register_losses", LossSpec),
    "augmentation": ("register_augmentations", AugmentationSpec),
    "metric": ("register_metrics", MetricSpec),
}
ENTRY_POINT_GROUP = "ganlab"
PLUGINS_DIR_ENV = "GANLAB_PLUGINS_DIR"
DEFAULT_PLUGINS_DIR = "plugins"


@dataclass(frozen=True)
class Entry:
    """One registered spec and where it came from."""

    kind: str
    name: str
    spec: Spec
    source: str

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "description": self.spec.description,
            "reference": self.spec.reference,
            "conditional": getattr(self.spec, "conditional", None),
            "params": [p.to_dict() for p in self.spec.params],
        }
        if isinstance(self.spec, MetricSpec):
            out.update({
                "outputs": list(self.spec.outputs),
                "features": self.spec.features.name,
                "lower_is_better": self.spec.lower_is_better,
                "version": self.spec.version,
                "min_samples": self.spec.min_samples,
            })
        return out


@dataclass(frozen=True)
class Problem:
    """A plugin that could not be used; ``message`` is a one-line error."""

    source: str
    message: str
    stem: str | None = None  # file or entry-point name, to match look-ups


class Registry:
    """Owns the plugin manager and the name -> spec tables."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._sources: dict[str, str] = {}  # pluggy plugin name -> human source
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._clashes: dict[tuple[str, str], str] = {}
        self._files: dict[str, SourceFile] = {}  # source -> the local file's checked bytes and hash
        self._helpers: HelperFinder | None = None  # the plugins folder's _helper modules
        self.problems: list[Problem] = []
        self._loaded = False

    # ------------------------------------------------------------------ loading

    def load(
        self,
        plugins_dir: str | os.PathLike[str] | None = None,
        *,
        builtins: bool = True,
        entry_points: bool = True,
        local: bool = True,
        pinned: Iterable[PinnedFile] | None = None,
    ) -> Registry:
        """Discover plugins by every route and collect their specs (idempotent).

        ``plugins_dir``: see :func:`resolve_plugins_dir` (``local=False`` or ``""``: no local files).
        ``pinned``: load only these local files, each refused unless its bytes
        match its hash and it lies in the plugins folder (a worker child).
        """
        if self._loaded:
            return self
        self._loaded = True
        directory = resolve_plugins_dir(plugins_dir if local else "")
        # Local files are checked (and, when pinned, verified) before any plugin code runs.
        if pinned is not None:
            files, helpers = verified_pins(directory, tuple(pinned))
            if directory is not None and (files or helpers):
                # Helpers are imported by the plugins below, from these verified bytes only.
                self._helpers = activate(directory, pinned=helpers)
        else:
            files = self._folder_files(directory) if directory is not None else []
            if directory is not None:
                self._helpers = activate(directory)
        if builtins:
            from ganlab.builtin import DEFAULT_PLUGINS

            for modname in DEFAULT_PLUGINS:
                self.add_plugin(importlib.import_module(modname), name=modname, source="builtin")
        if entry_points:
            self._load_entry_points()
        for shown, file in files:
            self._run_file(shown, file)
        self.collect()
        return self

    def add_plugin(self, plugin: object, *, name: str, source: str, stem: str | None = None) -> bool:
        """Register one plugin object; record a problem and return False if it breaks the contract."""
        if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
            return False
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self.problems.append(Problem(source, f"plugin {source}: {_misspelt_hook_message(plugin, exc)}", stem))
            return False
        self._sources[name] = source
        return True

    def _load_entry_points(self) -> None:
        # One loop per entry point rather than pm.load_setuptools_entrypoints:
        # a broken package must not hide the others, and each needs its source.
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP:
                    continue
                dist_name = dist.metadata["name"]
                source = f"package {dist_name} {dist.version}"
                try:
                    plugin = ep.load()
                except BaseException as exc:  # noqa: BLE001 - any import failure is the plugin's, sys.exit() too
                    _reraise_interrupt(exc)
                    self.problems.append(
                        Problem(source, f"plugin package {dist_name} ({ep.value}) failed to import: {summary_line(exc)}", ep.name)
                    )
                    continue
                self.add_plugin(plugin, name=ep.name, source=source, stem=ep.name)

    def _folder_files(self, directory: Path) -> list[tuple[Path, SourceFile]]:
        """Every plugin file of the folder, read and checked; a loose folder or file refuses them all."""
        check_folder(directory)
        out: list[tuple[Path, SourceFile]] = []
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                out.append((path, read_source(path)))
            except OSError as exc:
                self.problems.append(Problem(str(path), f"plugin file {path} cannot be read: {exc.strerror}", path.stem))
        return out

    def _run_file(self, path: Path, file: SourceFile) -> None:
        source = str(path)
        modname = f"ganlab_local_plugins.{path.stem}"
        try:
            module = execute(file, modname)
        except BaseException as exc:  # noqa: BLE001 - report, keep loading the rest; sys.exit() included
            _reraise_interrupt(exc)
            self.problems.append(Problem(source, f"plugin file {path} failed to import: {summary_line(exc)}", path.stem))
            return
        if self.add_plugin(module, name=f"file:{file.path}", source=source, stem=path.stem):
            self._files[source] = file

    def collect(self) -> None:
        """Ask every registered plugin for its specs."""
        for kind, (hook_name, spec_type) in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                source = self._sources.get(impl.plugin_name, impl.plugin_name)
                try:
                    returned = impl.function(register=self._registrar(kind, spec_type, source, hook_name))
                except _BadRegistration as exc:
                    self.problems.append(Problem(source, str(exc), _stem(source)))
                    continue
                except PluginValidationError as exc:  # a spec refused its own declaration
                    self.problems.append(Problem(source, f"plugin {source}: {hook_name}: {exc}", _stem(source)))
                    continue
                except BaseException as exc:  # noqa: BLE001 - a crashing hook is the plugin's fault, sys.exit() too
                    _reraise_interrupt(exc)
                    self.problems.append(
                        Problem(source, f"plugin {source}: {hook_name} raised {summary_line(exc)}", _stem(source))
                    )
                    continue
                if returned is not None:
                    self.problems.append(
                        Problem(
                            source,
                            f"plugin {source}: {hook_name} returned a {type(returned).__name__}; "
                            f"it must call register({spec_type.__name__}(...)) and return nothing",
                            _stem(source),
                        )
                    )

    def _registrar(self, kind: str, spec_type: type, source: str, hook_name: str) -> Callable[[Spec], None]:
        table = self._entries[kind]

        def register(spec: Spec) -> None:
            if not isinstance(spec, spec_type):
                raise _BadRegistration(
                    f"plugin {source}: {hook_name} registered a {type(spec).__name__}; "
                    f"expected ganlab.{spec_type.__name__}"
                )
            key = (kind, spec.name)
            if key in self._clashes:
                self._clashes[key] += f", {source}"
                return
            if spec.name in table:
                first = table.pop(spec.name).source
                self._clashes[key] = f"{first} and {source}"
                return
            table[spec.name] = Entry(kind, spec.name, spec, source)

        return register

    # ------------------------------------------------------------------- look-up

    def entries(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(KINDS)
        return [e for k in kinds for e in sorted(self._entries[k].values(), key=lambda e: e.name)]

    def clash_messages(self) -> list[str]:
        return [
            f"{kind} name {name!r} is registered by both {sources}; rename one of them"
            for (kind, name), sources in sorted(self._clashes.items())
        ]

    def find(self, name: str) -> list[Entry]:
        """Every entry called ``name``, of any kind."""
        return [t[name] for t in self._entries.values() if name in t]

    def get(self, kind: str, name: str) -> Spec:
        """Return the spec registered as ``name``, or raise a one-line PluginError."""
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; use one of {', '.join(KINDS)}")
        table = self._entries[kind]
        if name in table:
            return table[name].spec
        if (kind, name) in self._clashes:
            raise PluginError(f"{kind} name {name!r} is registered by both {self._clashes[(kind, name)]}; rename one of them")
        problem = self.problem_for(name)
        if problem is not None:
            raise PluginError(problem.message)
        known = ", ".join(sorted(table)) or "none"
        hint = suggest(name, table)
        broken = f" ({len(self.problems)} plugin(s) failed to load: see 'ganlab plugins')" if self.problems else ""
        raise PluginError(f"unknown {kind} {name!r}{hint} (available: {known}){broken}")

    def plugin_files(
        self, architecture: str, dataset: str, loss: str, augmentation: str = "none", metrics: tuple[str, ...] = ()
    ) -> tuple[PluginFile, ...]:
        """The local plugin files that provide these plugins, with the hash of the bytes that ran."""
        out = []
        named = (("architecture", architecture), ("dataset", dataset), ("loss", loss), ("augmentation", augmentation),
                 *(("metric", m) for m in metrics))
        for kind, name in named:
            entry = self._entries[kind].get(name)
            file = self._files.get(entry.source) if entry is not None else None
            if file is not None:
                out.append(PluginFile(kind, name, str(file.path), file.sha256))
        if out and self._helpers is not None:
            used = [f for f in self._files.values() if str(f.path) in {p.path for p in out}]
            out += [PluginFile("helper", f.path.stem, str(f.path), f.sha256) for f in self._helpers.closure(used)]
        return tuple(out)

    def problem_for(self, name: str) -> Problem | None:
        """The load problem of the plugin file or package that ``name`` most likely came from."""
        wanted = name.replace("-", "_")
        for problem in self.problems:
            if problem.stem is not None and problem.stem.replace("-", "_") == wanted:
                return problem
        return None

    def architecture(self, name: str) -> ArchitectureSpec:
        return self.get("architecture", name)  # type: ignore[return-value]

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)  # type: ignore[return-value]

    def loss(self, name: str) -> LossSpec:
        return self.get("loss", name)  # type: ignore[return-value]

    def augmentation(self, name: str) -> AugmentationSpec:
        return self.get("augmentation", name)  # type: ignore[return-value]

    def metric(self, name: str) -> MetricSpec:
        return self.get("metric", name)  # type: ignore[return-value]


class _BadRegistration(Exception):
    pass


def _reraise_interrupt(exc: BaseException) -> None:
    # Ctrl-C while a plugin imports is the user's, not a plugin problem.
    if isinstance(exc, KeyboardInterrupt):
        raise exc


def _stem(source: str) -> str | None:
    return Path(source).stem if source.endswith(".py") else None


def _misspelt_hook_message(plugin: object, exc: pluggy.PluginValidationError) -> str:
    known = [n for n in dir(hookspecs) if n.startswith("register_")]
    for attr in _hookimpl_names(plugin):
        if attr not in known:
            return f"hook {attr!r} is not a ganlab hook{suggest(attr, known)} (hooks: {', '.join(known)})"
    return first_line(exc)


def _hookimpl_names(plugin: object) -> Iterable[str]:
    for attr in dir(plugin):
        fn = getattr(plugin, attr, None)
        if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_impl"):
            yield attr


def resolve_plugins_dir(plugins_dir: str | os.PathLike[str] | None) -> Path | None:
    """The local plugins folder to load, or None for no local plugins.

    ``None``: ``$GANLAB_PLUGINS_DIR`` if set, else ``./plugins`` if it exists.
    An empty value (either way) turns local plugins off. A folder the user named must exist.
    """
    if plugins_dir is None:
        plugins_dir = os.environ.get(PLUGINS_DIR_ENV)
        if plugins_dir is None:
            default = Path(DEFAULT_PLUGINS_DIR)
            return default if default.is_dir() else None
    if not os.fspath(plugins_dir).strip():
        return None
    path = Path(plugins_dir)
    if not path.is_dir():
        raise PluginError(
            f"plugins dir {str(path)!r} does not exist; create it, point --plugins-dir/{PLUGINS_DIR_ENV} at a folder, "
            "or turn local plugins off with --no-local-plugins"
        )
    return path


_cache: dict[tuple[str | None, tuple[PinnedFile, ...] | None], Registry] = {}


def load_plugins(
    plugins_dir: str | os.PathLike[str] | None = None, *, pinned: Iterable[PinnedFile] | None = None
) -> Registry:
    """Return the registry for ``plugins_dir`` (and ``pinned`` files), loading it on first use (idempotent)."""
    directory = resolve_plugins_dir(plugins_dir)
    pins = tuple(pinned) if pinned is not None else None
    key = (str(directory.resolve()) if directory is not None else None, pins)
    if key not in _cache:
        registry = Registry()
        registry.load(directory if directory is not None else "", entry_points=True, pinned=pins)
        _cache[key] = registry
    return _cache[key]


def reset_cache() -> None:
    """Forget loaded registries (tests, or after installing a plugin)."""
    _cache.clear()
    deactivate()
    for name in [m for m in sys.modules if m.startswith("ganlab_local_plugins.")]:
        del sys.modules[name]


__all__ = [
    "KINDS",
    "Entry",
    "PinnedFile",
    "PluginFile",
    "Problem",
    "Registry",
    "load_plugins",
    "reset_cache",
    "resolve_plugins_dir",
]
