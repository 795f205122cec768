"""MNIST, Fashion-MNIST and CIFAR-10 from the Keras dataset cache.

Keras keeps downloaded data sets under ``$KERAS_HOME/datasets`` (default
``~/.keras/datasets``). These plugins look for the files Keras 3 writes
there and read them directly with NumPy:

* ``mnist``: ``datasets/mnist.npz`` (keys ``x_train``, ``y_train``,
  ``x_test``, ``y_test``);
* ``fashion-mnist``: ``datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``;
* ``cifar10``: the extracted archive,
  ``datasets/cifar-10-batches-py-target/cifar-10-batches-py/{data_batch_1..5,test_batch}``.

Why not call ``keras.datasets.*.load_data()`` when the file is there: it
checks the file's hash and, on any mismatch, starts a download, which
offline blocks on the network instead of failing. Reading the cache
ourselves makes a missing or odd file a one-line :class:`DatasetUnavailable`
saying which file to put where. Keras is called only with
``download=true``, to fetch a file that is not cached yet.
"""

from __future__ import annotations

import gzip
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.builtin.datasets.arrays import npz_headers
from ganlab.errors import DatasetUnavailable, first_line
from ganlab.params import Param
from ganlab.specs import DataInfo, DatasetSpec, ImageData

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR10_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SPLITS = ("train", "test", "all")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


def keras_datasets_dir() -> Path:
    """Where Keras caches data sets, following Keras 3's own rules, read from the environment now.

    Keras reads ``KERAS_HOME`` once, when it is imported; reading it here on
    every call lets a test or a worker point it elsewhere later. Like Keras,
    fall back to ``/tmp/.keras`` when the home folder is not writable.
    """
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    home = os.path.expanduser(home)
    if os.path.isdir(home) and not os.access(home, os.W_OK):
        home = os.path.join("/tmp", ".keras")
    return Path(home) / "datasets"


def _split_param() -> Param:
    return Param("split", str, "train", "which part to train on: train, test or all (both)", choices=SPLITS)


def _download_param() -> Param:
    return Param(
        "download", bool, False,
        "let Keras download the file if it is not cached (needs network; off so an offline machine fails at once)",
    )


def _parts(split: str) -> list[str]:
    return ["train", "test"] if split == "all" else [split]


def _select(parts: Mapping[str, tuple[np.ndarray, np.ndarray]], split: str) -> tuple[np.ndarray, np.ndarray]:
    chosen = ("train", "test") if split == "all" else (split,)
    xs = [parts[s][0] for s in chosen]
    ys = [np.asarray(parts[s][1]).reshape(-1) for s in chosen]
    return (xs[0], ys[0]) if len(xs) == 1 else (np.concatenate(xs), np.concatenate(ys))


def _image_data(x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...]) -> ImageData:
    if x.ndim == 3:  # grey sets come as (N, 28, 28)
        x = x[..., np.newaxis]
    return ImageData(np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int32), class_names)


