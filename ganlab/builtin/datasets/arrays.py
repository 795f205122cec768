"""The ``npz`` dataset: images (and optionally labels) from a ``.npz`` or ``.npy`` file.

Images must already be uint8 in ``0..255``, shaped ``(N, H, W, C)`` with C 1
or 3, or ``(N, H, W)`` (a channel axis is added). Float arrays are refused
with the one-line conversion to use, rather than converted: whether floats
are in ``[0, 1]`` or ``[-1, 1]`` cannot be told reliably from the values, a
guess would silently train on wrong data, and converting a large
memory-mapped array would read all of it into memory.

A ``.npy`` file is opened with ``mmap_mode="r"``, so a data set larger than
memory stays on disk; the trainer keeps memmaps as memmaps.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ganlab.errors import DatasetUnavailable
from ganlab.params import Param
from ganlab.specs import DataInfo, DatasetSpec, ImageData

NAME = "npz"
_WHERE = f"dataset {NAME!r}"


def read_npy_header(fp: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of an ``.npy`` stream, reading nothing else."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        # Versions 2.0 and 3.0 share 2.0's layout (a 4-byte header length).
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    return tuple(int(d) for d in shape), np.dtype(dtype)


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``name -> (shape, dtype)`` of every array in an ``.npz``, without loading any of them."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if member.endswith(".npy"):
                with zf.open(member) as fp:
                    out[member[: -len(".npy")]] = read_npy_header(fp)
    return out


def image_shape_of(shape: tuple[int, ...], dtype: np.dtype, what: str) -> tuple[int, int, int]:
    """``(H, W, C)`` of an image array of ``shape``/``dtype``, or a DatasetUnavailable saying what is wrong."""
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise DatasetUnavailable(f"{what} has dtype {dtype}; images must be uint8 arrays (N, H, W, C) or (N, H, W)")
    if dtype != np.uint8:
        if np.issubdtype(dtype, np.floating):
            fix = "for values in [0, 1] save (x * 255).round().astype(np.uint8); for [-1, 1] save ((x + 1) * 127.5).round().astype(np.uint8)"
        else:
            fix = "save x.astype(np.uint8) if its values are in 0..255"
        raise DatasetUnavailable(f"{what} has dtype {dtype}, not uint8; {fix}")
    if len(shape) == 3:
        shape = shape + (1,)
    if len(shape) != 4 or shape[-1] not in (1, 3):
        hint = " (channels first? save x.transpose(0, 2, 3, 1))" if len(shape) == 4 and shape[1] in (1, 3) else ""
        raise DatasetUnavailable(f"{what} has shape {shape}; expected (N, H, W, C) with C 1 or 3, or (N, H, W){hint}")
    if shape[0] == 0:
        raise DatasetUnavailable(f"{what} holds no images")
    return (shape[1], shape[2], shape[3])


def _labels_checked(labels: np.ndarray, n: int, what: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:  # (N, 1), as Keras' CIFAR-10 stores them
        labels = labels[:, 0]
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        raise DatasetUnavailable(f"{what} has {labels.dtype} shape {labels.shape}; labels must be integers of shape ({n},)")
    if n and labels.min() < 0:
        raise DatasetUnavailable(f"{what} has negative values; labels must be class ids 0, 1, 2, ...")
    return labels


def _file(params: Mapping[str, Any]) -> Path:
    raw = str(params.get("path") or "")
    if not raw:
        raise DatasetUnavailable(f"{_WHERE} needs path: --set path=FILE.npz (or FILE.npy)")
    path = Path(raw).expanduser()
    if not path.exists():
        raise DatasetUnavailable(f"{_WHERE}: file {str(path)!r} does not exist; set path to a .npz or .npy file")
    if not path.is_file():
        raise DatasetUnavailable(f"{_WHERE}: {str(path)!r} is not a file; use the 'folder' dataset for a folder of images")
    if path.suffix.lower() not in (".npz", ".npy"):
        raise DatasetUnavailable(f"{_WHERE}: {str(path)!r} must end in .npz or .npy")
    if path.suffix.lower() == ".npy" and params.get("labels_key"):
        raise DatasetUnavailable(
            f"{_WHERE}: a .npy file holds one array, so labels_key={params['labels_key']!r} cannot apply; "
            "save images and labels together with np.savez, or leave labels_key empty"
        )
    return path


def _missing_key(path: Path, key: str, param: str, present: list[str]) -> DatasetUnavailable:
    listed = ", ".join(repr(k) for k in sorted(present)) or "none"
    return DatasetUnavailable(f"{_WHERE}: {str(path)!r} has no array {key!r} (its arrays: {listed}); set {param} to one of them")


def _read_failure(path: Path, exc: Exception) -> DatasetUnavailable:
    return DatasetUnavailable(f"{_WHERE}: cannot read {str(path)!r} ({type(exc).__name__}: {exc}); is it a NumPy file?")


def load(params: Mapping[str, Any]) -> ImageData:
    """Read the arrays; a ``.npy`` stays memory-mapped."""
    path = _file(params)
    images_key = str(params.get("images_key") or "x")
    labels_key = str(params.get("labels_key") or "")
    labels = None
    try:
        if path.suffix.lower() == ".npy":
            images = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as npz:
                if images_key not in npz.files:
                    raise _missing_key(path, images_key, "images_key", npz.files)
                if labels_key and labels_key not in npz.files:
                    raise _missing_key(path, labels_key, "labels_key", npz.files)
                images = npz[images_key]
                labels = npz[labels_key] if labels_key else None
    except DatasetUnavailable:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _read_failure(path, exc) from exc
    image_shape_of(images.shape, images.dtype, f"{_WHERE}: array {images_key!r} in {str(path)!r}")
    if images.ndim == 3:
        images = images[..., np.newaxis]  # a view: a memmap stays a memmap
    if labels is not None:
        labels = _labels_checked(labels, len(images), f"{_WHERE}: array {labels_key!r} in {str(path)!r}")
    return ImageData(images, labels)


def describe(params: Mapping[str, Any]) -> DataInfo:
    """Shape and count from the array headers; only the labels (small) are read, for the class count."""
    path = _file(params)
    images_key = str(params.get("images_key") or "x")
    labels_key = str(params.get("labels_key") or "")
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as fp:
                shape, dtype = read_npy_header(fp)
            num_classes = None
        else:
            headers = npz_headers(path)
            if images_key not in headers:
                raise _missing_key(path, images_key, "images_key", list(headers))
            if labels_key and labels_key not in headers:
                raise _missing_key(path, labels_key, "labels_key", list(headers))
            shape, dtype = headers[images_key]
            num_classes = None
            if labels_key:
                with np.load(path, allow_pickle=False) as npz:
                    labels = _labels_checked(npz[labels_key], shape[0], f"{_WHERE}: array {labels_key!r} in {str(path)!r}")
                num_classes = int(labels.max()) + 1
    except DatasetUnavailable:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _read_failure(path, exc) from exc
    image_shape = image_shape_of(shape, dtype, f"{_WHERE}: array {images_key!r} in {str(path)!r}")
    return DataInfo(image_shape, num_classes, shape[0])


SPEC = DatasetSpec(
    name=NAME,
    description="uint8 images (and labels) from a .npz file, or a memory-mapped .npy file",
    load=load,
    describe=describe,
    params=(
        Param("path", str, None, "the .npz or .npy file: --set path=FILE", required=True, is_path=True),
        Param("images_key", str, "x", "name of the image array in a .npz"),
        Param("labels_key", str, "", "name of the integer label array in a .npz ('' for none)"),
    ),
    reference="NumPy .npy/.npz format (numpy.lib.format)",
)
