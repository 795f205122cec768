"""Offline metrics: the distances against closed forms, the feature net's determinism and cache, digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganlab.metrics import Evaluator, FeatureNetConfig, frechet_distance, kid
from ganlab.metrics.distances import frechet_from_stats
from ganlab.metrics.evaluator import split_indices
from ganlab.metrics.featurenet import default_cache_dir, load_or_train, prepare
from ganlab.specs import ImageData

SMALL_NET = FeatureNetConfig(hidden=(64,), max_iter=15)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # No test may touch the user's real cache.
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path / "ganlab-cache"))


@pytest.fixture(scope="module")
def digits() -> ImageData:
    """scikit-learn's digits as 32x32 uint8: 0..16 -> 0..255, bicubic upscaling."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = np.rint(bunch.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(i).resize((32, 32), Image.Resampling.BICUBIC)) for i in small])
    return ImageData(big[..., None], bunch.target)


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("featurenets")


@pytest.fixture(scope="module")
def evaluator(digits, digits_cache) -> Evaluator:
    return Evaluator(digits, cache_dir=digits_cache)


# ------------------------------------------------------------------ distances


def test_frechet_distance_of_identical_samples_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    # For diagonal covariances sqrt(C1 C2) = diag(sd1 * sd2), so FD = |dmu|^2 + sum (sd1 - sd2)^2.
    by_hand = 1.0 + 0.0 + 6.25 + (4.0 + 1.0 + 0.0)
    got = frechet_from_stats(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2))
    assert got == pytest.approx(by_hand, rel=1e-9)
    # From samples the estimate converges to the same number.
    rng = np.random.default_rng(1)
    a = mu1 + sd1 * rng.standard_normal((100_000, 3))
    b = mu2 + sd2 * rng.standard_normal((100_000, 3))
    assert frechet_distance(a, b) == pytest.approx(by_hand, rel=0.02)


def test_frechet_survives_singular_covariances():
    rng = np.random.default_rng(2)
    # Fewer samples than dimensions and a dead (always zero) unit, as a relu layer produces.
    a = np.maximum(rng.normal(size=(20, 40)), 0.0)
    a[:, 3] = 0.0
    b = np.maximum(rng.normal(loc=0.5, size=(20, 40)), 0.0)
    b[:, 3] = 0.0
    same, diff = frechet_distance(a, a), frechet_distance(a, b)
    assert np.isfinite(diff) and same == pytest.approx(0.0, abs=1e-4) and diff > 1.0


def test_frechet_with_fewer_samples_than_features():
    # An evaluation on 50 images with 128-dimensional features: both covariances are singular.
    rng = np.random.default_rng(3)
    a = np.maximum(rng.normal(size=(50, 128)), 0.0)
    b = np.maximum(rng.normal(loc=0.3, size=(50, 128)), 0.0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(frechet_distance(a, b)) and frechet_distance(a, b) > frechet_distance(a, a[::-1][:50])


def test_frechet_refuses_matrices_that_are_not_covariances():
    with pytest.raises(ValueError, match="not a covariance matrix"):
        frechet_from_stats(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


def _kid_by_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)
    k = lambda u, v: (u @ v / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 5)), rng.normal(loc=0.3, size=(12, 5))
    # One subset of all rows: no sampling, so it equals the formula computed term by term.
    mean, std = kid(x, y, subsets=1, subset_size=12)
    assert mean == pytest.approx(_kid_by_brute_force(x, y), rel=1e-10) and std == 0.0


def test_kid_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(800, 32)), rng.normal(size=(800, 32))
    same, same_std = kid(a, b, subsets=20, subset_size=400, seed=0)
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=400, seed=0)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 50 * max(abs(same), same_std)
    assert kid(a, b, subsets=20, subset_size=400, seed=0) == (same, same_std)  # seeded


