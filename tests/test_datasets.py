"""Built-in datasets: real digits, Keras-cache sets offline, folders of images, npz/npy files."""

from __future__ import annotations

import gzip
import pickle
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.builtin import datasets as builtin_datasets
from ganlab.builtin.datasets import digits, keras_datasets
from ganlab.config import Resolver
from ganlab.errors import ConfigError, DatasetUnavailable
from ganlab.params import resolve_params
from ganlab.registry import Registry
from ganlab.specs import DatasetSpec


def _specs() -> dict[str, DatasetSpec]:
    found: list[DatasetSpec] = []
    builtin_datasets.register_datasets(register=found.append)
    return {s.name: s for s in found}


def _params(name: str, **given: object) -> dict:
    spec = _specs()[name]
    return resolve_params(spec.params, given, name)


def _load(name: str, **given: object):
    return _specs()[name].load(_params(name, **given))


def _describe(name: str, **given: object):
    return _specs()[name].describe(_params(name, **given))


# -------------------------------------------------------------------- digits


def test_digits_are_real_upscaled_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fast because it reads scikit-learn's data file without importing scikit-learn (about a second):
    # with that import made to fail, the digits still load, and a second load reuses the first.
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    digits._raw_digits.cache_clear()
    digits._converted.cache_clear()
    data = _load("digits")
    assert _load("digits").images is data.images
    assert data.images.shape == (1797, 32, 32, 1) and data.images.dtype == np.uint8
    assert data.labels is not None and set(np.unique(data.labels)) == set(range(10))
    assert data.class_names == tuple(str(i) for i in range(10))
    assert data.images.min() == 0 and data.images.max() == 255
    mean = {c: data.images[data.labels == c].astype(float).mean(axis=0)[..., 0] for c in (0, 1)}
    # a 0 is a ring (dark centre), a 1 a stroke through the middle (bright centre)
    centre = (slice(12, 20), slice(12, 20))
    assert mean[1][centre].mean() > mean[0][centre].mean() + 40
    assert np.abs(mean[0] - mean[1]).mean() > 10


