"""The trainer: one experiment, trained with Keras 3 on TensorFlow or JAX.

Import :func:`train` (or :func:`run_experiment`, the entry every caller uses)
from here; keras is imported only when it runs, after the experiment's backend
has been chosen. Both are loaded on first use, so that the light modules of
this package (``report``, ``report_pipe``, ``run_dir``) cost a worker nothing.
"""

from __future__ import annotations

from typing import Any

from ganlab.training.report import BaseReporter, Reporter, StopFlag, TrainResult

__all__ = ["BaseReporter", "Reporter", "StopFlag", "TrainResult", "run_experiment", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from ganlab.training.trainer import train

        return train
    if name == "run_experiment":
        from ganlab.training.experiment import run_experiment

        return run_experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
