"""Inception-V3 pool features (2048-d), the backbone of the FID and KID that papers report.

Two backbones, told apart by their card so numbers are never mixed silently:

- :class:`TFGraphInception` runs TensorFlow's 2015-12-05 Inception graph, the
  one TTUR's FID code loads: images go in as float ``0..255`` at any size at
  the graph's ``ExpandDims:0``; the graph itself resizes them to 299x299 with
  TF1 ``ResizeBilinear`` (see :mod:`ganlab.metrics.resize`), scales them to
  ``(x - 128) / 128`` and ``pool_3:0`` gives the features.
- :class:`KerasInception` runs ``keras.applications.InceptionV3(include_top=False,
  pooling="avg")`` with Keras's ImageNet weights: the same resize in numpy,
  then Keras's own preprocessing (``x / 127.5 - 1``). Different weights from the
  graph above, so its scores are not comparable with published FIDs.

Generated images are quantised to uint8 first, exactly as they would be
saved, because published numbers are computed from saved image files.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ganlab.metrics.inception_weights import (
    KERAS_IMAGENET,
    SOURCES,
    TF_FID_GRAPH,
    WeightsSource,
    locate_weights,
    sha256_file,
)
from ganlab.metrics.resize import RESIZE_METHOD, resize_bilinear_tf1

__all__ = [
    "FEATURE_DIM",
    "INPUT_SIZE",
    "InceptionBackbone",
    "KerasInception",
    "TFGraphInception",
    "default_source",
    "load_inception",
    "to_rgb_uint8_range",
]

INPUT_SIZE = 299
FEATURE_DIM = 2048
# Bumped when this code changes what a given weights file produces; part of every card.
BACKBONE_VERSION = 1

# Tensor names in the 2015-12-05 graph: the batch of float images before the
# in-graph resize, and the 2048-d average pool before the classifier.
GRAPH_INPUT = "ExpandDims:0"
GRAPH_OUTPUT = "pool_3:0"


class InceptionBackbone(Protocol):
    """What the metric code needs from a feature extractor."""

    def features(self, images: np.ndarray, batch_size: int = 50) -> np.ndarray: ...

    def card(self) -> dict[str, Any]: ...


def to_rgb_uint8_range(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 1 or 3)`` uint8 or float in ``[-1, 1]`` -> ``(N, H, W, 3)`` float32 holding whole numbers 0..255.

    Grey images are repeated over three channels, as an RGB file of a grey
    image would be.
    """
    from ganlab.tblog.grid import to_uint8  # the quantisation of the saved sample grids

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or 0 in images.shape[1:3]:
        raise ValueError(f"images must be (N, H, W, C) with C 1 or 3, got shape {images.shape}")
    x = to_uint8(images).astype(np.float32)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def _batches(images: np.ndarray, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"batch_size should be >= 1. Received: batch_size={batch_size}")
    for i in range(0, len(images), batch_size):
        # Sliced before conversion, so a memmap is read one batch at a time.
        yield to_rgb_uint8_range(images[i : i + batch_size])


def _check_input(images: np.ndarray) -> None:
    shape = np.shape(images)
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, C) with C 1 or 3, got shape {shape}")


def _base_card(source: WeightsSource, path: Path) -> dict[str, Any]:
    return {
        "backbone": "inception-v3",
        "version": BACKBONE_VERSION,
        "weights": source.name,
        "weights_file": path.name,
        "weights_sha256": sha256_file(path),
        "input_size": INPUT_SIZE,
        "resize": RESIZE_METHOD,
        "quantize": "uint8 (as saved image files)",
        "feature_dim": FEATURE_DIM,
    }


