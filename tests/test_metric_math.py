"""The k-NN metrics against a hand-computed case and a plain loop; KID's subsets; FD/KID numbers pinned."""

from __future__ import annotations

import numpy as np
import pytest

from ganlab.builtin.metrics import kid_subset_size
from ganlab.metrics.manifold import manifold_scores


def _loop_reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The four formulas written out one sample at a time, in float64 and with no shared code."""
    def dist(a, b):
        return float(np.sqrt(sum((x - y) ** 2 for x, y in zip(a, b))))

    def radius(points, i):
        others = sorted(dist(points[i], points[j]) for j in range(len(points)) if j != i)
        return others[k - 1]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    precision = np.mean([any(dist(f, real[i]) < r_real[i] for i in range(len(real))) for f in fake])
    recall = np.mean([any(dist(r, fake[j]) < r_fake[j] for j in range(len(fake))) for r in real])
    density = sum(sum(dist(f, real[i]) < r_real[i] for i in range(len(real))) for f in fake) / (k * len(fake))
    coverage = np.mean([min(dist(real[i], f) for f in fake) < r_real[i] for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_hand_computed_case():
    # Reals on a line at 0, 1, 2, 3, 10; with k=1 their radii are 1, 1, 1, 1, 7.
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # Fakes at 0.5 (inside the balls of 0, 1), 2.5 (of 2, 3 and 10: |2.5-10| = 7.5 > 7, so of 2, 3),
    # 5.5 (only 10's: 4.5 < 7) and 20 (none). Fake radii (k=1): 2, 2, 3, 14.5.
    fake = np.array([[0.5], [2.5], [5.5], [20.0]])
    got = manifold_scores(real, fake, k=1)
    # precision: 3 of 4 fakes lie in some real ball.
    # recall: real 0 (0.5 within 2), 1, 2, 3 (2.5 within 2) and 10 (20 within 14.5; 5.5 within 3? 4.5 > 3 no) -> 5/5.
    # density: ball counts 2 + 2 + 1 + 0 = 5, / (k=1 * 4 fakes).
    # coverage: nearest fake of 0 is 0.5 < 1, of 1 is 0.5 < 1, of 2 is 0.5 < 1, of 3 is 0.5 < 1, of 10 is 4.5 < 7.
    assert got == pytest.approx({"precision": 0.75, "recall": 1.0, "density": 1.25, "coverage": 1.0})
    # Move the far fake into nobody's reach and the near ones apart: coverage and recall drop.
    fake2 = np.array([[0.5], [0.6], [0.7], [100.0]])
    got2 = manifold_scores(real, fake2, k=1)
    # Fake radii (k=1): 0.1, 0.1, 0.1, 99.3: the fake at 100 reaches reals 1, 2, 3 and 10 but not 0 (recall 4/5);
    # reals 0 and 1 have a fake within their radius 1, reals 2, 3 and 10 none (coverage 2/5).
    assert got2 == pytest.approx({"precision": 0.75, "recall": 0.8, "density": 6 / 4, "coverage": 0.4})
    assert got2 == pytest.approx(_loop_reference(real, fake2, 1))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_vectorised_blocks_agree_with_the_loop_on_random_data(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(60, 4))
    fake = rng.normal(loc=0.4, scale=1.3, size=(45, 4))
    want = _loop_reference(real, fake, k)
    # Tiny blocks: the distance matrices are built a few rows at a time, as for large sample counts.
    for block in (1 << 25, 7 * 60) + ((45,) if k == 3 else ()):
        assert manifold_scores(real, fake, k=k, block_entries=block) == pytest.approx(want, abs=1e-12)


def test_identical_sets_score_like_a_perfect_generator_and_disjoint_ones_zero():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    same = manifold_scores(real, real + 1e-9, k=3)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = manifold_scores(real, real + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # Mode collapse: all fakes near one real point -> high precision, low recall and coverage.
    collapsed = manifold_scores(real, real[:1] + rng.normal(scale=1e-3, size=(200, 8)), k=3)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05 and collapsed["coverage"] < 0.05


def test_manifold_scores_refuse_too_few_samples_and_nan():
    with pytest.raises(ValueError, match="more than 3"):
        manifold_scores(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
    with pytest.raises(ValueError, match="NaN"):
        manifold_scores(np.full((10, 2), np.nan), np.zeros((10, 2)), k=3)


def test_kid_subsets_are_smaller_than_the_sample_so_the_spread_means_something():
    assert kid_subset_size({"subset_size": 0}, 1000) == 500  # the default sample size: as before
    assert kid_subset_size({"subset_size": 0}, 500) == 250  # was 500: every subset the whole set, std 0
    assert kid_subset_size({"subset_size": 0}, 5000) == 500
    assert kid_subset_size({"subset_size": 64}, 500) == 64
    from ganlab.metrics import kid

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 16)), rng.normal(0.2, size=(500, 16))
    assert kid(a, b, subset_size=500)[1] < 1e-12  # the old behaviour at eval_samples=500: one subset, 50 times
    assert kid(a, b, subset_size=kid_subset_size({"subset_size": 0}, 500))[1] > 0.0