@dataclass(frozen=True)
class _KerasSet:
    """One data set in the Keras cache: where its files live and how to read them."""

    name: str
    description: str
    reference: str
    class_names: tuple[str, ...]
    files: Callable[[Path, str], list[Path]]  # (datasets dir, split) -> files needed
    fetch_hint: Callable[[Path], str]  # (datasets dir) -> what to put where
    read: Callable[[list[Path], str], tuple[np.ndarray, np.ndarray]]  # (files, split) -> x, y
    count: Callable[[list[Path], str], tuple[tuple[int, int, int], int]]  # cheap (H, W, C), N
    keras_loader: str  # attribute of keras.datasets used to download

    def _missing(self, params: Mapping[str, Any]) -> tuple[list[Path], list[Path]]:
        split = str(params.get("split", "train"))
        needed = self.files(keras_datasets_dir(), split)
        return needed, [p for p in needed if not p.is_file()]

    def _unavailable(self, missing: list[Path]) -> DatasetUnavailable:
        return DatasetUnavailable(
            f"dataset {self.name!r}: {missing[0]} is not in the Keras cache; "
            f"{self.fetch_hint(keras_datasets_dir())}, or --set download=true to let Keras fetch it (needs network)"
        )

    def load(self, params: Mapping[str, Any]) -> ImageData:
        split = str(params.get("split", "train"))
        needed, missing = self._missing(params)
        if missing:
            if not params.get("download", False):
                raise self._unavailable(missing)
            return self._download(split)
        try:
            x, y = self.read(needed, split)
        except DatasetUnavailable:
            raise
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
            raise self._corrupt(needed, exc) from exc
        return _image_data(x, y, self.class_names)

    def describe(self, params: Mapping[str, Any]) -> DataInfo:
        split = str(params.get("split", "train"))
        needed, missing = self._missing(params)
        if missing:
            if not params.get("download", False):
                raise self._unavailable(missing)
            # Not cached yet but Keras will fetch it: the data set's published size.
            shape, n = self.count([], split)
            return DataInfo(shape, len(self.class_names), n)
        try:
            shape, n = self.count(needed, split)
        except DatasetUnavailable:
            raise
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise self._corrupt(needed, exc) from exc
        return DataInfo(shape, len(self.class_names), n)

    def _corrupt(self, files: list[Path], exc: Exception) -> DatasetUnavailable:
        where = files[0].parent
        return DatasetUnavailable(
            f"dataset {self.name!r}: the cached file(s) in {where} cannot be read ({type(exc).__name__}: {exc}); "
            f"delete them and {self.fetch_hint(keras_datasets_dir())}"
        )

    def _download(self, split: str) -> ImageData:
        import keras

        loader = getattr(keras.datasets, self.keras_loader)
        try:
            (x_train, y_train), (x_test, y_test) = loader.load_data()
        except Exception as exc:  # noqa: BLE001 - Keras raises bare Exception on URL failures
            raise DatasetUnavailable(
                f"dataset {self.name!r}: Keras could not download it ({first_line(exc)}); "
                f"{self.fetch_hint(keras_datasets_dir())}"
            ) from exc
        x, y = _select({"train": (x_train, y_train), "test": (x_test, y_test)}, split)
        return _image_data(x, y, self.class_names)

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            description=self.description,
            load=self.load,
            describe=self.describe,
            params=(_split_param(), _download_param()),
            reference=self.reference,
        )


# --------------------------------------------------------------------- MNIST


def _mnist_files(datasets: Path, split: str) -> list[Path]:
    return [datasets / "mnist.npz"]


def _mnist_hint(datasets: Path) -> str:
    return f"copy mnist.npz from {KERAS_ORIGIN}mnist.npz to {datasets / 'mnist.npz'}"