def test_kid_whole_kernel_shortcut_equals_per_subset_kernels(monkeypatch):
    from ganlab.metrics import distances

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(300, 16)), rng.normal(loc=0.2, size=(250, 16))
    fast = kid(a, b, subsets=7, subset_size=100, seed=2)
    monkeypatch.setattr(distances, "_WHOLE_KERNEL_LIMIT", 0)  # forces three fresh kernels per subset
    slow = kid(a, b, subsets=7, subset_size=100, seed=2)
    assert fast == pytest.approx(slow, rel=1e-9)


def test_distances_reject_bad_features():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="dimensions differ"):
        kid(np.zeros((5, 2)), np.zeros((5, 3)))


# ------------------------------------------------------------------- input


def test_prepare_box_downsamples_quantises_and_scales():
    blocks = np.arange(16 * 16, dtype=np.uint8).reshape(1, 16, 16, 1)
    big = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)  # 64x64 of constant 4x4 blocks
    x = prepare(big, max_side=32)
    assert x.shape == (1, 32 * 32)
    # Each 2x2 output pixel averages one block half: the block's own value.
    expected = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2).reshape(1, -1) / 127.5 - 1.0
    np.testing.assert_allclose(x, expected, atol=1e-5)
    # A 48-pixel side (ratio 1.5) keeps the mean of a constant image.
    assert prepare(np.full((2, 48, 24, 3), 51, np.uint8)).shape == (2, 32 * 16 * 3)
    np.testing.assert_allclose(prepare(np.full((1, 48, 24, 3), 51, np.uint8)), 51 / 127.5 - 1.0, atol=1e-5)
    # Generated floats are quantised exactly like saved images.
    floats = np.linspace(-1, 1, 2 * 8 * 8).reshape(2, 8, 8, 1)
    np.testing.assert_array_equal(prepare(floats), prepare(np.rint((floats + 1) * 127.5).astype(np.uint8)))


def test_split_is_seeded_disjoint_and_capped():
    train, hold = split_indices(1797, n_real=1000, seed=0)
    assert len(hold) == 449 and len(train) == 1348
    assert not set(train) & set(hold) and set(train) | set(hold) == set(range(1797))
    assert np.array_equal(split_indices(1797, 1000, 0)[1], hold)
    assert not np.array_equal(split_indices(1797, 1000, 1)[1], hold)
    assert len(split_indices(60_000, n_real=1000, seed=0)[1]) == 1000  # holdout never beyond the floor's needs


# --------------------------------------------------------------- feature net


def test_feature_net_training_is_deterministic(digits, tmp_path):
    train, hold = split_indices(len(digits.images), 1000, 0)
    nets = [
        load_or_train(digits.images, digits.labels, train, hold, SMALL_NET, tmp_path / name)
        for name in ("one", "two")
    ]
    assert not nets[0].from_cache and not nets[1].from_cache
    for w0, w1 in zip(nets[0].coefs + nets[0].intercepts, nets[1].coefs + nets[1].intercepts):
        assert np.array_equal(w0, w1)
    assert nets[0].info["key"] == nets[1].info["key"]


def test_feature_net_is_cached_and_reloaded(digits, digits_cache, evaluator):
    facts = sorted(digits_cache.glob("*.json"))
    assert len(facts) == 1 and len(list(digits_cache.glob("*.npz"))) == 1
    stamp = {p: p.stat().st_mtime_ns for p in digits_cache.iterdir()}
    saved = json.loads(facts[0].read_text())
    assert saved["key"] == evaluator.protocol["feature_net"] and saved["config"]["hidden"] == [256, 128]
    assert saved["train_accuracy"] > 0.95 and saved["holdout_accuracy"] > 0.9

    again = Evaluator(digits, cache_dir=digits_cache)
    assert again.feature_net.from_cache and not evaluator.feature_net.from_cache
    assert {p: p.stat().st_mtime_ns for p in digits_cache.iterdir()} == stamp  # nothing rewritten
    assert not list(digits_cache.glob("*.tmp"))
    sample = digits.images[:50]
    np.testing.assert_array_equal(again.feature_net.features(sample), evaluator.feature_net.features(sample))
    same = lambda p: {k: v for k, v in p.items() if k not in ("floor", "n_fake")}  # noqa: E731
    assert same(again.protocol) == same(evaluator.protocol)