def test_digits_match_scikit_learn_at_native_size() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = _load("digits", size=8)
    assert data.images.shape == (1797, 8, 8, 1)
    np.testing.assert_array_equal(data.images[..., 0], np.rint(bunch.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(data.labels, bunch.target)


@pytest.mark.parametrize("size", [16, 64])
def test_digits_size_param(size: int) -> None:
    data = _load("digits", size=size)
    assert data.images.shape == (1797, size, size, 1)
    assert data.images.max() == 255


@pytest.mark.parametrize("size", digits.SIZES)
def test_digits_describe_matches_loaded_data(size: int) -> None:
    assert _describe("digits", size=size) == _load("digits", size=size).info()


def test_digits_cached_and_protected() -> None:
    a, b = _load("digits"), _load("digits")
    assert a.images is b.images  # converted once per process
    with pytest.raises(ValueError):
        a.images[0, 0, 0, 0] = 1


def test_digits_without_shipped_csv_uses_load_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digits, "_shipped_csv", lambda: None)
    via_sklearn = digits._raw_digits()
    monkeypatch.undo()
    direct = digits._raw_digits()
    np.testing.assert_array_equal(via_sklearn[0], direct[0])
    np.testing.assert_array_equal(via_sklearn[1], direct[1])


def test_digits_refuses_unsupported_size() -> None:
    with pytest.raises(ConfigError, match="size"):
        _params("digits", size=30)


# -------------------------------------------------------------------- folder


def _png(path: Path, value: int, size: tuple[int, int] = (10, 6), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (value, 255 - value, 7) if mode == "RGB" else value
    Image.new(mode, size, colour).save(path)


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    _png(tmp_path / "dogs" / "a.png", 200)
    _png(tmp_path / "dogs" / "deeper" / "b.PNG", 200)
    _png(tmp_path / "cats" / "c.jpg", 10)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    _png(tmp_path / ".hidden" / "x.png", 99)
    data = _load("folder", path=str(tmp_path), size=16, channels=3)
    assert data.class_names == ("cats", "dogs")
    assert data.images.shape == (3, 16, 16, 3) and data.images.dtype == np.uint8
    assert list(data.labels) == [0, 1, 1]
    # the cat image is the dark-red one: colours survive decoding and resizing
    np.testing.assert_allclose(data.images[0].reshape(-1, 3).mean(axis=0), (10, 245, 7), atol=3)
    np.testing.assert_allclose(data.images[1].reshape(-1, 3).mean(axis=0), (200, 55, 7), atol=3)
    info = _describe("folder", path=str(tmp_path), size=16, channels=3)
    assert (info.image_shape, info.num_classes, info.num_examples) == ((16, 16, 3), 2, 3)


def test_folder_unlabelled_grey(tmp_path: Path) -> None:
    _png(tmp_path / "one.png", 50, mode="L")
    _png(tmp_path / "two.bmp", 150)
    data = _load("folder", path=str(tmp_path), size=8, channels=1)
    assert data.labels is None and data.class_names is None
    assert data.images.shape == (2, 8, 8, 1)
    assert abs(float(data.images[0].mean()) - 50) < 2
    info = _describe("folder", path=str(tmp_path), size=8, channels=1)
    assert (info.image_shape, info.num_classes, info.num_examples) == ((8, 8, 1), None, 2)


def test_folder_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DatasetUnavailable, match=r"folder '.*nope' does not exist"):
        _load("folder", path=str(missing))
    a_file = tmp_path / "file.png"
    _png(a_file, 1)
    with pytest.raises(DatasetUnavailable, match="is a file, not a folder"):
        _describe("folder", path=str(a_file))
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DatasetUnavailable, match=r"no images found .* \(looked for .*\.png.*\.webp\)"):
        _load("folder", path=str(empty))
    broken = tmp_path / "broken"
    _png(broken / "good.png", 5)
    (broken / "zz_bad.png").write_bytes(b"this is not a png")
    with pytest.raises(DatasetUnavailable, match=r"cannot read image '.*zz_bad\.png'"):
        _load("folder", path=str(broken))
    mixed = tmp_path / "mixed"
    _png(mixed / "top.png", 5)
    _png(mixed / "cls" / "in.png", 5)
    with pytest.raises(DatasetUnavailable, match="both at the top"):
        _load("folder", path=str(mixed))


def test_folder_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        _load("folder", path=str(tmp_path / "missing"))
    assert "\n" not in str(info.value)


def test_folder_describe_opens_no_more_than_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        _png(tmp_path / f"{i}.png", i)
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: (opened.append(str(fp)), real_open(fp, *a, **k))[1])
    assert _describe("folder", path=str(tmp_path)).num_examples == 5
    assert len(opened) <= 1


# ----------------------------------------------------------------- npz / npy


def test_npz_round_trip_with_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 5, 4, 3), dtype=np.uint8)
    y = np.array([0, 2, 1, 2, 0, 1], dtype=np.int64)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, images=x, targets=y, other=np.zeros(2))
    data = _load("npz", path=str(path), images_key="images", labels_key="targets")
    np.testing.assert_array_equal(data.images, x)
    np.testing.assert_array_equal(data.labels, y)
    info = _describe("npz", path=str(path), images_key="images", labels_key="targets")
    assert (info.image_shape, info.num_classes, info.num_examples) == ((5, 4, 3), 3, 6)


def test_npz_grey_without_channel_axis(tmp_path: Path) -> None:
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = tmp_path / "g.npz"
    np.savez(path, x=x)
    data = _load("npz", path=str(path))
    assert data.images.shape == (2, 3, 3, 1) and data.labels is None
    np.testing.assert_array_equal(data.images[..., 0], x)
    assert _describe("npz", path=str(path)).image_shape == (3, 3, 1)