def _mnist_read(files: list[Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(files[0], allow_pickle=False) as npz:
        parts = {s: (npz[f"x_{s}"], npz[f"y_{s}"]) for s in _parts(split)}
    return _select(parts, split)


def _mnist_count(files: list[Path], split: str) -> tuple[tuple[int, int, int], int]:
    if not files:
        return (28, 28, 1), {"train": 60000, "test": 10000, "all": 70000}[split]
    headers = npz_headers(files[0])
    shapes = [headers[f"x_{s}"][0] for s in _parts(split)]
    return (shapes[0][1], shapes[0][2], 1), sum(s[0] for s in shapes)


# ------------------------------------------------------------- Fashion-MNIST

_FASHION_DIR = "fashion-mnist"
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _fashion_files(datasets: Path, split: str) -> list[Path]:
    out = []
    for s in _parts(split):
        out.append(datasets / _FASHION_DIR / f"{_IDX_PREFIX[s]}-images-idx3-ubyte.gz")
        out.append(datasets / _FASHION_DIR / f"{_IDX_PREFIX[s]}-labels-idx1-ubyte.gz")
    return out


def _fashion_hint(datasets: Path) -> str:
    names = ", ".join(p.name for p in _fashion_files(datasets, "all"))
    return f"copy {names} from {KERAS_ORIGIN} into {datasets / _FASHION_DIR}"


def _idx_header(fp: Any, path: Path) -> tuple[int, ...]:
    """Dimensions from an IDX header (LeCun's MNIST format: 0, 0, type 0x08 = ubyte, ndim, big-endian dims)."""
    magic = fp.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file")
    ndim = magic[3]
    dims = np.frombuffer(fp.read(4 * ndim), dtype=">u4")
    if len(dims) != ndim:
        raise ValueError(f"{path.name} has a truncated header")
    return tuple(int(d) for d in dims)


def _idx_read(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fp:
        dims = _idx_header(fp, path)
        data = np.frombuffer(fp.read(), dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path.name} holds {data.size} bytes, its header says {dims}")
    return data.reshape(dims)


def _fashion_read(files: list[Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = {}
    for i, s in enumerate(_parts(split)):
        x, y = _idx_read(files[2 * i]), _idx_read(files[2 * i + 1])
        if len(x) != len(y):
            raise ValueError(f"{files[2 * i].name} has {len(x)} images but {files[2 * i + 1].name} {len(y)} labels")
        parts[s] = (x, y)
    return _select(parts, split)


def _fashion_count(files: list[Path], split: str) -> tuple[tuple[int, int, int], int]:
    if not files:
        return (28, 28, 1), {"train": 60000, "test": 10000, "all": 70000}[split]
    n, shape = 0, (28, 28, 1)
    for images in files[::2]:
        with gzip.open(images, "rb") as fp:
            dims = _idx_header(fp, images)  # decompresses only the 16-byte header
        if len(dims) != 3:
            raise ValueError(f"{images.name} holds {dims}, not (N, H, W) images")
        n, shape = n + dims[0], (dims[1], dims[2], 1)
    return shape, n


# ------------------------------------------------------------------ CIFAR-10

# Folder names Keras 3 uses: get_file(fname="cifar-10-batches-py-target", extract=True)
# extracts the archive into this folder; the archive's own top folder sits inside it.
_CIFAR_EXTRACTED = "cifar-10-batches-py-target"
_CIFAR_INNER = "cifar-10-batches-py"
_CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _cifar_files(datasets: Path, split: str) -> list[Path]:
    folder = datasets / _CIFAR_EXTRACTED / _CIFAR_INNER
    return [folder / name for s in _parts(split) for name in _CIFAR_BATCHES[s]]


def _cifar_hint(datasets: Path) -> str:
    target = datasets / _CIFAR_EXTRACTED
    return f"download {CIFAR10_ORIGIN} and extract it into {target} (giving {target / _CIFAR_INNER}/data_batch_1 ... test_batch)"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and NumPy arrays: a cached file must not be able to run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
        with warnings.catch_warnings():  # numpy 2 warns on the numpy.core spelling old pickles use
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fp:
        batch = _ArrayUnpickler(fp, encoding="bytes").load()
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path.name} holds data {data.shape} and {len(labels)} labels, not (N, 3072) and N")
    # Stored as N rows of 1024 red, 1024 green, 1024 blue values: channels first.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _cifar_read(files: list[Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    batches = [_cifar_batch(p) for p in files]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _cifar_count(files: list[Path], split: str) -> tuple[tuple[int, int, int], int]:
    # The pickles have no cheap header; every batch file of CIFAR-10 holds 10,000 images.
    n_files = len(files) if files else sum(len(_CIFAR_BATCHES[s]) for s in _parts(split))
    return (32, 32, 3), 10000 * n_files


SETS = (
    _KerasSet(
        name="mnist",
        description="MNIST handwritten digits, 28x28 grey, 10 classes (Keras cache)",
        reference="LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition",
        class_names=DIGIT_CLASSES,
        files=_mnist_files,
        fetch_hint=_mnist_hint,
        read=_mnist_read,
        count=_mnist_count,
        keras_loader="mnist",
    ),
    _KerasSet(
        name="fashion-mnist",
        description="Fashion-MNIST clothing images, 28x28 grey, 10 classes (Keras cache)",
        reference="Xiao et al. 2017, Fashion-MNIST, arXiv:1708.07747",
        class_names=FASHION_CLASSES,
        files=_fashion_files,
        fetch_hint=_fashion_hint,
        read=_fashion_read,
        count=_fashion_count,
        keras_loader="fashion_mnist",
    ),
    _KerasSet(
        name="cifar10",
        description="CIFAR-10 photos, 32x32 RGB, 10 classes (Keras cache)",
        reference="Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
        class_names=CIFAR10_CLASSES,
        files=_cifar_files,
        fetch_hint=_cifar_hint,
        read=_cifar_read,
        count=_cifar_count,
        keras_loader="cifar10",
    ),
)
