"""Shared set-up for the training-engine tests: the tiny plugins and small, fast configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganlab.config import ExperimentConfig, Resolver
from ganlab.registry import Registry

PLUGINS = Path(__file__).resolve().parent / "training_plugins"

# Every event of the loop fires within a few steps; evaluation uses few samples.
FAST: dict[str, Any] = {
    "batch_size": 16,
    "latent_dim": 8,
    "log_every": 1,
    "sample_every": 3,
    "eval_every": 3,
    "checkpoint_every": 3,
    "eval_samples": 128,
}


def tiny_registry() -> Registry:
    return Registry().load(PLUGINS, entry_points=False)


def tiny_config(registry: Registry, arch: str = "tiny", loss: str = "non-saturating", **sets: Any) -> ExperimentConfig:
    return Resolver(registry).resolve(arch, "tiny-bars", loss, {**FAST, **sets})
