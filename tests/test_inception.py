"""Inception-V3 features, weights, reference statistics and Inception FID/KID.

Nothing is downloaded: the Keras path runs the real InceptionV3 architecture
with random weights saved where the locator looks (Keras's cache folder under a
temporary KERAS_HOME); the TF-FID path runs a small stand-in GraphDef with the
graph's tensor names (``ExpandDims:0`` in, an in-graph ``ResizeBilinear`` and
``(x - 128) / 128``, ``pool_3:0`` out, and a batch-of-one reshape after it, as
in the real graph). InceptionV3 at 299x299 costs about 0.4 s per image on two
cores, so the Keras tests share one set of seven small images.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from ganlab.metrics.distances import frechet_distance, gaussian_stats, kid  # noqa: E402
from ganlab.metrics.inception import FEATURE_DIM, TFGraphInception, load_inception  # noqa: E402
from ganlab.metrics.inception_scores import inception_fid, inception_kid  # noqa: E402
from ganlab.metrics.inception_weights import (  # noqa: E402
    KERAS_IMAGENET,
    TF_FID_GRAPH,
    WeightsSource,
    WeightsUnavailable,
    locate_weights,
)
from ganlab.metrics.reference_stats import reference_stats  # noqa: E402
from ganlab.metrics.resize import bilinear_weights, resize_bilinear_tf1  # noqa: E402
from ganlab.tblog.grid import to_uint8  # noqa: E402

UNREACHABLE = "http://127.0.0.1:9/inception-weights"  # the discard port: refused at once, never a download


def _tf_resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """TensorFlow's own legacy bilinear op, the one inside the FID graph."""
    return tf.raw_ops.ResizeBilinear(images=x, size=list(size), align_corners=False, half_pixel_centers=False).numpy()


