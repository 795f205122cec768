"""Built-in datasets: ``digits`` (offline default), ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder``, ``npz``.

One module per source; this plugin module only registers their specs.
Nothing here imports Keras or Pillow until a dataset is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

from ganlab.builtin.datasets import arrays, digits, folder, keras_datasets
from ganlab.hookspecs import hookimpl
from ganlab.specs import DatasetSpec

__all__ = ["register_datasets"]


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register the built-in datasets."""
    register(digits.SPEC)
    for keras_set in keras_datasets.SETS:
        register(keras_set.spec())
    register(folder.SPEC)
    register(arrays.SPEC)
