"""Where the Inception-V3 weights live, and fetching them once into the Keras cache.

Two sources, never mixed (each backbone's card names its own):

- ``tf-fid``: the 2015-12-05 Inception graph that TensorFlow published as
  ``inception-2015-12-05.tgz``; its ``classify_image_graph_def.pb`` is the
  network behind TTUR's FID, so behind most published FID numbers.
- ``keras``: Keras's ImageNet InceptionV3 without its classifier top
  (``include_top=False``), the file ``keras.applications.InceptionV3`` itself
  downloads.

Both are stored in Keras's cache folder (``$KERAS_HOME/models``, else
``~/.keras/models``), where Keras keeps its own downloads, so a file Keras
already fetched is found, and a user without network knows one place to put
the file. Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganlab.atomicfile import atomic_write
from ganlab.errors import GanlabError

__all__ = [
    "KERAS_IMAGENET",
    "SOURCES",
    "TF_FID_GRAPH",
    "WeightsSource",
    "WeightsUnavailable",
    "locate_weights",
    "sha256_file",
    "weights_dir",
]

_CHUNK = 1 << 20


class WeightsUnavailable(GanlabError):
    """The weights file is not on this machine and could not be downloaded."""


@dataclass(frozen=True)
class WeightsSource:
    """One published weights file.

    Attributes:
        name: the identity a backbone card records (``weights``).
        url: where it is published.
        relpath: where it lies under :func:`weights_dir`.
        archive_member: for a ``.tgz`` download, the member that is kept;
            ``None`` when the download is the file itself.
    """

    name: str
    url: str
    relpath: str
    archive_member: str | None = None


TF_FID_GRAPH = WeightsSource(
    name="tf-fid-inception-2015-12-05",
    url="http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz",
    relpath="inception-2015-12-05/classify_image_graph_def.pb",
    archive_member="classify_image_graph_def.pb",
)

KERAS_IMAGENET = WeightsSource(
    name="keras-imagenet-inception-v3",
    url=(
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ),
    relpath="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
)

SOURCES = {"tf-fid": TF_FID_GRAPH, "keras": KERAS_IMAGENET}


def weights_dir() -> Path:
    """``$KERAS_HOME/models``, else ``~/.keras/models``: Keras's own download cache."""
    root = os.environ.get("KERAS_HOME")
    return Path(root) / "models" if root else Path.home() / ".keras" / "models"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (the weights are 90 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _unavailable(source: WeightsSource, url: str, path: Path, why: str) -> WeightsUnavailable:
    what = f"{source.archive_member} (extracted from the .tgz)" if source.archive_member else "the file"
    return WeightsUnavailable(
        f"Inception weights {source.name} not found and {why}: download {url} on a machine with network "
        f"and put {what} at {path}"
    )


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def locate_weights(
    source: WeightsSource,
    *,
    directory: str | os.PathLike | None = None,
    url: str | None = None,
    download: bool = True,
    timeout: float = 60.0,
    log: Callable[[str], None] = _to_stderr,
) -> Path:
    """The path of ``source``'s weights file, downloading it on first use.

    Args:
        source: which weights.
        directory: the cache folder; :func:`weights_dir` by default.
        url: where to download from instead of ``source.url`` (a mirror, or a
            ``file://`` URL).
        download: ``False`` never touches the network.
        timeout: seconds before an unanswered connection counts as no network.
        log: receives one line before a download and one after (a first
            download is about 90 MB and should not look like a hang).

    Raises:
        WeightsUnavailable: the file is absent and cannot be fetched; its one-line
            message names the URL and the exact path to put the file at.
    """
    path = Path(directory if directory is not None else weights_dir()) / source.relpath
    if path.is_file():
        return path
    url = url or source.url
    if not download:
        raise _unavailable(source, url, path, "downloads are off")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unavailable(source, url, path, f"its folder cannot be created ({exc.strerror})") from None
    # Download beside the target and move it in only when complete: an interrupted
    # download never leaves a truncated file that a later run would trust.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        fetched = Path(tmp) / "download"
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(fetched, "wb") as out:
                # Said once connected, so that with no network the error is the only line.
                log(f"downloading the Inception weights {source.name} from {url} to {path} (once)")
                shutil.copyfileobj(response, out, _CHUNK)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _unavailable(source, url, path, f"the download failed ({reason})") from None
        with atomic_write(path) as out:
            if source.archive_member is None:
                with open(fetched, "rb") as f:
                    shutil.copyfileobj(f, out, _CHUNK)
            else:
                _extract_member(fetched, source, url, path, out)
        size = fetched.stat().st_size
    log(f"downloaded {size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s")
    return path


def _extract_member(archive: Path, source: WeightsSource, url: str, path: Path, out) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = next((m for m in tar.getmembers() if Path(m.name).name == source.archive_member), None)
            if member is None or not member.isfile():
                raise _unavailable(source, url, path, f"the download has no {source.archive_member}")
            # Only the member's bytes are read; nothing from the archive is written by its own name.
            shutil.copyfileobj(tar.extractfile(member), out, _CHUNK)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _unavailable(source, url, path, f"the download is not a readable .tgz ({exc})") from None
