"""The on-disk record of architecture builds already checked, so a repeated ``queue add`` costs no Keras start.

One small JSON file per checked build, named by the SHA-256 of everything
the outcome depends on: the architecture's code (the plugin file's hash),
its parameter values, the data shape, the class count and the latent size.
Editing the plugin file changes its hash, so a fixed plugin is checked again.
Files live in ``$GANLAB_CACHE_DIR/build-checks``, else
``$XDG_CACHE_HOME/ganlab/build-checks``, else ``~/.cache/ganlab/build-checks``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganlab.atomicfile import atomic_write

FOLDER = "build-checks"
_VERSION = 1  # bump when what a check covers changes: older records are then ignored
_MAX_RECORD = 64 * 1024


def cache_dir() -> Path:
    """Where build-check records are kept (not created here)."""
    root = os.environ.get("GANLAB_CACHE_DIR")
    if root:
        return Path(root) / FOLDER
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ganlab" / FOLDER


def key(fields: Mapping[str, Any]) -> str:
    """The record name of one build: a hash of canonical JSON of ``fields``."""
    body = json.dumps({"version": _VERSION, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class BuildCache:
    """Reads and writes outcomes ``{"ok": bool, "error": str | None}``; a damaged record reads as missing."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else cache_dir()

    def get(self, name: str) -> dict[str, Any] | None:
        path = self.directory / f"{name}.json"
        try:
            with open(path, "rb") as fh:
                raw = fh.read(_MAX_RECORD + 1)
            record = json.loads(raw) if len(raw) <= _MAX_RECORD else None
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("ok"), bool):
            return None
        error = record.get("error")
        return {"ok": record["ok"], "error": error if isinstance(error, str) else None}

    def put(self, name: str, outcome: Mapping[str, Any]) -> None:
        """Record an outcome; a cache that cannot be written (read-only home) only costs the next check."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.directory / f"{name}.json", durable=False) as fh:
                fh.write(json.dumps({"ok": bool(outcome["ok"]), "error": outcome.get("error")}).encode())
        except OSError:
            pass


__all__ = ["BuildCache", "cache_dir", "key"]
