"""Built-in metrics: Fréchet distance, KID, precision/recall and density/coverage on classifier features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ganlab.hookspecs import hookimpl
from ganlab.metrics.classifier import CLASSIFIER
from ganlab.params import Param
from ganlab.specs import FeatureSpec, MetricContext, MetricSpec

#: KID's subset size when ``subset_size`` is 0: half the real reference sample, at most this.
KID_MAX_AUTO_SUBSET = 500


def kid_subset_size(params: Mapping[str, Any], n_real: int) -> int:
    """The subset size KID uses: the given one, or ``min(500, n_real // 2)`` for 0 (auto).

    Half the reference sample, so subsets differ and ``kid_std`` measures
    something (with subsets as large as the sample every subset was the
    whole set and the spread read 0); 500 at the default 1000 samples, as before.
    """
    given = int(params.get("subset_size", 0))
    return given if given > 0 else max(2, min(KID_MAX_AUTO_SUBSET, n_real // 2))


def _fd(real: np.ndarray, fake: np.ndarray, ctx: MetricContext) -> dict[str, float]:
    from ganlab.metrics.distances import frechet_from_stats, gaussian_stats

    if "gaussian" not in ctx.reference:
        ctx.reference["gaussian"] = gaussian_stats(real)
    mu, cov = gaussian_stats(fake)
    return {"fd": frechet_from_stats(*ctx.reference["gaussian"], mu, cov)}


def _kid(real: np.ndarray, fake: np.ndarray, ctx: MetricContext) -> dict[str, float]:
    from ganlab.metrics.distances import kid

    size = kid_subset_size(ctx.params, len(real))
    mean, std = kid(real, fake, subsets=int(ctx.params["subsets"]), subset_size=size, seed=ctx.seed)
    return {"kid": mean, "kid_std": std}


def _manifold(real: np.ndarray, fake: np.ndarray, ctx: MetricContext) -> dict[str, float]:
    from ganlab.metrics.manifold import manifold_scores

    key = f"manifold-k{int(ctx.params['k'])}"
    if key not in ctx.shared:  # pr and dc share one pass over the distances
        ctx.shared[key] = manifold_scores(real, fake, k=int(ctx.params["k"]))
    return ctx.shared[key]


def fd_metric(features: FeatureSpec = CLASSIFIER, name: str = "fd") -> MetricSpec:
    """Fréchet distance on ``features``; :func:`fd_metric` with another FeatureSpec gives e.g. Inception FID."""
    return MetricSpec(
        name, f"Fréchet distance between Gaussians fitted to {features.name} features (the FID formula)",
        outputs=(name,), features=features, compute=_renamed(_fd, {"fd": name}),
        reference="Heusel et al. 2017, arXiv:1706.08500", lower_is_better=True, version=1, min_samples=10,
    )


def kid_metric(features: FeatureSpec = CLASSIFIER, name: str = "kid") -> MetricSpec:
    """Kernel Inception Distance on ``features``."""
    return MetricSpec(
        name, f"unbiased MMD² with the cubic polynomial kernel on {features.name} features, averaged over subsets",
        outputs=(name,), features=features, compute=_renamed(_kid, {"kid": name, "kid_std": f"{name}_std"}),
        params=(
            Param("subsets", int, 50, "random subsets averaged", low=1, high=1000),
            Param("subset_size", int, 0, "rows per subset; 0: min(500, n_real // 2)", low=0, high=100000),
        ),
        reference="Bińkowski et al. 2018, arXiv:1801.01401", lower_is_better=True, version=1, min_samples=10,
        card_notes=_kid_notes,
    )


def _kid_notes(params: Mapping[str, Any], n_real: int, n_fake: int | None) -> dict[str, Any]:
    size = kid_subset_size(params, n_real)
    rule = "given" if int(params.get("subset_size", 0)) > 0 else f"min({KID_MAX_AUTO_SUBSET}, n_real // 2)"
    # The size actually drawn: clipped to the smaller set, as kid() does.
    used = min(size, n_real, n_fake) if n_fake else size
    return {"subset_size": used, "subset_size_rule": rule}


_K = Param("k", int, 3, "nearest neighbour that sets each sample's ball radius", low=1, high=50)
# Fewer samples than this and a k=3 ball is a few points wide: the scores swing by tens of percent.
MANIFOLD_MIN_SAMPLES = 100


def pr_metric(features: FeatureSpec = CLASSIFIER, name: str = "pr") -> MetricSpec:
    """Precision and recall on ``features``."""
    return MetricSpec(
        name, "precision (fakes on the real manifold) and recall (reals on the fake manifold), k-NN balls",
        outputs=("precision", "recall"), features=features, compute=_picked(_manifold, ("precision", "recall")),
        params=(_K,), reference="Kynkäänniemi et al. 2019, arXiv:1904.06991", lower_is_better=False,
        version=1, min_samples=MANIFOLD_MIN_SAMPLES,
    )


def dc_metric(features: FeatureSpec = CLASSIFIER, name: str = "dc") -> MetricSpec:
    """Density and coverage on ``features``."""
    return MetricSpec(
        name, "density (real balls per fake, /k) and coverage (real balls holding a fake), k-NN balls",
        outputs=("density", "coverage"), features=features, compute=_picked(_manifold, ("density", "coverage")),
        params=(_K,), reference="Naeem et al. 2020, arXiv:2002.09797", lower_is_better=False,
        version=1, min_samples=MANIFOLD_MIN_SAMPLES,
    )


def _renamed(fn: Any, names: Mapping[str, str]) -> Any:
    def compute(real: np.ndarray, fake: np.ndarray, ctx: MetricContext) -> dict[str, float]:
        return {names[k]: v for k, v in fn(real, fake, ctx).items()}

    return compute


def _picked(fn: Any, keys: tuple[str, ...]) -> Any:
    def compute(real: np.ndarray, fake: np.ndarray, ctx: MetricContext) -> dict[str, float]:
        scores = fn(real, fake, ctx)
        return {k: scores[k] for k in keys}

    return compute


@hookimpl
def register_metrics(register: Any) -> None:
    from ganlab.metrics.inception_features import INCEPTION

    # The Inception pair is what papers report; its network loads only when a run names it.
    for spec in (fd_metric(), kid_metric(), pr_metric(), dc_metric(),
                 fd_metric(INCEPTION, "inception_fid"), kid_metric(INCEPTION, "inception_kid")):
        register(spec)
