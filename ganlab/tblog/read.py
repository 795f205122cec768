"""Reading a run's event files back with TensorBoard's own reader.

Built on ``tensorboard.backend.event_processing``'s ``EventAccumulator``, the
same code a TensorBoard server runs (without ``--load_fast``), so what these
functions return is what the dashboards show, purging of orphaned steps after
a resume included. Used by the tests and by ``ganlab compare``.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.util import tensor_util

__all__ = ["load_run", "read_hparams", "read_image", "read_images", "read_scalars", "read_text"]

_STATUS_NAMES = {
    api_pb2.STATUS_SUCCESS: "success",
    api_pb2.STATUS_FAILURE: "failure",
    api_pb2.STATUS_RUNNING: "running",
    api_pb2.STATUS_UNKNOWN: "unknown",
}


def load_run(logdir: str | os.PathLike) -> pea.EventAccumulator:
    """Every event of the run in ``logdir`` (its own files, not subdirectories), nothing sampled away."""
    path = os.fspath(logdir)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no run directory at {path}")
    acc = pea.EventAccumulator(path, size_guidance=pea.STORE_EVERYTHING_SIZE_GUIDANCE)
    acc.Reload()
    return acc


def _tags(acc: pea.EventAccumulator, plugin: str) -> list[str]:
    return sorted(acc.PluginTagToContent(plugin))


def read_scalars(logdir: str | os.PathLike | pea.EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    """tag -> ``[(step, value), ...]`` in the order TensorBoard plots them."""
    acc = logdir if isinstance(logdir, pea.EventAccumulator) else load_run(logdir)
    return {
        tag: [(int(e.step), float(tensor_util.make_ndarray(e.tensor_proto).item())) for e in acc.Tensors(tag)]
        for tag in _tags(acc, scalar_metadata.PLUGIN_NAME)
    }


def read_images(logdir: str | os.PathLike | pea.EventAccumulator) -> dict[str, list[int]]:
    """tag -> the steps at which an image was logged."""
    acc = logdir if isinstance(logdir, pea.EventAccumulator) else load_run(logdir)
    return {tag: [int(e.step) for e in acc.Tensors(tag)] for tag in _tags(acc, image_metadata.PLUGIN_NAME)}


def read_image(logdir: str | os.PathLike | pea.EventAccumulator, tag: str, step: int | None = None) -> np.ndarray:
    """The decoded image ``(H, W, C)`` uint8 logged under ``tag`` at ``step`` (the latest by default)."""
    acc = logdir if isinstance(logdir, pea.EventAccumulator) else load_run(logdir)
    events = [e for e in acc.Tensors(tag) if step is None or e.step == step]
    if not events:
        raise KeyError(f"no image {tag!r} at step {step}")
    # The image plugin's tensor: [width, height, encoded image ...].
    encoded = tensor_util.make_ndarray(events[-1].tensor_proto)[2]
    array = np.asarray(Image.open(io.BytesIO(encoded)))
    return array[..., None] if array.ndim == 2 else array


def read_text(logdir: str | os.PathLike | pea.EventAccumulator) -> dict[str, list[tuple[int, str]]]:
    """tag -> ``[(step, markdown), ...]``."""
    acc = logdir if isinstance(logdir, pea.EventAccumulator) else load_run(logdir)
    out: dict[str, list[tuple[int, str]]] = {}
    for tag in _tags(acc, text_metadata.PLUGIN_NAME):
        out[tag] = [
            (int(e.step), tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")) for e in acc.Tensors(tag)
        ]
    return out


def read_hparams(logdir: str | os.PathLike | pea.EventAccumulator) -> dict:
    """The run's HParams session as the HParams dashboard reads it.

    Returns:
        ``{"hparams": {name: value}, "group_name": str, "start_time": float | None,
        "status": "success" | "failure" | "running" | "unknown" | None,
        "end_time": float | None, "metrics": [tag, ...]}``. Numbers come back
        as floats (the protocol stores doubles); ``status`` is None when no
        session end was written; ``metrics`` is filled only from an
        experiment summary.
    """
    acc = logdir if isinstance(logdir, pea.EventAccumulator) else load_run(logdir)
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    result: dict = {"hparams": {}, "group_name": "", "start_time": None, "status": None, "end_time": None, "metrics": []}
    if hparams_metadata.SESSION_START_INFO_TAG in content:
        start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
        result["hparams"] = {name: _python_value(v) for name, v in sorted(start.hparams.items())}
        result["group_name"] = start.group_name
        result["start_time"] = start.start_time_secs
    if hparams_metadata.SESSION_END_INFO_TAG in content:
        end = hparams_metadata.parse_session_end_info_plugin_data(content[hparams_metadata.SESSION_END_INFO_TAG])
        result["status"] = _STATUS_NAMES.get(end.status, "unknown")
        result["end_time"] = end.end_time_secs
    if hparams_metadata.EXPERIMENT_TAG in content:
        experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
        result["metrics"] = [m.name.tag for m in experiment.metric_infos]
    return result


def _python_value(value) -> bool | float | str | None:
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind in ("bool_value", "number_value", "string_value") else None
