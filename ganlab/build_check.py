"""Enqueue-time build check: every architecture of a sweep must make its dataset's shape.

Each distinct build (architecture, its parameter values, data shape, class
count, latent size) is checked once, by building both networks symbolically
in a child process (``python -m ganlab.build_probe``: ``queue add`` itself
never imports Keras), and its outcome is kept on disk (:mod:`ganlab.build_cache`)
keyed by the plugin file's hash, so adding the same sweep again starts no
child at all. A build that does not fit refuses the whole sweep before
anything is stored.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ganlab import __version__
from ganlab.build_cache import BuildCache, key
from ganlab.config import ExperimentConfig, Resolver
from ganlab.errors import ConfigError
from ganlab.names import shown
from ganlab.plugin_files import PluginFile

#: A child that takes longer than this is stuck (a plugin waiting on something); the error says how to skip.
PROBE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Build:
    """One distinct build to check, and an experiment that needs it (for the error message)."""

    architecture: str
    hparams: tuple[tuple[str, Any], ...]
    image_shape: tuple[int, int, int]
    num_classes: int | None
    latent_dim: int
    dataset: str
    backend: str

    def request(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "hparams": dict(self.hparams), "image_shape": list(self.image_shape),
                "num_classes": self.num_classes, "latent_dim": self.latent_dim}


def check_builds(resolver: Resolver, configs: Iterable[ExperimentConfig], say: Callable[[str], None] | None = None,
                 cache: BuildCache | None = None) -> int:
    """Refuse (ConfigError) if any config's architecture cannot be built for its data; returns builds checked afresh."""
    registry = resolver.registry
    cache = cache or BuildCache()
    builds: dict[tuple[Any, ...], Build] = {}
    files: dict[str, list[PluginFile]] = {}
    for config in configs:
        arch = registry.architecture(config.architecture)
        info = resolver.data_info(config.dataset, config.dataset_params)
        build = Build(config.architecture, tuple(sorted(config.arch_params.items())), info.image_shape,
                      info.num_classes if arch.conditional else None, int(config.train["latent_dim"]),
                      config.dataset, str(config.train["backend"]))
        ident = (build.architecture, build.hparams, build.image_shape, build.num_classes, build.latent_dim)
        if ident not in builds:
            builds[ident] = build
            if build.architecture not in files:
                found = registry.plugin_files(config.architecture, config.dataset, config.loss)
                # Its helper files travel with it: the probe, like a worker child, imports only pinned ones.
                arch_file = [f for f in found if f.kind == "architecture"]
                files[build.architecture] = arch_file + [f for f in found if f.kind == "helper"] if arch_file else []
    pending: dict[str, Build] = {}
    code = {arch: _code_hash(registry, arch, pinned) for arch, pinned in files.items()}
    for ident, build in builds.items():
        name = key({"code": code[build.architecture], "build": list(ident)})
        outcome = cache.get(name)
        if outcome is None:
            pending[name] = build
        elif not outcome["ok"]:
            _refuse(build, outcome["error"])
    if not pending:
        return 0
    if say is not None:
        say(f"checking that {len(pending)} architecture build(s) fit their data (Keras starts: a few seconds; "
            "repeated adds use the cache)")
    outcomes = _run_probe(list(pending.values()), list({f.path: f for fs in files.values() for f in fs}.values()))
    for name, outcome in zip(pending, outcomes):
        cache.put(name, outcome)
    for build, outcome in zip(pending.values(), outcomes):
        if not outcome["ok"]:
            _refuse(build, outcome["error"])
    return len(pending)


def _code_hash(registry: Any, architecture: str, files: list[PluginFile]) -> str:
    """The hash of the code that builds ``architecture``: its local file's and its helpers', else its modules' and ganlab's version."""
    if files:
        return files[0].sha256 if len(files) == 1 else hashlib.sha256(" ".join(f.sha256 for f in files).encode()).hexdigest()
    spec = registry.architecture(architecture)
    digest = hashlib.sha256(__version__.encode())
    for fn in (spec.build_generator, spec.build_discriminator):
        try:
            with open(inspect.getsourcefile(fn) or "", "rb") as fh:
                digest.update(fh.read())
        except (OSError, TypeError):
            digest.update(repr(fn).encode())  # no source to read: never reused across processes
    return digest.hexdigest()


def _refuse(build: Build, why: str | None) -> None:
    params = ", ".join(f"{k}={shown(v) if isinstance(v, str) else v}" for k, v in build.hparams) or "no parameters"
    raise ConfigError(
        f"architecture {build.architecture!r} ({params}) cannot be built for dataset {build.dataset!r} "
        f"(images {build.image_shape}): {why}; nothing was queued. Try it with: "
        f"ganlab plugins check {build.architecture} --dataset {build.dataset} (--no-build-check skips this check)"
    )


def _run_probe(builds: list[Build], files: list[PluginFile]) -> list[dict[str, Any]]:
    folders = {os.path.dirname(f.path) for f in files}
    request = {
        "backend": builds[0].backend,
        "plugins_dir": folders.pop() if len(folders) == 1 else None,
        "pinned": [f"{f.sha256}:{f.path}" for f in files],
        "builds": [b.request() for b in builds],
    }
    env = {**os.environ, "KERAS_BACKEND": request["backend"], "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([sys.executable, "-m", "ganlab.build_probe"], input=json.dumps(request),
                              capture_output=True, text=True, env=env, timeout=PROBE_TIMEOUT_S, check=False)
        outcomes = json.loads(done.stdout)["outcomes"] if done.returncode == 0 else None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the build check took over {PROBE_TIMEOUT_S} s and was stopped; nothing was queued "
                          "(--no-build-check skips it)") from None
    except (ValueError, KeyError, TypeError):
        outcomes = None
    if isinstance(outcomes, list):  # the child ran plugin code: keep only well-formed outcomes
        outcomes = [{"ok": o["ok"], "error": str(o.get("error"))[:2000]} if isinstance(o, dict) and
                    isinstance(o.get("ok"), bool) else None for o in outcomes]
    if not isinstance(outcomes, list) or len(outcomes) != len(builds) or None in outcomes:
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        last = errors[-1][len("Error: "):] if errors else (done.stderr.strip().splitlines() or ["no output"])[-1]
        if done.returncode < 0:  # a plugin that kills its own process while building
            last = f"its process was killed by signal {-done.returncode} while building the networks"
        raise ConfigError(f"the build check could not run: {last}; nothing was queued (--no-build-check skips it)")
    return outcomes


__all__ = ["PROBE_TIMEOUT_S", "check_builds"]