def _standin_graph(seed: int, channels: int = FEATURE_DIM) -> tuple[bytes, np.ndarray]:
    """A GraphDef with the FID graph's names around one random conv layer; returns its bytes and the kernel."""
    kernel = np.random.default_rng(seed).normal(0.0, 0.1, (3, 3, 3, channels)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        x = tf.cast(tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg"), tf.float32, name="Cast")
        x = tf.expand_dims(x, 0, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(images=x, size=[299, 299], align_corners=False, name="ResizeBilinear")
        x = tf.multiply(tf.subtract(x, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        x = tf.nn.relu(tf.nn.conv2d(x, tf.constant(kernel), 8, "VALID"))
        pool = tf.nn.avg_pool2d(x, 38, 1, "VALID", name="pool_3")
        tf.reshape(pool, [1, channels], name="pool_3/_reshape")  # the real graph's batch-of-one reshape
    return g.as_graph_def().SerializeToString(), kernel


def _standin_features(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The stand-in graph's computation, written again in eager TensorFlow."""
    x = to_uint8(images).astype(np.float32)
    x = np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
    x = (_tf_resize(x, (299, 299)) - 128.0) / 128.0
    x = tf.nn.relu(tf.nn.conv2d(x, kernel, 8, "VALID")).numpy()
    return x.mean(axis=(1, 2)).astype(np.float64)


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory: pytest.TempPathFactory):
    """A KERAS_HOME holding random-weight stand-ins for both weights files, where the locator looks."""
    home = tmp_path_factory.mktemp("keras-home")
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3))
    h5 = home / "models" / KERAS_IMAGENET.relpath
    h5.parent.mkdir(parents=True)
    model.save(h5)  # a legacy .h5, the format of Keras's published notop file
    graph = home / "models" / TF_FID_GRAPH.relpath
    graph.parent.mkdir(parents=True)
    graph_bytes, kernel = _standin_graph(0)
    graph.write_bytes(graph_bytes)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(home))
        yield {"home": home, "h5": h5, "graph": graph, "kernel": kernel}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    # Not square and far from 299, so the resize has work to do on both axes.
    return np.random.default_rng(1).uniform(-1.0, 1.0, (7, 12, 10, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def keras_backbone(keras_home):
    return load_inception("keras", download=False)


@pytest.fixture(scope="module")
def keras_feats(keras_backbone, images) -> np.ndarray:
    return keras_backbone.features(images, batch_size=7)


@pytest.fixture(scope="module")
def graph_backbone(keras_home):
    return load_inception("tf-fid", download=False)


@pytest.fixture(scope="module")
def small_backbone(tmp_path_factory: pytest.TempPathFactory):
    # 64 features instead of 2048: the caching and score tests are about statistics, not the
    # network, and a 2048-d FID costs two 2048x2048 eigendecompositions (seconds each on shared cores).
    path = tmp_path_factory.mktemp("small-graph") / "g.pb"
    path.write_bytes(_standin_graph(5, channels=64)[0])
    return TFGraphInception(path)


# ------------------------------------------------------------------ resize


def test_resize_matches_tensorflows_legacy_bilinear_op():
    rng = np.random.default_rng(0)
    for (h, w), size in [((5, 7), (299, 299)), ((13, 9), (4, 6)), ((32, 32), (299, 299))]:
        x = rng.uniform(0, 255, (2, h, w, 3)).astype(np.float32)
        np.testing.assert_allclose(resize_bilinear_tf1(x, size), _tf_resize(x, size), atol=1e-3)


def test_resize_maps_pixels_without_half_pixel_centres():
    # Output pixel i reads input i * in / out: 0, 0.5, 1, 1.5 (clamped to the last pixel).
    # Half-pixel centres (PyTorch, tf.image.resize) would give 0, 2.5, 7.5, 10.
    row = np.array([0.0, 10.0], dtype=np.float32).reshape(1, 1, 2, 1)
    assert resize_bilinear_tf1(row, (1, 4)).ravel().tolist() == [0.0, 5.0, 10.0, 10.0]
    assert np.allclose(bilinear_weights(7, 299).sum(axis=1), 1.0)


# ------------------------------------------------------- Keras InceptionV3


def test_keras_backbone_gives_2048_features_and_names_its_weights(keras_home, keras_backbone, keras_feats):
    assert keras_feats.shape == (7, 2048) and keras_feats.dtype == np.float64
    assert np.isfinite(keras_feats).all() and np.ptp(keras_feats, axis=0).max() > 0  # images differ
    card = keras_backbone.card()
    assert card["backbone"] == "inception-v3" and card["weights"] == "keras-imagenet-inception-v3"
    assert card["weights_sha256"] == hashlib.sha256(keras_home["h5"].read_bytes()).hexdigest()
    assert card["input_size"] == 299 and "half_pixel_centers=False" in card["resize"]


def test_batch_size_does_not_change_features(keras_backbone, images, keras_feats):
    one_by_one = keras_backbone.features(images, batch_size=1)
    np.testing.assert_allclose(one_by_one, keras_feats, rtol=0, atol=1e-5 * np.abs(keras_feats).max())


def test_resize_preprocessing_and_pooling_match_an_independent_pipeline(keras_home, images, keras_feats):
    # TF's resize op, Keras's x / 127.5 - 1, and the unpooled network averaged by hand.
    unpooled = keras.applications.InceptionV3(include_top=False, pooling=None, weights=None, input_shape=(299, 299, 3))
    unpooled.load_weights(keras_home["h5"])
    x = _tf_resize(to_uint8(images[:1]).astype(np.float32), (299, 299)) / 127.5 - 1.0
    expected = keras.ops.convert_to_numpy(unpooled(x, training=False)).mean(axis=(1, 2))
    np.testing.assert_allclose(keras_feats[:1], expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_grey_images_are_repeated_over_three_channels(keras_backbone, images):
    grey = images[:1, :, :, :1]
    np.testing.assert_allclose(keras_backbone.features(grey), keras_backbone.features(np.repeat(grey, 3, -1)))


def test_bad_image_shapes_are_refused(keras_backbone):
    for bad in (np.zeros((2, 8, 8, 4), np.float32), np.zeros((8, 8, 3), np.float32)):
        with pytest.raises(ValueError, match="must be \\(N, H, W, C\\) with C 1 or 3"):
            keras_backbone.features(bad)


# ------------------------------------------------------------ TF-FID graph


def test_tf_graph_backbone_feeds_expanddims_and_reads_pool_3(keras_home, graph_backbone):
    imgs = np.random.default_rng(2).uniform(-1, 1, (5, 16, 20, 1)).astype(np.float32)
    feats = graph_backbone.features(imgs, batch_size=5)  # a batch of 5 through a graph frozen with a batch of 1
    assert feats.shape == (5, 2048)
    np.testing.assert_allclose(feats, _standin_features(imgs, keras_home["kernel"]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(graph_backbone.features(imgs, batch_size=2), feats, rtol=1e-5, atol=1e-7)
    card = graph_backbone.card()
    assert card["weights"] == "tf-fid-inception-2015-12-05" and card["layer"] == "pool_3"
    assert card["weights_sha256"] == hashlib.sha256(keras_home["graph"].read_bytes()).hexdigest()


def test_float_images_are_quantised_like_saved_files(graph_backbone):
    imgs = np.random.default_rng(3).uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(graph_backbone.features(imgs), graph_backbone.features(to_uint8(imgs)))


def test_a_file_that_is_not_the_graph_is_refused(tmp_path):
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\x00 not a protobuf")
    with pytest.raises(ValueError, match="not a TensorFlow GraphDef"):
        TFGraphInception(junk)
    other = tmp_path / "other.pb"
    g = tf.Graph()
    with g.as_default():
        tf.constant(1.0, name="something_else")
    other.write_bytes(g.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match="not the FID Inception graph"):
        TFGraphInception(other)


# ----------------------------------------------------------------- weights


def _one_line_naming(exc: pytest.ExceptionInfo, url: str, path) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and url in msg and str(path) in msg


def test_no_network_is_one_line_naming_the_url_and_the_path(tmp_path):
    said = []
    with pytest.raises(WeightsUnavailable) as exc:
        locate_weights(KERAS_IMAGENET, directory=tmp_path, url=UNREACHABLE, log=said.append)
    _one_line_naming(exc, UNREACHABLE, tmp_path / KERAS_IMAGENET.relpath)
    assert said == []  # the error is the only line a user sees
    with pytest.raises(WeightsUnavailable) as exc:
        load_inception("keras", directory=tmp_path, url=UNREACHABLE)
    _one_line_naming(exc, UNREACHABLE, tmp_path / KERAS_IMAGENET.relpath)
    assert [p.name for p in tmp_path.rglob("*")] == []  # no partial download left behind
    with pytest.raises(WeightsUnavailable) as exc:
        locate_weights(TF_FID_GRAPH, directory=tmp_path, download=False)
    _one_line_naming(exc, TF_FID_GRAPH.url, tmp_path / TF_FID_GRAPH.relpath)
    assert "classify_image_graph_def.pb (extracted from the .tgz)" in str(exc.value)


def test_weights_are_downloaded_once_into_the_cache(tmp_path):
    published = tmp_path / "published.h5"
    published.write_bytes(b"weights" * 1000)
    cache, said = tmp_path / "cache", []
    path = locate_weights(KERAS_IMAGENET, directory=cache, url=published.as_uri(), log=said.append)
    assert path == cache / KERAS_IMAGENET.relpath and path.read_bytes() == published.read_bytes()
    assert len(said) == 2 and said[0].startswith("downloading") and str(path) in said[0]
    published.unlink()
    assert locate_weights(KERAS_IMAGENET, directory=cache, url=published.as_uri(), log=said.append) == path
    assert len(said) == 2  # found in the cache, not fetched again


def _tgz(tmp_path, members: dict[str, bytes]):
    archive = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_the_graph_is_extracted_from_the_published_tgz(tmp_path):
    archive = _tgz(tmp_path, {"classify_image_graph_def.pb": b"graph bytes", "LICENSE": b"x"})
    path = locate_weights(TF_FID_GRAPH, directory=tmp_path / "cache", url=archive.as_uri())
    assert path.read_bytes() == b"graph bytes" and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_tgz_without_the_graph_leaves_nothing(tmp_path):
    archive = _tgz(tmp_path, {"README": b"x"})
    source = WeightsSource("t", archive.as_uri(), "g/classify_image_graph_def.pb", "classify_image_graph_def.pb")
    with pytest.raises(WeightsUnavailable, match="has no classify_image_graph_def.pb"):
        locate_weights(source, directory=tmp_path / "cache")
    assert not (tmp_path / "cache" / source.relpath).exists()


def test_unknown_source_is_refused(keras_home):
    with pytest.raises(ValueError, match="unknown Inception weights source 'pytorch'"):
        load_inception("pytorch")


# ---------------------------------------------------- reference statistics


@pytest.fixture()
def real() -> np.ndarray:
    return np.random.default_rng(4).uniform(-1, 1, (6, 8, 8, 3)).astype(np.float32)


def test_reference_stats_are_computed_once_then_read_from_the_cache(tmp_path, small_backbone, real):
    first = reference_stats(real, small_backbone, cache_dir=tmp_path)
    mu, cov = gaussian_stats(small_backbone.features(real))
    assert not first.from_cache and first.n == 6
    np.testing.assert_allclose(first.mu, mu)
    np.testing.assert_allclose(first.cov, cov)
    again = reference_stats(real, small_backbone, cache_dir=tmp_path)
    assert again.from_cache and again.key == first.key
    np.testing.assert_array_equal(again.cov, first.cov)
    np.testing.assert_array_equal(again.features, first.features)
    assert not reference_stats(real[:5], small_backbone, cache_dir=tmp_path).from_cache  # another n, another key


def test_other_weights_never_reuse_the_cache(tmp_path, real):
    for seed in (0, 1):
        (tmp_path / f"g{seed}.pb").write_bytes(_standin_graph(seed, channels=64)[0])
    a, b = TFGraphInception(tmp_path / "g0.pb"), TFGraphInception(tmp_path / "g1.pb")
    assert a.card()["weights_sha256"] != b.card()["weights_sha256"]
    cache = tmp_path / "stats"
    reference_stats(real, a, cache_dir=cache)
    other = reference_stats(real, b, cache_dir=cache)
    assert not other.from_cache
    np.testing.assert_allclose(other.mu, b.features(real).mean(axis=0))


def test_a_damaged_cache_file_is_recomputed_not_trusted(tmp_path, small_backbone, real):
    first = reference_stats(real, small_backbone, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    redone = reference_stats(real, small_backbone, cache_dir=tmp_path)
    assert not redone.from_cache
    np.testing.assert_allclose(redone.mu, first.mu)
    assert reference_stats(real, small_backbone, cache_dir=tmp_path).from_cache  # rewritten whole

    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["mu"] = arrays["mu"] + 1.0  # altered values under the old checksum
    np.savez(path, **arrays)
    altered = reference_stats(real, small_backbone, cache_dir=tmp_path)
    assert not altered.from_cache
    np.testing.assert_allclose(altered.mu, first.mu)


def test_kept_rows_are_a_subsample_but_the_moments_use_every_image(tmp_path, small_backbone, real):
    stats = reference_stats(real, small_backbone, keep=4, cache_dir=tmp_path)
    feats = small_backbone.features(real)
    assert stats.features.shape == (4, 64) and stats.n == 6
    np.testing.assert_allclose(stats.mu, feats.mean(axis=0))
    assert all(np.isclose(feats, row).all(axis=1).any() for row in stats.features)


# ---------------------------------------------------------- FID and KID


def test_inception_fid_and_kid_use_the_distances_formulas(tmp_path, small_backbone, real):
    fake = np.clip(real[::-1] * 0.5 + 0.3, -1, 1)
    fid = inception_fid(real, fake, small_backbone, cache_dir=tmp_path)
    fr, ff = small_backbone.features(real), small_backbone.features(fake)
    assert fid["inception_fid"] == pytest.approx(frechet_distance(fr, ff), rel=1e-9)
    # Independently, with 6 rows a side: tr((C1 C2)^1/2) is the nuclear norm of A Bᵀ / 5 (A, B centred).
    a, b = fr - fr.mean(axis=0), ff - ff.mean(axis=0)
    by_svd = (np.sum((fr.mean(axis=0) - ff.mean(axis=0)) ** 2) + (np.sum(a**2) + np.sum(b**2)) / 5
              - 2 * np.linalg.svd(a @ b.T / 5, compute_uv=False).sum())
    assert fid["inception_fid"] == pytest.approx(by_svd, rel=1e-6)
    assert fid["n_real"] == fid["n_fake"] == 6 and fid["card"] == small_backbone.card()
    assert inception_fid(real, real, small_backbone, cache_dir=tmp_path)["inception_fid"] < 1e-6 * fid["inception_fid"]

    k = inception_kid(real, fake, small_backbone, cache_dir=tmp_path, seed=0)
    assert k["kid_subset_size"] == 3  # below the 6 samples, so the subsets differ
    assert (k["inception_kid"], k["inception_kid_std"]) == pytest.approx(kid(fr, ff, subset_size=3, seed=0), rel=1e-9)
    assert k["inception_kid_std"] > 0 and k["inception_kid"] > 0


def test_the_stats_cache_folder_follows_ganlab_cache_dir(tmp_path, monkeypatch, small_backbone, real):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path))
    stats = reference_stats(real, small_backbone)
    assert [p.name for p in (tmp_path / "inception-stats").iterdir()] == [f"{stats.key[:24]}.npz"]


# ------------------------------------------------------------------ as metric plugins


def test_inception_fid_and_kid_are_metrics_with_cached_real_features(tmp_path, monkeypatch):
    """``train.metrics=inception_fid,inception_kid`` end to end through the metric suite, on a stand-in graph."""
    from ganlab.metrics.selection import metric_specs
    from ganlab.metrics.suite import MetricSuite
    from ganlab.registry import load_plugins
    from ganlab.specs import ImageData

    home = tmp_path / "keras"
    graph = home / "models" / TF_FID_GRAPH.relpath
    graph.parent.mkdir(parents=True)
    graph.write_bytes(_standin_graph(3, channels=16)[0])
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "cache"))
    specs = metric_specs(load_plugins(""), {"train": {"metrics": "inception_fid,inception_kid"}})
    assert [s.outputs[0] for s in specs] == ["inception_fid", "inception_kid"]

    data = ImageData(np.random.default_rng(0).integers(0, 255, (40, 8, 8, 1), dtype=np.uint8))
    suite = MetricSuite(data, specs, n_real=20, seed=0)
    assert len(suite.extractors) == 1  # one network shared by both metrics
    floor = suite.floor()
    scores = suite.evaluate(np.random.default_rng(1).uniform(-1, 1, (20, 8, 8, 1)).astype(np.float32))
    assert set(scores) == {"inception_fid", "inception_kid", "inception_kid_std"}
    assert all(np.isfinite(v) for v in [*scores.values(), *floor.values()])
    assert scores["inception_fid"] > floor["inception_fid"]  # noise is further from the data than held-out data
    card = suite.cards()["inception_fid"]
    assert card["weights"] == f"tf-fid-inception-2015-12-05 sha256:{hashlib.sha256(graph.read_bytes()).hexdigest()}"
    assert card["backbone"] == "inception-v3" and "299x299" in card["resize"]

    # The real and held-out features were cached; a second run on the same data reads them back.
    cached = sorted((tmp_path / "cache" / "inception-stats").glob("*.npz"))
    assert len(cached) == 2  # the reference sample and the held-out floor sample
    again = MetricSuite(data, specs, n_real=20, seed=0)
    np.testing.assert_allclose(np.sort(again.real["inception"], axis=0), np.sort(suite.real["inception"], axis=0))
    assert sorted((tmp_path / "cache" / "inception-stats").glob("*.npz")) == cached
