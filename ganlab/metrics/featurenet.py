"""The feature net: a small classifier trained once per dataset, whose hidden layer embeds images.

Inception features (the usual FID) know nothing about 8x8 digits or 28x28
fashion items and need a download and a framework. Instead ganlab trains a
scikit-learn ``MLPClassifier`` on the dataset's own labelled training split
and uses its last hidden layer, computed in numpy from ``coefs_`` and
``intercepts_``. Training is deterministic (fixed seed, one BLAS thread) and
cached on disk as an ``.npz`` of weights plus a JSON of facts, keyed by a hash
of the data, the split and this configuration.

Input: images are quantised to uint8 (generated floats included, exactly as
they would be saved), box-downsampled so neither side exceeds
``max_side`` (32) pixels, scaled to ``[-1, 1]`` and flattened.

Unlabelled data: the classifier is trained on pseudo-labels from k-means
(``pseudo_classes`` clusters, fixed seed) on the prepared training split; the
protocol says so in its ``note``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.atomicfile import atomic_write

__all__ = ["FeatureNet", "FeatureNetConfig", "default_cache_dir", "load_or_train", "prepare"]


@dataclass(frozen=True)
class FeatureNetConfig:
    """Everything that shapes the feature net; part of its cache key.

    Attributes:
        hidden: hidden layer widths; the last one is the feature dimension.
        max_side: larger images are box-downsampled to fit in ``max_side`` pixels.
        max_train: at most this many training images (a fixed subset) keep
            the one-time training within seconds to a minute.
        max_iter: epochs of Adam (scikit-learn stops earlier once converged).
        alpha: L2 penalty.
        batch_size: minibatch size.
        seed: the classifier's and k-means' ``random_state``.
        pseudo_classes: k for k-means pseudo-labels when the data are unlabelled.
        version: bumped when the training code changes what a config produces.
    """

    hidden: tuple[int, ...] = (256, 128)
    max_side: int = 32
    max_train: int = 10_000
    max_iter: int = 40
    alpha: float = 1e-4
    batch_size: int = 128
    seed: int = 0
    pseudo_classes: int = 10
    version: int = 1

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}


def default_cache_dir() -> Path:
    """``$GANLAB_CACHE_DIR/featurenets``, else ``~/.cache/ganlab/featurenets``."""
    root = os.environ.get("GANLAB_CACHE_DIR")
    return Path(root) / "featurenets" if root else Path.home() / ".cache" / "ganlab" / "featurenets"


# ------------------------------------------------------------------- input


def _box_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` area-averaging weights: each output pixel is the mean of the input span it covers."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def prepare(images: np.ndarray, max_side: int = 32) -> np.ndarray:
    """``(N, H, W, C)`` uint8 or float in ``[-1, 1]`` -> ``(N, D)`` float32 in ``[-1, 1]``."""
    from ganlab.tblog.grid import to_uint8  # the same quantisation as the saved sample grids

    images = to_uint8(np.asarray(images))
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, C) with C 1 or 3, got shape {images.shape}")
    n, h, w, c = images.shape
    x = images.astype(np.float32)
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        oh, ow = max(1, round(h * scale)), max(1, round(w * scale))
        wh, ww = _box_weights(h, oh).astype(np.float32), _box_weights(w, ow).astype(np.float32)
        x = np.einsum("oh,nhwc,pw->nopc", wh, x, ww, optimize=True)
    return (x.reshape(n, -1) / 127.5 - 1.0).astype(np.float32)


# ---------------------------------------------------------------- the net


@dataclass
class FeatureNet:
    """A fitted MLP as plain arrays; ``features`` is its last hidden layer divided by ``scale``.

    ``scale`` is the root-mean-square activation over the training images, so
    real features have ``x·x/d ≈ 1``: KID's kernel ``(x·y/d + 1)³`` then works
    at the magnitude it was designed for, and scores are comparable in size
    across datasets.
    """

    coefs: list[np.ndarray]
    intercepts: list[np.ndarray]
    classes: np.ndarray
    config: FeatureNetConfig
    scale: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def dim(self) -> int:
        return int(self.coefs[-2].shape[1])

    def _hidden(self, x: np.ndarray) -> np.ndarray:
        for w, b in zip(self.coefs[:-1], self.intercepts[:-1]):
            x = np.maximum(x @ w + b, 0.0)  # scikit-learn's default activation, relu
        return x

    def features(self, images: np.ndarray, batch: int = 4096) -> np.ndarray:
        """``(N, dim)`` float64 features of uint8 or ``[-1, 1]`` float images."""
        from threadpoolctl import threadpool_limits

        out = []
        with threadpool_limits(limits=1, user_api="blas"):
            for i in range(0, len(images), batch):
                hidden = self._hidden(prepare(images[i : i + batch], self.config.max_side))
                out.append(hidden.astype(np.float64) / self.scale)
        return np.concatenate(out) if out else np.zeros((0, self.dim))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class ids the classifier assigns."""
        return self._predict_prepared(prepare(images, self.config.max_side))

    def _predict_prepared(self, x: np.ndarray) -> np.ndarray:
        out = self._hidden(x) @ self.coefs[-1] + self.intercepts[-1]
        # Two classes get a single logit in scikit-learn (positive means the second class).
        idx = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else np.argmax(out, axis=1)
        return self.classes[idx]


