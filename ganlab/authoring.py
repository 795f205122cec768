"""``ganlab plugins new``: a working plugin file from a template, written into the plugins folder.

The templates (``ganlab/templates/*.py``) are complete plugin files whose only
name is the line ``NAME = "..."``; a new plugin is that file with that line
replaced. The name is checked against the rule every spec name follows
before it reaches the file, so nothing but a plain slug is ever written into code.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from ganlab.errors import ConfigError
from ganlab.plugin_files import check_folder
from ganlab.registry import DEFAULT_PLUGINS_DIR, PLUGINS_DIR_ENV, Registry, resolve_plugins_dir

#: Kinds that have a template: every kind of plugin the project has.
TEMPLATE_KINDS = ("architecture", "dataset", "loss", "augmentation", "metric")
MAX_PLUGIN_NAME = 64
_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_NAME_LINE = re.compile(r'^NAME = "([a-z0-9_-]+)"$', re.MULTILINE)


def template_source(kind: str) -> str:
    """The template file of ``kind`` as shipped (what docs/plugins.md shows)."""
    if kind not in TEMPLATE_KINDS:
        raise ConfigError(f"no template for kind {kind!r}; available kinds: {', '.join(TEMPLATE_KINDS)}")
    return resources.files("ganlab.templates").joinpath(f"{kind}.py").read_text(encoding="utf-8")


def check_plugin_name(name: str) -> str:
    """``name`` if it can name a plugin and its file, else a one-line ConfigError."""
    if not (isinstance(name, str) and len(name) <= MAX_PLUGIN_NAME and _NAME.fullmatch(name)):
        raise ConfigError(
            f"plugin name {name[:80]!r} is not allowed; use 1-{MAX_PLUGIN_NAME} characters from a-z 0-9 - _, "
            "starting with a letter (e.g. my-gan)"
        )
    return name


def render(kind: str, name: str) -> str:
    """The template of ``kind`` with its name set to ``name`` (checked)."""
    source = template_source(kind)
    check_plugin_name(name)
    found = _NAME_LINE.findall(source)
    assert len(found) == 1, f"template {kind} must hold exactly one NAME line"
    # The template's own name (a slug) is in its NAME line and its usage notes; both become the new name.
    return re.sub(rf"(?<![\w-]){re.escape(found[0])}(?![\w-])", name, source)


def file_name(name: str) -> str:
    """A plugin file name for ``name`` that Python could import (``-`` becomes ``_``)."""
    return name.replace("-", "_") + ".py"


def target_folder(plugins_dir: str | None, local: bool, *, create: bool = True) -> Path:
    """The plugins folder ``new`` writes into; the default ``./plugins`` is created when missing (if ``create``)."""
    named = plugins_dir if plugins_dir is not None else os.environ.get(PLUGINS_DIR_ENV)
    if not local or (named is not None and not named.strip()):
        raise ConfigError(
            "local plugins are off (--no-local-plugins, or an empty --plugins-dir or GANLAB_PLUGINS_DIR), so there "
            "is no folder to write the new plugin into; give one with --plugins-dir DIR"
        )
    directory = resolve_plugins_dir(plugins_dir)  # a folder the user named must exist
    if directory is None:
        directory = Path(DEFAULT_PLUGINS_DIR)
        if not create:
            return directory
        directory.mkdir(mode=0o755)
    check_folder(directory)  # a folder others can write is refused here as everywhere
    return directory


def check_free(kind: str, name: str, registry: Registry) -> None:
    """Refuse a name another plugin of ``kind`` already has (two would clash and both be refused)."""
    taken = [e for e in registry.entries(kind) if e.name == name]
    if taken:
        raise ConfigError(f"{kind} {name!r} already exists ({taken[0].source}); choose another name")


def write_plugin(kind: str, name: str, directory: Path, registry: Registry) -> Path:
    """Write the new plugin file; refuses a taken name or an existing file, never overwrites."""
    source = render(kind, name)
    check_free(kind, name, registry)
    path = directory / file_name(name)
    try:
        # O_EXCL: an existing file (or a link planted at that name) is never followed or overwritten.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; remove it or choose another name") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror}); check the plugins folder") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(source)
    # The umask may have left it group- or world-writable, which the loader refuses: the file is the user's code.
    os.chmod(path, 0o644)
    return path


__all__ = ["TEMPLATE_KINDS", "check_free", "check_plugin_name", "file_name", "render", "target_folder", "template_source", "write_plugin"]