@pytest.mark.parametrize("shape", [(4, 6, 6, 3), (4, 6, 6)])
def test_npy_stays_memory_mapped(tmp_path: Path, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / "big.npy"
    np.save(path, x)
    data = _load("npz", path=str(path))
    assert isinstance(data.images, np.memmap)
    assert data.images.shape[:3] == shape[:3] and data.images.shape[3] in (1, 3)
    np.testing.assert_array_equal(np.asarray(data.images).reshape(shape), x)
    info = _describe("npz", path=str(path))
    assert info.num_examples == 4 and info.image_shape == (6, 6, data.images.shape[3])


def test_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, imgs=np.zeros((2, 4, 4, 1), np.uint8), y=np.zeros(2, np.int64))
    for fn in (_load, _describe):
        with pytest.raises(DatasetUnavailable, match=r"has no array 'x' \(its arrays: 'imgs', 'y'\); set images_key"):
            fn("npz", path=str(path))
        with pytest.raises(DatasetUnavailable, match=r"has no array 'labels'.*set labels_key"):
            fn("npz", path=str(path), images_key="imgs", labels_key="labels")
    floats = tmp_path / "f.npz"
    np.savez(floats, x=np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(DatasetUnavailable, match=r"dtype float32, not uint8; for values in \[0, 1\]"):
        _load("npz", path=str(floats))
    chw = tmp_path / "chw.npy"
    np.save(chw, np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(DatasetUnavailable, match="channels first"):
        _describe("npz", path=str(chw))
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        _load("npz", path=str(tmp_path / "missing.npz"))
    with pytest.raises(DatasetUnavailable, match="labels_key"):
        _load("npz", path=str(chw), labels_key="y")
    bad_labels = tmp_path / "bl.npz"
    np.savez(bad_labels, x=np.zeros((2, 4, 4, 1), np.uint8), y=np.zeros(3, np.int64))
    with pytest.raises(DatasetUnavailable, match=r"labels must be integers of shape \(2,\)"):
        _load("npz", path=str(bad_labels), labels_key="y")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DatasetUnavailable, match="cannot read"):
        _describe("npz", path=str(junk))


# ------------------------------------------------------------- Keras cache


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "keras-home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "name,expected",
    [
        ("mnist", "datasets/mnist.npz"),
        ("fashion-mnist", "datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
        ("cifar10", "datasets/cifar-10-batches-py-target/cifar-10-batches-py/data_batch_1"),
    ],
)
def test_keras_sets_offline_name_the_file(
    keras_home: Path, name: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decided from the files alone: no download, not even an import of Keras (which would fail here).
    monkeypatch.setitem(sys.modules, "keras", None)
    for fn in (_load, _describe):
        with pytest.raises(DatasetUnavailable) as info:
            fn(name)
        message = str(info.value)
        assert str(keras_home / expected) in message and "\n" not in message
        assert "download=true" in message


def _write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as fp:
        fp.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.usefixtures("no_network")
def test_cached_mnist_loads(keras_home: Path) -> None:
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    y_train, y_test = np.array([0, 1, 9, 3, 3], np.uint8), np.array([4, 5, 6], np.uint8)
    (keras_home / "datasets").mkdir()
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = _load("mnist")
    assert data.images.shape == (5, 28, 28, 1) and data.num_classes == 10
    np.testing.assert_array_equal(data.images[..., 0], x_train)
    np.testing.assert_array_equal(data.labels, y_train)
    both = _load("mnist", split="all")
    assert len(both.images) == 8
    np.testing.assert_array_equal(both.labels, np.concatenate([y_train, y_test]))
    info = _describe("mnist", split="test")
    assert (info.image_shape, info.num_classes, info.num_examples) == ((28, 28, 1), 10, 3)


@pytest.mark.usefixtures("no_network")
def test_cached_fashion_mnist_loads(keras_home: Path) -> None:
    folder_ = keras_home / "datasets" / "fashion-mnist"
    x = np.random.default_rng(3).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    y = np.array([9, 0, 1, 2], np.uint8)
    _write_idx(folder_ / "train-images-idx3-ubyte.gz", x)
    _write_idx(folder_ / "train-labels-idx1-ubyte.gz", y)
    data = _load("fashion-mnist")
    np.testing.assert_array_equal(data.images[..., 0], x)
    np.testing.assert_array_equal(data.labels, y)
    assert data.class_names[9] == "Ankle boot"
    assert _describe("fashion-mnist").num_examples == 4
    with pytest.raises(DatasetUnavailable, match="t10k-images-idx3-ubyte.gz"):
        _load("fashion-mnist", split="test")


@pytest.mark.usefixtures("no_network")
def test_cached_cifar10_loads(keras_home: Path) -> None:
    inner = keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    inner.mkdir(parents=True)
    rng = np.random.default_rng(4)
    # channels-first rows as in the original pickles; pixel (0, 0) of image 0 is red
    chw = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    chw[0, :, 0, 0] = (255, 0, 0)
    batch = {b"data": chw.reshape(2, 3072), b"labels": [3, 8]}
    # protocol 3 stores bytes as bytes, as Python 2's pickles of the real files store str
    with open(inner / "test_batch", "wb") as fp:
        pickle.dump(batch, fp, protocol=3)
    data = _load("cifar10", split="test")
    assert data.images.shape == (2, 32, 32, 3)
    assert tuple(data.images[0, 0, 0]) == (255, 0, 0)
    np.testing.assert_array_equal(data.images, chw.transpose(0, 2, 3, 1))
    assert list(data.labels) == [3, 8] and data.class_names[3] == "cat"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(inner / "test_batch", "wb") as fp:
        pickle.dump({b"data": Evil(), b"labels": []}, fp, protocol=3)
    with pytest.raises(DatasetUnavailable, match="cannot be read.*refusing to load builtins.print"):
        _load("cifar10", split="test")


def test_download_true_asks_keras(keras_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras = pytest.importorskip("keras")
    x = np.full((2, 28, 28), 7, np.uint8)
    calls = []

    def fake_load_data():
        calls.append(1)
        return (x, np.array([1, 2], np.uint8)), (x[:1], np.array([3], np.uint8))

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake_load_data)
    info = _describe("mnist", download=True)
    assert info.num_examples == 60000 and not calls  # describe never downloads
    data = _load("mnist", download=True, split="all")
    assert calls and data.images.shape == (3, 28, 28, 1) and list(data.labels) == [1, 2, 3]


def test_keras_datasets_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_datasets.keras_datasets_dir() == tmp_path / "datasets"
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "user").mkdir()
    assert keras_datasets.keras_datasets_dir() == tmp_path / "user" / ".keras" / "datasets"


# -------------------------------------------------------- registry, resolver


def test_registry_lists_builtin_datasets_without_keras() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from ganlab.registry import Registry; r = Registry().load(entry_points=False); "
        "print(sorted(e.name for e in r.entries('dataset')), 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['cifar10', 'digits', 'fashion-mnist', 'folder', 'mnist', 'npz'] False"


def test_resolver_reports_missing_folder_in_one_line(tmp_path: Path) -> None:
    registry = Registry().load(entry_points=False)
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DatasetUnavailable) as info:
        Resolver(registry).resolve("dcgan", "folder", "hinge", {"path": str(missing)})
    assert str(info.value) == f"dataset 'folder': folder {str(missing)!r} does not exist; set path to a folder of images"


def test_resolver_needs_folder_path() -> None:
    registry = Registry().load(entry_points=False)
    with pytest.raises(ConfigError, match="needs path"):
        Resolver(registry).resolve("dcgan", "folder", "hinge", {})
