"""Choosing the Keras backend and dtype policy for one experiment.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the backend
must be set before anything imports keras; a process that already imported it
with another backend cannot switch and must say so in one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ganlab.errors import ConfigError
from ganlab.training import keras_import


def prefer_backend(name: str) -> None:
    """Set ``KERAS_BACKEND`` if keras is not imported yet; never fails (call before resolving a config)."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter drowns the progress bar
        keras_import.install(name)


def imported_backend() -> str | None:
    """The backend keras was imported with in this process, or None if it was not imported."""
    if "keras" not in sys.modules:
        return None
    import keras

    return keras.backend.backend()


def activate_backend(name: str) -> None:
    """Make ``name`` the Keras backend of this process, or raise ConfigError if that is too late."""
    prefer_backend(name)
    import keras

    current = keras.backend.backend()
    if current != name:
        raise ConfigError(
            f"this experiment needs the {name!r} Keras backend but keras was already imported with {current!r} "
            f"in this process; run it in a fresh process (e.g. KERAS_BACKEND={name} ganlab train ...)"
        )


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy for the models built inside, restoring the old one after."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