def test_changed_data_or_config_gets_its_own_net_and_damage_is_repaired(digits, tmp_path):
    first = Evaluator(digits, cache_dir=tmp_path, config=SMALL_NET)
    other_config = Evaluator(digits, cache_dir=tmp_path, config=FeatureNetConfig(hidden=(64,), max_iter=15, seed=1))
    flipped = digits.images.copy()
    flipped[0, 0, 0, 0] ^= 1
    other_data = Evaluator(ImageData(flipped, digits.labels), cache_dir=tmp_path, config=SMALL_NET)
    keys = {first.protocol["feature_net"], other_config.protocol["feature_net"], other_data.protocol["feature_net"]}
    assert len(keys) == 3 and len(list(tmp_path.glob("*.npz"))) == 3
    npz = tmp_path / f"{first.protocol['feature_net'][:24]}.npz"
    npz.write_bytes(b"truncated")
    repaired = Evaluator(digits, cache_dir=tmp_path, config=SMALL_NET)
    assert not repaired.feature_net.from_cache
    assert Evaluator(digits, cache_dir=tmp_path, config=SMALL_NET).feature_net.from_cache


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GANLAB_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "featurenets"
    monkeypatch.delenv("GANLAB_CACHE_DIR")
    assert default_cache_dir() == __import__("pathlib").Path.home() / ".cache" / "ganlab" / "featurenets"


def test_unlabelled_data_fall_back_to_kmeans_pseudo_labels(digits, tmp_path):
    data = ImageData(digits.images[:600])
    ev = Evaluator(data, n_real=300, cache_dir=tmp_path, config=SMALL_NET)
    assert ev.protocol["label_source"] == "kmeans-10"
    assert "unlabelled" in ev.protocol["note"] and "k-means" in ev.protocol["note"]
    # The classifier learns the clusters well enough to be a useful embedding.
    assert ev.protocol["holdout_accuracy"] > 0.6
    noise = np.random.default_rng(0).uniform(-1, 1, (300, 32, 32, 1))
    assert ev.evaluate(noise)["fd"] > 10 * ev.floor()["fd"]


# ------------------------------------------------------------------- digits


def test_digits_protocol(evaluator):
    p = evaluator.protocol
    assert p["n_real"] == 1000 and p["split"] == {"seed": 0, "train": 1348, "holdout": 449, "holdout_fraction": 0.25}
    assert p["feature_dim"] == 128 and p["label_source"] == "labels" and p["note"] == ""
    assert p["holdout_accuracy"] > 0.9


def test_digits_floor_is_far_below_corrupted_and_noise_images(digits, evaluator):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(5)
    real = digits.images[rng.choice(len(digits.images), 1000, replace=False)]
    blurred = np.rint(gaussian_filter(real.astype(np.float32), sigma=(0, 2, 2, 0))).astype(np.uint8)
    shuffled = rng.permuted(real.reshape(len(real), -1), axis=1).reshape(real.shape)
    noise = rng.uniform(-1, 1, size=(1000, 32, 32, 1)).astype(np.float32)

    floor = evaluator.floor()
    assert evaluator.floor() == floor  # computed once
    scores = {name: evaluator.evaluate(x) for name, x in [("blurred", blurred), ("shuffled", shuffled), ("noise", noise)]}
    assert evaluator.protocol["n_fake"] == 1000
    assert 3 * floor["fd"] < scores["blurred"]["fd"] < scores["noise"]["fd"]
    assert 50 * floor["fd"] < scores["shuffled"]["fd"] < scores["noise"]["fd"]
    assert abs(floor["kid"]) < scores["blurred"]["kid"] < scores["noise"]["kid"]
    with pytest.raises(ValueError, match="shape"):
        evaluator.evaluate(np.zeros((10, 16, 16, 1), np.uint8))


