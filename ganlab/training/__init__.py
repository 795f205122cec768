"""The trainer: one experiment, trained with Keras 3 on TensorFlow or JAX.

Import :func:`train` from here; keras is imported only when it runs, after the
experiment's backend has been chosen.
"""

from ganlab.training.report import BaseReporter, Reporter, StopFlag, TrainResult
from ganlab.training.trainer import train

__all__ = ["BaseReporter", "Reporter", "StopFlag", "TrainResult", "train"]