def fit(x: np.ndarray, y: np.ndarray, config: FeatureNetConfig) -> FeatureNet:
    """Train the classifier on prepared inputs ``x`` and integer labels ``y``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    clf = MLPClassifier(
        hidden_layer_sizes=config.hidden,
        alpha=config.alpha,
        batch_size=min(config.batch_size, len(x)),
        max_iter=config.max_iter,
        random_state=config.seed,
    )
    # One BLAS thread: the same sums in the same order on every machine (and faster
    # for matrices this small than threads fighting over shared cores).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a time budget, not a failure
        clf.fit(x, y)
    return FeatureNet(
        [np.asarray(w) for w in clf.coefs_],
        [np.asarray(b) for b in clf.intercepts_],
        np.asarray(clf.classes_),
        config,
        info={"epochs": int(clf.n_iter_)},
    )


# ------------------------------------------------------------------- cache


def data_digest(images: np.ndarray, labels: np.ndarray | None) -> str:
    """sha256 of the images (shape, dtype, bytes) and labels, read in chunks so memmaps stay cheap."""
    h = hashlib.sha256()
    h.update(f"{images.shape}|{images.dtype}|".encode())
    for i in range(0, len(images), 4096):
        h.update(np.ascontiguousarray(images[i : i + 4096]).tobytes())
    h.update(b"labels:" + (np.ascontiguousarray(labels, dtype=np.int64).tobytes() if labels is not None else b"none"))
    return h.hexdigest()


def cache_key(data_hash: str, train_idx: np.ndarray, config: FeatureNetConfig) -> str:
    h = hashlib.sha256()
    h.update(data_hash.encode())
    h.update(np.ascontiguousarray(train_idx, dtype=np.int64).tobytes())
    h.update(json.dumps(config.to_json(), sort_keys=True).encode())
    return h.hexdigest()


def _save(net: FeatureNet, directory: Path, key: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{i}": w for i, w in enumerate(net.coefs)} | {f"b{i}": b for i, b in enumerate(net.intercepts)}
    arrays["classes"] = net.classes
    arrays["scale"] = np.float64(net.scale)
    # Weights first, facts second: a JSON file names a complete weights file.
    # Through atomic_write, not mkstemp: a cache shared by a team must be readable by all of it.
    with atomic_write(directory / f"{key[:24]}.npz") as f:
        np.savez(f, **arrays)
    facts = {"key": key, "config": net.config.to_json(), **net.info}
    with atomic_write(directory / f"{key[:24]}.json") as f:
        f.write(json.dumps(facts, indent=2, sort_keys=True).encode())


def _load(directory: Path, key: str, config: FeatureNetConfig) -> FeatureNet | None:
    meta, weights = directory / f"{key[:24]}.json", directory / f"{key[:24]}.npz"
    try:
        facts = json.loads(meta.read_text())
        if facts.get("key") != key:
            return None
        with np.load(weights) as npz:
            layers = len(config.hidden) + 1
            coefs = [npz[f"w{i}"] for i in range(layers)]
            intercepts = [npz[f"b{i}"] for i in range(layers)]
            classes = npz["classes"]
            scale = float(npz["scale"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged (a truncated .npz is a BadZipFile): train again and overwrite
    info = {k: v for k, v in facts.items() if k not in ("key", "config")}
    return FeatureNet(coefs, intercepts, classes, config, scale=scale, info=info, from_cache=True)


def load_or_train(
    images: np.ndarray,
    labels: np.ndarray | None,
    train_idx: np.ndarray,
    holdout_idx: np.ndarray,
    config: FeatureNetConfig,
    cache_dir: str | os.PathLike | None = None,
    data_hash: str | None = None,
) -> FeatureNet:
    """The feature net for this data and split: from the cache, or trained and cached.

    ``info`` holds the key, the label source, and the train and holdout accuracy.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_hash = data_hash or data_digest(images, labels)
    fit_idx = np.sort(train_idx[: config.max_train])  # sorted: sequential reads from a memmap
    key = cache_key(data_hash, fit_idx, config)
    cached = _load(directory, key, config)
    if cached is not None:
        cached.info["key"] = key
        return cached

    started = time.perf_counter()
    x = prepare(images[fit_idx], config.max_side)
    x_hold = prepare(images[np.sort(holdout_idx)], config.max_side)
    if labels is not None and len(np.unique(labels[fit_idx])) >= 2:
        y, y_hold, source = labels[fit_idx], labels[np.sort(holdout_idx)], "labels"
    else:
        from sklearn.cluster import KMeans

        k = min(config.pseudo_classes, len(x))
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=config.seed).fit(x)
        y, y_hold, source = kmeans.labels_, kmeans.predict(x_hold), f"kmeans-{k}"
    net = fit(x, y, config)
    hidden = net._hidden(x).astype(np.float64)
    net.scale = float(np.sqrt(np.mean(np.sum(hidden**2, axis=1)) / hidden.shape[1])) or 1.0
    net.info.update(
        {
            "label_source": source,
            "feature_scale": net.scale,
            "n_train": int(len(x)),
            "train_accuracy": float(np.mean(net._predict_prepared(x) == y)),
            "holdout_accuracy": float(np.mean(net._predict_prepared(x_hold) == y_hold)) if len(x_hold) else None,
            "train_seconds": round(time.perf_counter() - started, 3),
        }
    )
    _save(net, directory, key)
    net.info["key"] = key
    return net