# --------------------------------------------------------------- as plugins


def test_fd_and_kid_as_metric_plugins_keep_the_numbers_of_before(digits, tmp_path):
    """Values computed by the Evaluator before FD and KID became plugins (main at 007f4dc), on a fixed input."""
    ev = Evaluator(digits, n_real=1000, seed=3, cache_dir=tmp_path, config=SMALL_NET)
    rng = np.random.default_rng(7)
    base = digits.images[rng.choice(len(digits.images), 1000)] / 127.5 - 1
    fake = np.clip(base + rng.normal(0, 0.3, base.shape), -1, 1)
    # The feature network's float32 kernels differ in their last bits between CPUs (AVX2 against AVX-512:
    # 7e-7 relative on the floor's FD); a change in how the metrics are computed moves them far more.
    tolerance = 1e-5
    assert ev.floor() == pytest.approx(
        {"fd": 0.1757627983738601, "kid": -0.006261507387108231, "kid_std": 0.0030227738636938394}, rel=tolerance)
    assert ev.evaluate(fake) == pytest.approx(
        {"fd": 0.7068987634139248, "kid": 0.09176032941197373, "kid_std": 0.007442762162528831}, rel=tolerance)


def test_a_suite_extracts_once_per_backbone_and_cards_every_metric(digits, tmp_path):
    from ganlab.builtin.metrics import dc_metric, fd_metric, kid_metric, pr_metric
    from ganlab.metrics.card import card_key
    from ganlab.metrics.classifier import classifier_features
    from ganlab.metrics.suite import MetricSuite

    features = classifier_features(SMALL_NET)
    calls = []
    counting = ganlab_feature_spec_counting(features, calls)
    specs = [fd_metric(counting), kid_metric(counting), pr_metric(counting), dc_metric(counting)]
    suite = MetricSuite(digits, specs, n_real=500, seed=1, cache_dir=tmp_path)
    assert calls == [500]  # one backbone built, the real reference extracted once
    floor = suite.floor()
    scores = suite.evaluate(np.random.default_rng(0).uniform(-1, 1, (400, 32, 32, 1)))
    assert calls == [500, 449, 400]  # the holdout, then the fakes: once for all four metrics
    assert set(scores) == {"fd", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    # Held-out real digits sit on the real manifold; uniform noise does not.
    assert floor["precision"] > 0.5 and floor["coverage"] > 0.5 and scores["precision"] < 0.05
    assert scores["kid_std"] > 0  # subsets of 250 of the 500 reference images: they differ
    cards = suite.cards()
    assert cards["kid"]["params"] == {"subsets": 50, "subset_size": 0} and cards["kid"]["n_real"] == 500
    assert cards["kid"]["notes"] == {"subset_size": 250, "subset_size_rule": "min(500, n_real // 2)"}
    assert cards["pr"]["n_fake"] == 400 and cards["pr"]["backbone"] == "classifier-mlp-64"
    assert cards["fd"]["data_hash"] == suite.data_hash and cards["fd"]["seed"] == 1
    other_seed = MetricSuite(digits, specs, n_real=500, seed=2, cache_dir=tmp_path)
    other_seed.evaluate(np.zeros((400, 32, 32, 1), np.float32))
    # Another seed trains another net on another split, yet the cards match apart from the seed.
    assert other_seed.cards()["fd"]["per_seed"] != cards["fd"]["per_seed"]
    assert card_key(other_seed.cards()["fd"]) == card_key(cards["fd"])


def ganlab_feature_spec_counting(features, calls):
    """``features`` whose extractor records how many images each call embeds."""
    from ganlab.specs import FeatureSpec

    def build(ctx):
        inner = features.build(ctx)

        class Counting:
            def card(self):
                return inner.card()

            def __call__(self, images):
                assert images.dtype != np.uint8 and images.min() >= -1 and images.max() <= 1  # float in [-1, 1]
                calls.append(len(images))
                return inner(images)

        return Counting()

    return FeatureSpec(features.name, features.description, build)
