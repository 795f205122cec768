"""The files of one run, in one directory that is also its TensorBoard run.

::

    RUN_DIR/
      config.json              the resolved experiment (what --resume reads)
      events.out.tfevents.*    TensorBoard scalars, sample grids, HParams, config text
      checkpoints/latest.npz   the latest step (see ganlab.training.checkpoint)
      checkpoints/previous.npz the latest one before it, for a resume when latest is damaged
      checkpoints/best.npz     the step with the lowest Fréchet distance so far
      metrics.jsonl            one line per evaluation, with its protocol
      samples/latest.png       the latest grid from the fixed noise batch
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.training.checkpoint import checkpoint_path


class RunDir:
    """Paths and small files of a run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_png(self) -> Path:
        return self.path / "samples" / "latest.png"

    def checkpoint(self, which: str = "latest") -> Path:
        return checkpoint_path(self.path, which)

    def has_run(self) -> bool:
        """True once a run has saved its config here."""
        return self.config_file.is_file()

    def load_config(self) -> ExperimentConfig:
        """The config saved by the run, or a one-line ConfigError."""
        if not self.config_file.is_file():
            raise ConfigError(f"{self.path} holds no run (no config.json); check the path, or start one with 'ganlab train'")
        try:
            return ExperimentConfig.from_dict(json.loads(self.config_file.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.config_file} is not a ganlab config ({type(exc).__name__}: {exc})") from None

    def save_config(self, config: ExperimentConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.config_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.config_file)

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with open(self.metrics_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(record), sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop evaluations logged after ``after_step`` (by a process that died before checkpointing them)."""
        records = self.read_metrics()
        kept = [r for r in records if int(r.get("step", 0)) <= after_step]
        if len(kept) != len(records):
            tmp = self.metrics_file.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
            os.replace(tmp, self.metrics_file)
