"""The ``folder`` dataset: a directory of image files, read with Pillow.

Layout decides the labels:

* ``root/<class>/**/*.png`` (images in sub-folders): each sub-folder holding
  images is a class; sorted folder names become ids 0, 1, ... and the
  ``class_names``;
* ``root/*.png`` with no sub-folders holding images: one unlabelled set.

Images both in the root and in sub-folders are refused, since either reading
(root images as unlabelled extras, or as a class of their own) would be a
guess. Hidden files and folders (starting with ``.``) are skipped.

Each image is converted to grey (``channels=1``) or RGB (``channels=3``),
centre-cropped to a square and resized to ``size`` x ``size`` with a bicubic
filter: the usual preparation of face and scene sets for GANs, which keeps
aspect ratios instead of squashing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.errors import DatasetUnavailable
from ganlab.params import Param
from ganlab.specs import DataInfo, DatasetSpec, ImageData

NAME = "folder"
_WHERE = f"dataset {NAME!r}"
EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class _Listing:
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None
    class_names: tuple[str, ...] | None


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in EXTENSIONS and not p.name.startswith(".") and p.is_file()


def _images_under(folder: Path) -> list[Path]:
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if _is_image(p):
            found.append(p)
    return sorted(found)


def _root(params: Mapping[str, Any]) -> Path:
    raw = str(params.get("path") or "")
    if not raw:
        raise DatasetUnavailable(f"{_WHERE} needs path: --set path=FOLDER")
    root = Path(raw).expanduser()
    if not root.exists():
        raise DatasetUnavailable(f"{_WHERE}: folder {str(root)!r} does not exist; set path to a folder of images")
    if not root.is_dir():
        raise DatasetUnavailable(
            f"{_WHERE}: {str(root)!r} is a file, not a folder; set path to the folder holding the images "
            "(use the 'npz' dataset for .npz/.npy files)"
        )
    return root


def _scan(root: Path) -> _Listing:
    """File names and labels, from directory entries only (no image is opened)."""
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise DatasetUnavailable(f"{_WHERE}: cannot list {str(root)!r}: {exc.strerror or exc}") from exc
    top = [p for p in entries if _is_image(p)]
    classes = []
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            files = _images_under(sub)
            if files:
                classes.append((sub.name, files))
    if top and classes:
        raise DatasetUnavailable(
            f"{_WHERE}: {str(root)!r} has images both at the top ({top[0].name}, ...) and in class sub-folders "
            f"({classes[0][0]}/, ...); move the top-level images into a class folder, or point path at a folder with one layout"
        )
    if classes:
        files, labels = [], []
        for class_id, (_, class_files) in enumerate(classes):
            files.extend(class_files)
            labels.extend([class_id] * len(class_files))
        return _Listing(tuple(files), tuple(labels), tuple(name for name, _ in classes))
    if top:
        return _Listing(tuple(top), None, None)
    raise DatasetUnavailable(
        f"{_WHERE}: no images found in {str(root)!r} or its sub-folders (looked for {', '.join(EXTENSIONS)})"
    )


def _open(path: Path, channels: int, size: int | None) -> np.ndarray | None:
    """Decode one file to ``(size, size, channels)`` uint8; with ``size=None`` only check it opens."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if size is None:
                return None
            im = im.convert("L" if channels == 1 else "RGB")
            im = ImageOps.fit(im, (size, size), method=Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetUnavailable(
            f"{_WHERE}: cannot read image {str(path)!r} ({type(exc).__name__}: {exc}); delete or replace the file"
        ) from exc
    return arr.reshape(size, size, channels)


def load(params: Mapping[str, Any]) -> ImageData:
    """Decode every image; raises DatasetUnavailable naming the first unreadable file."""
    root = _root(params)
    size, channels = int(params.get("size", 64)), int(params.get("channels", 3))
    listing = _scan(root)
    images = np.empty((len(listing.files), size, size, channels), dtype=np.uint8)
    for i, path in enumerate(listing.files):
        images[i] = _open(path, channels, size)
    labels = np.asarray(listing.labels, dtype=np.int32) if listing.labels is not None else None
    return ImageData(images, labels, listing.class_names)


def describe(params: Mapping[str, Any]) -> DataInfo:
    """Count and classes from file names; opens only the first image's header, to fail early on junk."""
    root = _root(params)
    size, channels = int(params.get("size", 64)), int(params.get("channels", 3))
    listing = _scan(root)
    _open(listing.files[0], channels, None)
    num_classes = len(listing.class_names) if listing.class_names is not None else None
    return DataInfo((size, size, channels), num_classes, len(listing.files))


SPEC = DatasetSpec(
    name=NAME,
    description="a folder of images (class sub-folders become labels), centre-cropped and resized with Pillow",
    load=load,
    describe=describe,
    params=(
        Param("path", str, None, "the folder of images: --set path=FOLDER", required=True, is_path=True),
        Param("size", int, 64, "output height and width in pixels", low=4, high=1024),
        Param("channels", int, 3, "1 for grey, 3 for RGB", choices=(1, 3)),
    ),
    reference="your own images; formats: " + ", ".join(EXTENSIONS),
)
