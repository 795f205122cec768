"""What ``ganlab plugins check`` found: model tables and facts, and the first problem if any."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CheckFailed(Exception):
    """The first problem a check found; its message is the one line the command prints."""


@dataclass
class ModelTable:
    """One network's layers: name, type, output shape, parameter count."""

    name: str
    rows: list[tuple[str, str, str, int]]
    params: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "layers": [{"name": n, "type": t, "output_shape": s, "params": p} for n, t, s, p in self.rows],
        }


@dataclass
class Report:
    """Everything one check learned, in the order it learned it."""

    kind: str
    name: str
    backend: str | None = None
    models: list[ModelTable] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "backend": self.backend,
            "ok": self.ok,
            "problem": self.problem,
            "models": [m.to_dict() for m in self.models],
            "facts": dict(self.facts),
        }


def model_table(model: Any) -> ModelTable:
    """The layer table of a built Keras model (a subclassed model's inner shapes may be unknown: '?')."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError, RuntimeError):
            shape = "?"
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params()) if layer.built else 0))
    return ModelTable(model.name, rows, int(model.count_params()))


__all__ = ["CheckFailed", "ModelTable", "Report", "model_table"]