class TFGraphInception:
    """The TF-FID Inception graph (needs TensorFlow, whatever the Keras backend)."""

    def __init__(self, graph_path: str | os.PathLike, source: WeightsSource = TF_FID_GRAPH) -> None:
        import tensorflow as tf

        self.path = Path(graph_path)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(self.path.read_bytes())
        except Exception as exc:  # protobuf's DecodeError has no stable import path
            raise ValueError(f"{self.path} is not a TensorFlow GraphDef ({exc}); delete it to download it again") from None

        def _imported(x):
            # Mapping our own input over ExpandDims:0 re-infers every shape downstream from it,
            # so batches of any size pass; the graph was frozen with a batch of one.
            (out,) = tf.compat.v1.import_graph_def(
                graph_def, input_map={GRAPH_INPUT: x}, return_elements=[GRAPH_OUTPUT], name="fid"
            )
            return out

        try:
            self._fn = tf.compat.v1.wrap_function(_imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"{self.path} has no {GRAPH_INPUT} -> {GRAPH_OUTPUT} path ({exc}); it is not the FID Inception graph"
            ) from None
        self._card = _base_card(source, self.path) | {
            "preprocess": "in-graph: ResizeBilinear to 299x299, then (x - 128) / 128",
            "layer": "pool_3",
        }

    def features(self, images: np.ndarray, batch_size: int = 50) -> np.ndarray:
        """``(N, 2048)`` float64 features of ``(N, H, W, 1 or 3)`` uint8 or ``[-1, 1]`` images."""
        import tensorflow as tf

        _check_input(images)
        out = [
            np.asarray(self._fn(tf.constant(batch))).reshape(len(batch), -1).astype(np.float64)
            for batch in _batches(images, batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))

    def card(self) -> dict[str, Any]:
        return dict(self._card)


class KerasInception:
    """Keras's ImageNet InceptionV3, average-pooled; runs on any Keras backend."""

    def __init__(self, weights_path: str | os.PathLike, source: WeightsSource = KERAS_IMAGENET) -> None:
        import keras

        self.path = Path(weights_path)
        self._model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights=None, input_shape=(INPUT_SIZE, INPUT_SIZE, 3)
        )
        try:
            self._model.load_weights(self.path)
        except Exception as exc:  # h5py and Keras raise several unrelated types for a bad file
            raise ValueError(
                f"{self.path} does not hold InceptionV3 weights ({type(exc).__name__}); delete it to download it again"
            ) from None
        self._card = _base_card(source, self.path) | {
            "preprocess": "numpy resize to 299x299, then keras inception_v3.preprocess_input (x / 127.5 - 1)",
            "layer": "global average pool of mixed10",
        }

    def features(self, images: np.ndarray, batch_size: int = 50) -> np.ndarray:
        """``(N, 2048)`` float64 features of ``(N, H, W, 1 or 3)`` uint8 or ``[-1, 1]`` images."""
        from keras.applications.inception_v3 import preprocess_input

        _check_input(images)
        out = []
        for batch in _batches(images, batch_size):
            x = preprocess_input(resize_bilinear_tf1(batch, (INPUT_SIZE, INPUT_SIZE)))
            out.append(np.asarray(self._model.predict_on_batch(x)).astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))

    def card(self) -> dict[str, Any]:
        return dict(self._card)


def default_source() -> str:
    """``"tf-fid"`` where TensorFlow is installed (published numbers), else ``"keras"``."""
    return "tf-fid" if importlib.util.find_spec("tensorflow") is not None else "keras"


def load_inception(
    source: str = "auto",
    *,
    directory: str | os.PathLike | None = None,
    url: str | None = None,
    download: bool = True,
) -> TFGraphInception | KerasInception:
    """The Inception backbone from ``source`` (``"auto"``, ``"tf-fid"`` or ``"keras"``).

    The weights are found in, or downloaded once into, ``directory`` (Keras's
    cache folder by default); see :func:`ganlab.metrics.inception_weights.locate_weights`.

    Raises:
        WeightsUnavailable: no weights file and no way to download it.
        ValueError: an unknown source, or a weights file that is not what it should be.
    """
    name = default_source() if source == "auto" else source
    if name not in SOURCES:
        raise ValueError(f"unknown Inception weights source {source!r}; use one of auto, {', '.join(SOURCES)}")
    if name == "tf-fid" and importlib.util.find_spec("tensorflow") is None:
        raise ValueError("the tf-fid Inception graph needs TensorFlow; install it or use source='keras'")
    path = locate_weights(SOURCES[name], directory=directory, url=url, download=download)
    return TFGraphInception(path) if name == "tf-fid" else KerasInception(path)
